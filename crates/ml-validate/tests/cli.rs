//! Runs the real `ml-validate` binary in temporary directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ml_model::testing::{labeled, save_fitted_model};
use ml_model::Hyperparameters;

const BIN: &str = env!("CARGO_BIN_EXE_ml-validate");

struct Case {
    _tmp: tempfile::TempDir,
    input: PathBuf,
    model_dir: PathBuf,
}

/// A model trained on synthetic data, and a validation split from the same distribution.
fn case() -> Case {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("processed");
    ml_data::io::write_labeled(&input.join("val.csv"), &labeled(800, 21)).expect("write");
    let model_dir = tmp.path().join("model");
    let hp = Hyperparameters::LogisticRegression(Default::default());
    save_fitted_model(&model_dir, &hp, 20);
    Case {
        _tmp: tmp,
        input,
        model_dir,
    }
}

fn command(input: &Path, model_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--input-dir")
        .arg(input)
        .arg("--model-dir")
        .arg(model_dir)
        .arg("--quiet");
    command
}

fn validate(input: &Path, model_dir: &Path) -> Output {
    command(input, model_dir).output().expect("run ml-validate")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 65 (the model or the data is unusable: Airflow does not retry), one `error:` line
/// with every piece of `expect`, nothing on stdout and no metrics.json.
fn assert_fails(c: &Case, out: &Output, expect: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for piece in expect {
        assert!(err.contains(piece), "{piece:?} not in {err:?}");
    }
    assert!(out.stdout.is_empty());
    assert!(!c.model_dir.join("metrics.json").exists());
}

#[test]
fn writes_and_prints_every_metric() {
    let c = case();
    let out = validate(&c.input, &c.model_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in [
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "n_val",
    ] {
        assert!(stdout.contains(name), "{name} not printed: {stdout}");
    }
    let text = std::fs::read_to_string(c.model_dir.join("metrics.json")).expect("metrics.json");
    let m: serde_json::Value = serde_json::from_str(&text).expect("json");
    let keys: Vec<&String> = m.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert_eq!(m["n_val"], 800);
    let auc = m["roc_auc"].as_f64().expect("auc");
    assert!(auc > 0.8 && auc < 1.0, "{auc}");
    for k in ["accuracy", "precision", "recall", "f1"] {
        let v = m[k].as_f64().expect(k);
        assert!((0.0..=1.0).contains(&v), "{k} {v}");
    }
    assert!(m["log_loss"].as_f64().expect("log_loss") > 0.0);
}

#[test]
fn same_inputs_give_identical_metrics() {
    let c = case();
    assert!(validate(&c.input, &c.model_dir).status.success());
    let first = std::fs::read(c.model_dir.join("metrics.json")).expect("first");
    let out = validate(&c.input, &c.model_dir);
    assert!(out.status.success());
    assert_eq!(
        first,
        std::fs::read(c.model_dir.join("metrics.json")).expect("second")
    );
}

/// Rewrites model.bin with `edit` applied to its bytes.
fn damage(c: &Case, edit: impl FnOnce(&mut Vec<u8>)) {
    let path = c.model_dir.join("model.bin");
    let mut bytes = std::fs::read(&path).expect("read");
    edit(&mut bytes);
    std::fs::write(&path, bytes).expect("write");
}

/// Recomputes the envelope checksum after a deliberate edit of the body.
fn reseal(bytes: &mut [u8]) {
    let sum = ml_model::file::checksum(&bytes[28..]);
    bytes[20..28].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn damaged_models_are_one_line_errors() {
    type Edit = fn(&mut Vec<u8>);
    let cases: [(Edit, &[&str]); 6] = [
        (|b| b.truncate(b.len() / 2), &["model.bin", "truncated"]),
        (|b| b.truncate(10), &["model.bin", "truncated"]),
        (
            |b| {
                let i = b.len() - 9;
                b[i] ^= 0xff;
            },
            &["model.bin", "corrupt", "checksum"],
        ),
        (|b| b.clear(), &["model.bin", "truncated"]),
        (
            |b| b[0..8].copy_from_slice(b"age,sex,"),
            &["model.bin", "not a model file"],
        ),
        (
            |b| b[8..12].copy_from_slice(&7u32.to_le_bytes()),
            &["model.bin", "format version 7", "supported: 2"],
        ),
    ];
    for (edit, expect) in cases {
        let c = case();
        damage(&c, edit);
        assert_fails(&c, &validate(&c.input, &c.model_dir), expect);
    }
}

#[test]
fn unknown_model_kind_is_named() {
    let c = case();
    damage(&c, |b| {
        // The body starts with the kind's length and text; swap in another kind of equal length.
        let at = b
            .windows(19)
            .position(|w| w == b"logistic-regression")
            .expect("kind in body");
        b[at..at + 19].copy_from_slice(b"gradient-boosting!!");
        reseal(b);
    });
    assert_fails(
        &c,
        &validate(&c.input, &c.model_dir),
        &["unknown model kind `gradient-boosting!!`"],
    );
}

#[test]
fn missing_model_and_data_are_named() {
    let c = case();
    let nowhere = c.model_dir.with_file_name("nowhere");
    let out = validate(&c.input, &nowhere);
    assert_eq!(out.status.code(), Some(65));
    assert!(
        stderr(&out).contains("nowhere: no such model directory"),
        "{}",
        stderr(&out)
    );

    std::fs::remove_file(c.input.join("val.csv")).expect("rm");
    assert_fails(
        &c,
        &validate(&c.input, &c.model_dir),
        &["val.csv", "no such file"],
    );
    std::fs::write(c.input.join("val.csv"), "").expect("write");
    assert_fails(&c, &validate(&c.input, &c.model_dir), &["val.csv", "empty"]);

    std::fs::remove_file(c.model_dir.join("model.bin")).expect("rm");
    assert_fails(
        &c,
        &validate(&c.input, &c.model_dir),
        &["model.bin", "no such model file"],
    );
}

#[test]
fn bad_validation_cells_are_named() {
    let c = case();
    let path = c.input.join("val.csv");
    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let cells: Vec<&str> = lines[6].split(',').collect();
    let mut cells: Vec<String> = cells.into_iter().map(str::to_string).collect();
    cells[3] = "high".into();
    lines[6] = cells.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    assert_fails(
        &c,
        &validate(&c.input, &c.model_dir),
        &["val.csv", "row 6", "trestbps", "\"high\""],
    );
}

/// Leaves the run record ml-train writes when it logged the model to the MLflow at `uri`.
fn logged_to(c: &Case, uri: &str) {
    ml_mlflow::RunRecord {
        format: ml_mlflow::RUN_RECORD_FORMAT,
        tracking_uri: uri.to_string(),
        experiment_id: "1".into(),
        experiment_name: "heart-disease".into(),
        run_id: "abc".into(),
        artifact_uri: "mlflow-artifacts:/1/abc/artifacts".into(),
        model_artifact_path: "model".into(),
    }
    .write(&c.model_dir)
    .expect("record");
}

#[test]
fn an_unreachable_mlflow_exits_75_after_a_bounded_retry() {
    let c = case();
    let mut run = command(&c.input, &c.model_dir);
    let uri = ml_cli::testing::unreachable_mlflow(&mut run);
    logged_to(&c, &uri);
    // Validation itself succeeded; closing the run could not: the retry closes it.
    ml_cli::testing::assert_mlflow_unreachable(run, &uri);
}

#[test]
fn metrics_are_readable_by_others_unless_the_umask_says_no() {
    for umask in ml_cli::testing::UMASKS {
        let c = case();
        // Only metrics.json is this stage's; the model files were written by the test.
        let metrics = c.model_dir.join("metrics.json");
        let run = command(&c.input, &c.model_dir);
        ml_cli::testing::assert_modes_under_umask(umask, &run, &metrics, &[]);
    }
}

#[test]
fn a_panic_is_one_error_line_and_exit_1() {
    let c = case();
    ml_cli::testing::assert_panic_reported(command(&c.input, &c.model_dir));
    assert!(!c.model_dir.join("metrics.json").exists());
}
