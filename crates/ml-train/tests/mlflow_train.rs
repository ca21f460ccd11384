//! ml-train against a real MLflow server (`MLFLOW_TEST_URI`, started by
//! `scripts/mlflow-test-server.sh`): the run it logs (params, metrics, model artifact and
//! descriptor), the run record it leaves, and a clear failure when MLflow is unreachable.
//! `test = false` in Cargo.toml: a plain `cargo test` does not build this target.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ml_mlflow::testing::{server_uri, unique_name};
use ml_mlflow::{Client, RunRecord, RunStatus};
use ml_model::testing::labeled;

const BIN: &str = env!("CARGO_BIN_EXE_ml-train");

fn train(input: &Path, output: &Path, env: &[(&str, &str)], extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--input-dir")
        .arg(input)
        .arg("--output-dir")
        .arg(output)
        .args(extra)
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .envs(env.iter().copied())
        .output()
        .expect("run ml-train")
}

/// A temporary processed directory for 2026-01-05 with train.csv, and the model directory
/// to train into.
fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let input = tmp.path().join("processed").join("2026-01-05");
    ml_data::io::write_labeled(&input.join("train.csv"), &labeled(800, 3)).expect("train.csv");
    let output = tmp.path().join("models").join("2026-01-05");
    (tmp, input, output)
}

#[test]
fn logs_a_run_with_params_model_files_and_descriptor() {
    let uri = server_uri();
    let client = Client::new(&uri).expect("client");
    let experiment = unique_name("train");
    let (_tmp, input, output) = dirs();

    let out = train(
        &input,
        &output,
        &[
            ("MLFLOW_TRACKING_URI", &uri),
            ("MLFLOW_EXPERIMENT_NAME", &experiment),
        ],
        &["--model", "random-forest", "--n-trees", "5"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("logging run train-2026-01-05 to MLflow"),
        "{stderr}"
    );

    let record = RunRecord::read(&output)
        .expect("readable record")
        .expect("mlflow_run.json written");
    assert_eq!(record.experiment_name, experiment);
    assert_eq!(record.model_artifact_path, "model");
    assert!(stderr.contains(&record.run_id), "{stderr}");

    let run = client.get_run(&record.run_id).expect("run exists");
    // Open until ml-validate closes it.
    assert_eq!(run.info.status, RunStatus::Running);
    assert_eq!(run.info.run_name, "train-2026-01-05");
    assert_eq!(run.param("model"), Some("random-forest"));
    assert_eq!(run.param("hyperparameters.n_trees"), Some("5"));
    assert_eq!(run.param("data_date"), Some("2026-01-05"));
    assert_eq!(run.param("rows.train"), Some("800"));
    assert!(run.param("code_version").is_some());
    assert_eq!(run.metric("train_rows"), Some(800.0));
    assert!(run.metric("fit_seconds").is_some());
    assert_eq!(run.tag("mlflow.source.name"), Some("ml-train"));

    // The artifact is the very file on disk, and the descriptor names its format.
    for file in [
        "model.bin",
        "params.json",
        "reference_profile.json",
        "MLmodel",
    ] {
        let remote = client
            .download_artifact(&record.artifact_uri, &format!("model/{file}"))
            .expect("artifact downloads");
        let local = std::fs::read(output.join(file)).expect("local file");
        assert_eq!(remote, local, "{file}");
    }
    let descriptor = std::fs::read_to_string(output.join("MLmodel")).expect("MLmodel");
    assert!(descriptor.contains("format: ml-model-bin"), "{descriptor}");
    assert!(
        descriptor.contains("model_kind: random-forest"),
        "{descriptor}"
    );
}

#[test]
fn without_a_tracking_uri_nothing_is_logged_and_an_old_record_goes() {
    let (_tmp, input, output) = dirs();
    std::fs::create_dir_all(&output).expect("dir");
    // A record from an earlier training into the same directory names another model.
    std::fs::write(output.join("mlflow_run.json"), b"{}").expect("stale record");
    let out = train(&input, &output, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(output.join("model.bin").is_file());
    assert!(!output.join("mlflow_run.json").exists());
}

#[test]
fn an_unreachable_server_is_one_clear_error_and_leaves_no_record() {
    // A port nobody listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let uri = format!("http://127.0.0.1:{port}");
    let (_tmp, input, output) = dirs();
    let out = train(
        &input,
        &output,
        &[
            ("MLFLOW_TRACKING_URI", &uri),
            ("MLFLOW_HTTP_RETRY_BUDGET", "2"),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 75: transient, retried by Airflow with backoff.
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(&uri), "{}", errors[0]);
    assert!(
        errors[0].contains("/api/2.0/mlflow/experiments"),
        "{}",
        errors[0]
    );
    assert!(!output.join("mlflow_run.json").exists());
}

#[test]
fn a_new_training_of_the_same_day_closes_the_run_a_killed_try_left_open() {
    let uri = server_uri();
    let client = Client::new(&uri).expect("client");
    let experiment = unique_name("retrain");
    let (_tmp, input, output) = dirs();
    let env = [
        ("MLFLOW_TRACKING_URI", uri.as_str()),
        ("MLFLOW_EXPERIMENT_NAME", experiment.as_str()),
    ];
    let run_of = |what: &str| {
        let out = train(&input, &output, &env, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{what}: {stderr}");
        let record = RunRecord::read(&output)
            .expect("readable record")
            .expect("record written");
        (record.run_id, stderr)
    };

    // A training that ml-validate closed: it stays as it is.
    let (finished, _) = run_of("first training");
    client
        .set_run_status(&finished, RunStatus::Finished)
        .expect("close the first run");
    // A training whose try was killed before validation: its run stays RUNNING...
    let (killed, stderr) = run_of("second training");
    assert!(!stderr.contains("marked KILLED"), "{stderr}");
    // ...until the retry of the same day logs its own run.
    let (retry, stderr) = run_of("the retry");
    assert!(
        stderr.contains(&format!(
            "marked KILLED 1 earlier run(s) of train-2026-01-05 left RUNNING by a try that \
             never finished: {killed}"
        )),
        "{stderr}"
    );

    let status = |id: &str| client.get_run(id).expect("run exists");
    assert_eq!(status(&finished).info.status, RunStatus::Finished);
    let superseded = status(&killed);
    assert_eq!(superseded.info.status, RunStatus::Killed);
    assert!(superseded.info.end_time.is_some());
    assert_eq!(
        superseded.tag(ml_mlflow::SUPERSEDED_BY_TAG),
        Some(retry.as_str())
    );
    assert_eq!(status(&retry).info.status, RunStatus::Running);
}
