//! ml-validate against a real MLflow server (`MLFLOW_TEST_URI`, started by
//! `scripts/mlflow-test-server.sh`): metrics land on the run ml-train opened, which is then
//! FINISHED; a validation that fails leaves the run FAILED, never RUNNING.
//! `test = false` in Cargo.toml: a plain `cargo test` does not build this target.

use std::path::Path;
use std::process::{Command, Output};

use ml_mlflow::testing::{log_model_dir, server_uri, unique_name};
use ml_mlflow::{Client, RunStatus};
use ml_model::testing::{labeled, save_fitted_model};
use ml_model::Hyperparameters;

const BIN: &str = env!("CARGO_BIN_EXE_ml-validate");

fn validate(input: &Path, model_dir: &Path, uri: &str) -> Output {
    Command::new(BIN)
        .arg("--input-dir")
        .arg(input)
        .arg("--model-dir")
        .arg(model_dir)
        .env("MLFLOW_TRACKING_URI", uri)
        .output()
        .expect("run ml-validate")
}

/// A logged model and a validation split; returns the run id.
fn logged(client: &Client, root: &Path) -> String {
    ml_data::io::write_labeled(&root.join("processed/val.csv"), &labeled(600, 21)).expect("val");
    let model_dir = root.join("model");
    save_fitted_model(
        &model_dir,
        &Hyperparameters::LogisticRegression(Default::default()),
        20,
    );
    log_model_dir(client, &unique_name("validate"), &model_dir).run_id
}

#[test]
fn metrics_go_to_the_training_run_which_is_finished() {
    let uri = server_uri();
    let client = Client::new(&uri).expect("client");
    let tmp = tempfile::tempdir().expect("temp dir");
    let run_id = logged(&client, tmp.path());

    let out = validate(
        &tmp.path().join("processed"),
        &tmp.path().join("model"),
        &uri,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("marked it FINISHED"), "{stderr}");

    let run = client.get_run(&run_id).expect("run");
    assert_eq!(run.info.status, RunStatus::Finished);
    assert!(run.info.end_time.is_some());
    let local: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("model/metrics.json")).expect("metrics.json"),
    )
    .expect("json");
    for key in [
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
    ] {
        let logged = run
            .metric(key)
            .unwrap_or_else(|| panic!("{key} not logged"));
        assert_eq!(Some(logged), local[key].as_f64(), "{key}");
    }
    assert_eq!(run.metric("n_val"), Some(600.0));
    let remote = client
        .download_artifact(&run.info.artifact_uri, "metrics.json")
        .expect("metrics.json artifact");
    assert_eq!(
        remote,
        std::fs::read(tmp.path().join("model/metrics.json")).expect("local")
    );
}

#[test]
fn a_failed_validation_marks_the_run_failed() {
    let uri = server_uri();
    let client = Client::new(&uri).expect("client");
    let tmp = tempfile::tempdir().expect("temp dir");
    let run_id = logged(&client, tmp.path());
    std::fs::write(tmp.path().join("processed/val.csv"), "age,sex\n1,2\n").expect("bad val");

    let out = validate(
        &tmp.path().join("processed"),
        &tmp.path().join("model"),
        &uri,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 65: bad input, not retried.
    assert_eq!(out.status.code(), Some(65), "{stderr}");
    assert!(stderr.contains("val.csv"), "{stderr}");
    assert!(
        stderr.contains(&format!("marked MLflow run {run_id} FAILED")),
        "{stderr}"
    );
    assert_eq!(
        client.get_run(&run_id).expect("run").info.status,
        RunStatus::Failed
    );
    assert!(!tmp.path().join("model/metrics.json").exists());
}
