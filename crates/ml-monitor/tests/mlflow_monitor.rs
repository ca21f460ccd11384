//! ml-monitor against a real MLflow server (`MLFLOW_TEST_URI`, started by
//! `scripts/mlflow-test-server.sh`): a day scored by a registry model is judged against that
//! very version (not the alias), with the validation ROC AUC of its training run and the
//! reference profile that came down with it, and the report is logged as the run
//! `monitor-<date>`: tags, metrics stamped at the data date, both files as artifacts.
//! `test = false` in Cargo.toml: a plain `cargo test` does not build this target.

use std::process::Command;

use ml_mlflow::testing::{server_uri, unique_name};
use ml_mlflow::{Client, Metric, RunStatus, TrainingRun};
use ml_model::testing::{labeled, save_fitted_model};
use ml_model::{Hyperparameters, ReferenceProfile};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ml-monitor");
const DATE: &str = "2026-01-05";
/// Days from 1970-01-01 to 2026-01-05.
const DAY: i64 = 20_458;

#[test]
fn judges_the_registry_version_that_scored_and_logs_the_day() {
    let uri = server_uri();
    let client = Client::new(&uri).expect("client");
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let progress = ml_cli::Progress::new("test").quiet(true);

    // A model as ml-train logs it (model.bin and its reference profile below model/), with
    // the validation ROC AUC ml-validate adds to its run, registered and aliased.
    let model_dir = root.join("models").join("m");
    save_fitted_model(
        &model_dir,
        &Hyperparameters::LogisticRegression(Default::default()),
        30,
    );
    let profile = ReferenceProfile::from_frame(&labeled(1500, 30).features).expect("profile");
    std::fs::write(
        model_dir.join("reference_profile.json"),
        serde_json::to_vec_pretty(&profile).expect("json"),
    )
    .expect("profile");
    let logged = client
        .log_training(&TrainingRun {
            experiment: &unique_name("monitor-train"),
            run_name: &unique_name("train"),
            params: &[],
            metrics: &[Metric::now("roc_auc", 0.8125)],
            tags: &[],
            model_dir: &model_dir,
            files: &["model.bin", "reference_profile.json"],
        })
        .expect("log the model");
    let run_id = logged.record.run_id.clone();
    let name = unique_name("clf");
    client
        .ensure_registered_model(&name, "test")
        .expect("model");
    let version = client
        .create_model_version(&name, &logged.record.model_source(), &run_id, &[])
        .expect("version");
    client
        .set_alias(&name, "production", &version.version)
        .expect("alias");

    // The day, scored through the alias as the predict DAG does.
    let raw = root.join("raw").join(DATE);
    let pred = root.join("predictions").join(DATE);
    let data = labeled(900, 31);
    let ids: Vec<String> = (1..=900).map(|i| format!("{DATE}-{i:06}")).collect();
    ml_data::io::write_keyed_features(&raw.join("data.csv"), &ids, &data.features).expect("data");
    ml_data::io::write_keyed_target(&raw.join("target.csv"), &ids, &data.target).expect("target");
    let alias = format!("models:/{name}@production");
    let resolved = ml_predict::resolve_model(
        &alias,
        Some(&client),
        &root.join("predict-cache"),
        &progress,
    )
    .expect("resolve");
    ml_predict::run(
        &ml_predict::PredictConfig {
            input_dir: raw.clone(),
            model: resolved,
            output_dir: pred.clone(),
            batch_rows: 1000,
        },
        &progress,
    )
    .expect("predict");

    // A try of the same day that died with its run open.
    let experiment = unique_name("monitoring");
    let exp = client.ensure_experiment(&experiment).expect("experiment");
    let killed = client
        .create_run(&exp.experiment_id, Some(&format!("monitor-{DATE}")), &[])
        .expect("open run")
        .info
        .run_id;

    let out_dir = root.join("monitoring").join(DATE);
    let out = Command::new(BIN)
        .arg("--predictions-dir")
        .arg(&pred)
        .arg("--labels-dir")
        .arg(&raw)
        .arg("--output-dir")
        .arg(&out_dir)
        .args(["--experiment", &experiment])
        .env("MLFLOW_TRACKING_URI", &uri)
        // A fresh cache: the version is downloaded, profile and all.
        .env("ML_MODEL_CACHE", root.join("monitor-cache"))
        .output()
        .expect("run ml-monitor");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let by_version = format!("models:/{name}/{}", version.version);
    assert!(
        log.contains(&format!(
            "{by_version} is {name} version {}",
            version.version
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "validation ROC AUC 0.8125 from MLflow run {run_id}"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("marked KILLED 1 earlier run(s) of monitor-{DATE}")),
        "{log}"
    );

    let report: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).expect("report"))
            .expect("json");
    let model = &report["model"];
    assert_eq!(model["uri"], by_version.as_str());
    assert_eq!(model["registered_model"], name.as_str());
    assert_eq!(model["version"], version.version.as_str());
    assert_eq!(model["run_id"], run_id.as_str());
    assert_eq!(model["validation_roc_auc"], 0.8125);

    // The monitoring run.
    let found = client
        .search_runs(
            &exp.experiment_id,
            &format!("tags.`mlflow.runName` = 'monitor-{DATE}'"),
            10,
        )
        .expect("search");
    assert_eq!(found.len(), 2);
    let status = |id: &str| client.get_run(id).expect("run").info.status;
    assert_eq!(status(&killed), RunStatus::Killed);
    let run = found
        .iter()
        .find(|r| r.info.run_id != killed)
        .expect("the new run");
    let run = client.get_run(&run.info.run_id).expect("run");
    assert_eq!(run.info.status, RunStatus::Finished);
    let verdict = report["verdict"].as_str().expect("verdict");
    for (key, value) in [
        ("mlflow.source.name", "ml-monitor"),
        ("data_date", DATE),
        ("verdict", verdict),
        ("model.name", name.as_str()),
        ("model.version", version.version.as_str()),
        ("model.run_id", run_id.as_str()),
    ] {
        assert_eq!(run.tag(key), Some(value), "{key}");
    }
    let metric = |key: &str| -> &Metric {
        run.data
            .metrics
            .iter()
            .find(|m| m.key == key)
            .unwrap_or_else(|| panic!("metric {key}"))
    };
    let quality = &report["quality"];
    for key in ["roc_auc", "log_loss", "accuracy", "ece"] {
        assert_eq!(Some(metric(key).value), quality[key].as_f64(), "{key}");
    }
    assert_eq!(metric("validation_roc_auc").value, 0.8125);
    assert_eq!(metric("joined_rows").value, 900.0);
    assert_eq!(
        Some(metric("max_psi").value),
        report["drift"]["max_psi"].as_f64()
    );
    for feature in ml_data::schema::feature_names() {
        let m = metric(&format!("psi.{feature}"));
        assert_eq!((m.step, m.timestamp), (DAY, DAY * 86_400_000), "{feature}");
    }
    for m in &run.data.metrics {
        assert_eq!((m.step, m.timestamp), (DAY, DAY * 86_400_000), "{}", m.key);
    }
    let files: Vec<String> = client
        .list_artifacts(&run.info.artifact_uri, None)
        .expect("artifacts")
        .into_iter()
        .map(|f| f.path)
        .collect();
    for file in ["report.json", "report.html"] {
        assert!(files.iter().any(|f| f == file), "{file} in {files:?}");
        let remote = client
            .download_artifact(&run.info.artifact_uri, file)
            .expect("download");
        assert_eq!(
            remote,
            std::fs::read(out_dir.join(file)).expect("local"),
            "{file}"
        );
    }
}
