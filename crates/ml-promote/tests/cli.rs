//! The ml-promote binary where no MLflow server is involved: usage errors, a model that
//! was not logged to MLflow, and an MLflow that does not answer.

mod common;

use common::{bin, text, write_model, write_val, Quality};
use ml_mlflow::{RunRecord, RUN_RECORD_FORMAT};

#[test]
fn help_names_every_option() {
    let out = bin().arg("--help").output().expect("runs");
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    for flag in [
        "--input-dir",
        "--model-dir",
        "--registered-model",
        "--mode",
        "--min-improvement",
        "--min-roc-auc",
        "--bootstrap-resamples",
        "--bootstrap-seed",
        "--tracking-uri",
    ] {
        assert!(stdout.contains(flag), "{flag} missing from:\n{stdout}");
    }
    assert!(
        stdout.contains("[default: heart-disease-classifier]"),
        "{stdout}"
    );
}

#[test]
fn a_tracking_uri_is_required() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = bin()
        .args(["--input-dir", "x", "--model-dir"])
        .arg(dir.path())
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .expect("runs");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--tracking-uri <URL>"), "{stderr}");
}

#[test]
fn a_model_without_a_run_record_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_model(dir.path(), Quality::Good);
    // Port 9 on loopback: nothing is sent, the record is checked first.
    let out = offline(dir.path(), &[]).output().expect("runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty());
    let first = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "error: {}: no mlflow_run.json; train this model with MLFLOW_TRACKING_URI set so it is logged to MLflow",
            dir.path().display()
        )
    );
    assert!(!dir.path().join("promotion.json").exists());
}

#[test]
fn bad_margins_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = offline(dir.path(), &["--min-improvement", "1.5"])
        .output()
        .expect("runs");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: invalid value '1.5' for '--min-improvement <F>': must be between 0 and 1"
        ),
        "{stderr}"
    );
    for (flag, value) in [("--min-roc-auc", "1.1"), ("--bootstrap-resamples", "999")] {
        let out = offline(dir.path(), &[flag, value]).output().expect("runs");
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains(flag), "{stderr}");
    }
}

#[test]
fn an_unreachable_mlflow_fails_after_bounded_retries_naming_the_endpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_model(dir.path(), Quality::Good);
    write_val(dir.path(), 200);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    RunRecord {
        format: RUN_RECORD_FORMAT,
        tracking_uri: uri.clone(),
        experiment_id: "1".into(),
        experiment_name: "heart-disease".into(),
        run_id: "abc".into(),
        artifact_uri: "mlflow-artifacts:/1/abc/artifacts".into(),
        model_artifact_path: "model".into(),
    }
    .write(dir.path())
    .expect("record");
    let started = std::time::Instant::now();
    let out = bin()
        .args(["--tracking-uri", &uri, "--input-dir"])
        .arg(dir.path())
        .arg("--model-dir")
        .arg(dir.path())
        .env("MLFLOW_HTTP_RETRY_BUDGET", "1.5")
        .output()
        .expect("runs");
    let (_, stderr) = text(&out);
    // 75: transient, nothing moved; Airflow retries it later.
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        stderr.contains(&format!(
            "error: GET /api/2.0/mlflow/registered-models/get: could not talk to MLflow at {uri} ("
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{stderr}"
    );
    assert!(!dir.path().join("promotion.json").exists());
}

#[test]
fn a_panic_is_one_error_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    ml_cli::testing::assert_panic_reported(offline(dir.path(), &[]));
}

/// ml-promote on `model_dir` with `extra` flags and a tracking URI nobody answers (port 9
/// on loopback): for the cases that end before any request is sent.
fn offline(model_dir: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut command = bin();
    command
        .args(["--input-dir", "x", "--tracking-uri", "http://127.0.0.1:9"])
        .args(extra)
        .arg("--model-dir")
        .arg(model_dir);
    command
}
