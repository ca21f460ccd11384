//! Runs the real `ml-monitor` binary in temporary directories, on predictions made by
//! `ml_predict::run` (the library behind `ml-predict`) from a saved model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ml_data::Labeled;
use ml_model::testing::{labeled, save_fitted_model};
use ml_model::{Hyperparameters, Model, ReferenceProfile};
use ml_predict::{ModelSource, PredictConfig, ResolvedModel};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ml-monitor");
const DATE: &str = "2026-01-05";
const ROWS: usize = 1200;
/// Exit 65: no report can be given for these inputs (Airflow does not retry it).
const BAD_INPUT: i32 = 65;

struct Case {
    tmp: tempfile::TempDir,
    raw: PathBuf,
    pred: PathBuf,
    model: PathBuf,
    out: PathBuf,
}

/// A model directory as ml-train and ml-validate leave it: model.bin, the reference profile
/// of its training rows and metrics.json of a validation split.
fn model_dir(dir: &Path) {
    let hp = Hyperparameters::LogisticRegression(Default::default());
    save_fitted_model(dir, &hp, 30);
    // The rows save_fitted_model trains on.
    let profile = ReferenceProfile::from_frame(&labeled(1500, 30).features).expect("profile");
    let json = serde_json::to_vec_pretty(&profile).expect("json");
    std::fs::write(dir.join("reference_profile.json"), json).expect("write profile");
    let model = Model::load_dir(dir).expect("model");
    let metrics = ml_model::score(&model, &labeled(800, 77))
        .expect("score")
        .metrics;
    let json = serde_json::to_vec_pretty(&metrics).expect("json");
    std::fs::write(dir.join("metrics.json"), json).expect("write metrics");
}

fn ids() -> Vec<String> {
    (1..=ROWS).map(|i| format!("{DATE}-{i:06}")).collect()
}

/// A day of `ROWS` rows (keyed by id or not), `edit`ed, then scored into the predictions
/// directory by the real prediction code.
fn case_with(keyed: bool, edit: impl FnOnce(&mut Labeled)) -> Case {
    let tmp = tempfile::tempdir().expect("tempdir");
    let raw = tmp.path().join("raw").join(DATE);
    let pred = tmp.path().join("predictions").join(DATE);
    let model = tmp.path().join("models").join("m");
    let out = tmp.path().join("monitoring").join(DATE);
    model_dir(&model);
    let mut data = labeled(ROWS, 31);
    edit(&mut data);
    if keyed {
        ml_data::io::write_keyed_features(&raw.join("data.csv"), ids(), &data.features)
            .expect("data.csv");
        ml_data::io::write_keyed_target(&raw.join("target.csv"), ids(), &data.target)
            .expect("target.csv");
    } else {
        ml_data::io::write_features(&raw.join("data.csv"), &data.features).expect("data.csv");
        ml_data::io::write_target(&raw.join("target.csv"), &data.target).expect("target.csv");
    }
    let config = PredictConfig {
        input_dir: raw.clone(),
        model: ResolvedModel {
            dir: model.clone(),
            source: ModelSource::local(model.to_str().expect("utf-8")),
        },
        output_dir: pred.clone(),
        batch_rows: 500,
    };
    ml_predict::run(&config, &ml_cli::Progress::new("test").quiet(true)).expect("predict");
    Case {
        tmp,
        raw,
        pred,
        model,
        out,
    }
}

fn case() -> Case {
    case_with(true, |_| {})
}

fn command(c: &Case, out: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--predictions-dir")
        .arg(&c.pred)
        .arg("--labels-dir")
        .arg(&c.raw)
        .arg("--output-dir")
        .arg(out)
        .args(extra)
        .env_remove("MLFLOW_TRACKING_URI")
        .env("ML_MODEL_CACHE", c.tmp.path().join("cache"));
    command
}

fn monitor(c: &Case, extra: &[&str]) -> Output {
    command(c, &c.out, extra).output().expect("run ml-monitor")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("JSON")
}

fn html(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("report.html")).expect("report.html")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Exit `code`, one `error:` line (the only line: the tests pass `-q`) with every piece of
/// `expect`, and nothing written to the output directory.
fn assert_fails_with(c: &Case, out: &Output, code: i32, expect: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    if code != 2 {
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert_eq!(ml_cli::testing::error_lines(&out.stderr).len(), 1, "{err}");
    for piece in expect {
        assert!(err.contains(piece), "{piece:?} not in {err:?}");
    }
    let left: Vec<_> = std::fs::read_dir(&c.out)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn assert_fails(c: &Case, out: &Output, expect: &[&str]) {
    assert_fails_with(c, out, BAD_INPUT, expect);
}

#[test]
fn a_good_day_gets_a_complete_ok_report() {
    let c = case();
    let out = monitor(&c, &[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("1,200 of 1,200 predictions have a label"),
        "{log}"
    );
    assert!(
        log.contains("MLFLOW_TRACKING_URI is not set: the report is not logged to MLflow"),
        "{log}"
    );
    let r = report(&c.out);
    assert_eq!(r["format"], 1);
    assert_eq!(r["date"], DATE);
    assert_eq!(r["verdict"], "ok", "{:#}", r["reasons"]);
    assert_eq!(r["reasons"], serde_json::json!([]));
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(c.model.join("metrics.json")).expect("metrics.json"))
            .expect("json");
    let model = &r["model"];
    assert_eq!(model["uri"], c.model.to_str().expect("utf-8"));
    assert_eq!(model["kind"], "logistic-regression");
    for absent in ["registered_model", "version", "run_id"] {
        assert!(model[absent].is_null(), "{absent}");
    }
    assert!((f(&model["validation_roc_auc"]) - f(&metrics["roc_auc"])).abs() < 1e-12);
    assert_eq!(
        r["thresholds"],
        serde_json::json!({ "psi": 0.2, "auc_margin": 0.03, "min_roc_auc": 0.75, "min_labeled_rows": 200 })
    );
    assert_eq!(
        r["rows"],
        serde_json::json!({ "predictions": ROWS, "labels": ROWS, "joined": ROWS, "unlabeled": 0, "unpredicted": 0 })
    );
    assert_eq!(r["keyed_by"], "id");

    // The quality is the model's on the day's rows, all of them labelled here.
    let data = labeled(ROWS, 31);
    let scored = ml_model::score(&Model::load_dir(&c.model).expect("model"), &data).expect("score");
    let q = &r["quality"];
    assert!((f(&q["roc_auc"]) - scored.metrics.roc_auc.expect("auc")).abs() < 1e-9);
    assert!((f(&q["log_loss"]) - scored.metrics.log_loss).abs() < 1e-9);
    assert!((f(&q["accuracy"]) - scored.metrics.accuracy).abs() < 1e-12);
    let positives = data.target.iter().filter(|&&y| y == 1).count() as f64;
    assert!((f(&q["observed_positive_rate"]) - positives / ROWS as f64).abs() < 1e-12);
    for key in ["predicted_positive_rate", "ece"] {
        assert!((0.0..=1.0).contains(&f(&q[key])), "{key}");
    }
    let bins = q["calibration"].as_array().expect("bins");
    assert_eq!(bins.len(), 10);
    let counted: u64 = bins
        .iter()
        .map(|b| b["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(counted, ROWS as u64);
    assert_eq!((f(&bins[3]["lower"]), f(&bins[3]["upper"])), (0.3, 0.4));

    let drift = &r["drift"];
    let names: Vec<&str> = drift["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ml_data::schema::feature_names().collect::<Vec<_>>());
    assert!(f(&drift["max_psi"]) < 0.2, "{drift:#}");
    assert_eq!(drift["drifted"], serde_json::json!([]));
    let sha = ml_cli::testing::sha256;
    assert_eq!(
        r["inputs"],
        serde_json::json!({
            "predictions_sha256": sha(&c.pred.join("predictions.csv")),
            "labels_sha256": sha(&c.raw.join("target.csv")),
            "data_sha256": sha(&c.raw.join("data.csv")),
        })
    );

    let page = html(&c.out);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(">OK</div>"), "the verdict badge");
    assert_eq!(page.matches("<svg ").count(), 3);
    for banned in ["<script", "http://", "https://", "src=", "<link"] {
        assert!(!page.contains(banned), "{banned}");
    }
    let mut names: Vec<_> = std::fs::read_dir(&c.out)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["report.html", "report.json"]);

    // No clock in either file.
    let again = c.out.with_file_name("again");
    let out = command(&c, &again, &["-q", "--date", DATE])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    for file in ["report.json", "report.html"] {
        assert_eq!(
            std::fs::read(c.out.join(file)).expect("first"),
            std::fs::read(again.join(file)).expect("second"),
            "{file}"
        );
    }
}

#[test]
fn labels_that_have_not_arrived_are_counted_not_an_error() {
    let c = case();
    // A quarter of the labels are late, and one label is of a row that was never scored.
    let data = labeled(ROWS, 31);
    let mut ids_kept = Vec::new();
    let mut target = Vec::new();
    for (i, id) in ids().into_iter().enumerate() {
        if i % 4 != 0 {
            ids_kept.push(id);
            target.push(data.target[i]);
        }
    }
    ids_kept.push("2026-01-04-000001".to_string());
    target.push(1);
    ml_data::io::write_keyed_target(&c.raw.join("target.csv"), &ids_kept, &target)
        .expect("target.csv");
    let out = monitor(&c, &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&c.out);
    assert_eq!(
        r["rows"],
        serde_json::json!({ "predictions": ROWS, "labels": 901, "joined": 900, "unlabeled": 300, "unpredicted": 1 })
    );
    assert_eq!(r["verdict"], "ok");
}

#[test]
fn files_without_ids_join_by_row_number() {
    let c = case_with(false, |_| {});
    // The first 1000 labels have arrived.
    let data = labeled(ROWS, 31);
    ml_data::io::write_target(&c.raw.join("target.csv"), &data.target[..1000]).expect("target");
    let out = monitor(&c, &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&c.out);
    assert_eq!(r["keyed_by"], "row_number");
    assert_eq!(r["rows"]["joined"], 1000);
    assert_eq!(r["rows"]["unlabeled"], 200);
    // The same rows joined by id give the same quality.
    let keyed = case();
    ml_data::io::write_keyed_target(
        &keyed.raw.join("target.csv"),
        &ids()[..1000],
        &data.target[..1000],
    )
    .expect("target");
    assert!(monitor(&keyed, &["-q"]).status.success());
    assert_eq!(report(&keyed.out)["quality"], r["quality"]);

    // Labels keyed one way and predictions the other cannot be joined.
    ml_data::io::write_target(&keyed.raw.join("target.csv"), &data.target).expect("target");
    std::fs::remove_dir_all(&keyed.out).expect("rm");
    assert_fails(
        &keyed,
        &monitor(&keyed, &["-q"]),
        &[
            "predictions are keyed by id",
            "target.csv is keyed by row_number: they cannot be joined",
        ],
    );
}

#[test]
fn predictions_provenance_does_not_vouch_for_are_refused() {
    let c = case();
    let path = c.pred.join("predictions.csv");
    let good = std::fs::read_to_string(&path).expect("read");
    // One probability changed after ml-predict wrote the file.
    std::fs::write(&path, good.replacen(",0.", ",0.9", 1)).expect("write");
    assert_fails(
        &c,
        &monitor(&c, &["-q"]),
        &[
            "predictions.csv: predictions are incomplete or changed since they were written",
            "provenance.json vouches for",
        ],
    );
    // Cut short.
    std::fs::write(&path, &good[..good.len() / 2]).expect("write");
    assert_fails(&c, &monitor(&c, &["-q"]), &["predictions are incomplete"]);
    // No provenance.json: the predictions were never vouched for.
    std::fs::write(&path, &good).expect("write");
    std::fs::remove_file(c.pred.join("provenance.json")).expect("rm");
    assert_fails(
        &c,
        &monitor(&c, &["-q"]),
        &["provenance.json: no such file"],
    );
}

#[test]
fn another_input_or_model_than_the_one_that_scored_is_refused() {
    let c = case();
    let data = c.raw.join("data.csv");
    let good = std::fs::read(&data).expect("read");
    let mut changed = good.clone();
    changed.extend_from_slice(b"2026-01-05-999999,50,1,2,130,250,0,1,150,0,1.0,1,0,2\n");
    std::fs::write(&data, changed).expect("write");
    assert_fails(
        &c,
        &monitor(&c, &["-q"]),
        &[
            "data.csv: not the input that was scored",
            "provenance.json records",
        ],
    );
    std::fs::write(&data, good).expect("write");

    let other = c.tmp.path().join("other-model");
    model_dir(&other);
    save_fitted_model(
        &other,
        &Hyperparameters::LogisticRegression(ml_model::LogisticParams { alpha: 5.0 }),
        30,
    );
    let out = monitor(&c, &["-q", "--model", other.to_str().expect("utf-8")]);
    assert_fails(
        &c,
        &out,
        &["model.bin: not the model that scored the predictions"],
    );
}

/// A predictions.csv that provenance.json vouches for but that does not read: a one-line
/// error naming file, row and column.
#[test]
fn a_bad_predictions_file_names_row_and_column() {
    let c = case();
    let path = c.pred.join("predictions.csv");
    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let cells: Vec<&str> = lines[10].split(',').collect();
    lines[10] = format!("{},{},1.5", cells[0], cells[1]);
    let bad = lines.join("\n") + "\n";
    std::fs::write(&path, &bad).expect("write");
    // Vouched for all the same.
    let provenance = c.pred.join("provenance.json");
    let text = std::fs::read_to_string(&provenance).expect("read");
    let mut value: Value = serde_json::from_str(&text).expect("json");
    value["predictions"]["sha256"] = ml_cli::testing::sha256(&path).into();
    std::fs::write(&provenance, value.to_string()).expect("write");
    assert_fails(
        &c,
        &monitor(&c, &["-q"]),
        &["predictions.csv: row 10 (line 11), column `probability`: 1.5 is outside the valid range [0, 1]"],
    );
}

#[test]
fn missing_labels_profile_or_metrics_are_one_line_errors() {
    let c = case();
    let target = c.raw.join("target.csv");
    let labels = std::fs::read(&target).expect("read");
    std::fs::remove_file(&target).expect("rm");
    assert_fails(&c, &monitor(&c, &["-q"]), &["target.csv: no such file"]);
    std::fs::write(&target, labels).expect("write");

    let metrics = c.model.join("metrics.json");
    let kept = std::fs::read(&metrics).expect("read");
    std::fs::remove_file(&metrics).expect("rm");
    assert_fails(
        &c,
        &monitor(&c, &["-q"]),
        &[
            "cannot tell the model's validation ROC AUC",
            "has no metrics.json and the model has no MLflow run",
        ],
    );
    std::fs::write(&metrics, kept).expect("write");

    std::fs::remove_file(c.model.join("reference_profile.json")).expect("rm");
    assert_fails(
        &c,
        &monitor(&c, &["-q"]),
        &["reference_profile.json: no such file: the model was trained before reference profiles; retrain it"],
    );
}

#[test]
fn too_few_labels_or_one_class_give_no_verdict() {
    let c = case();
    assert_fails(
        &c,
        &monitor(&c, &["-q", "--min-labeled-rows", "1201"]),
        &["only 1200 predictions have a label, fewer than --min-labeled-rows 1201"],
    );
    ml_data::io::write_keyed_target(&c.raw.join("target.csv"), ids(), &[0; ROWS]).expect("target");
    assert_fails(
        &c,
        &monitor(&c, &["-q"]),
        &["all of class 0: ROC AUC is undefined"],
    );
}

#[test]
fn wrong_labels_are_decay() {
    let c = case();
    let data = labeled(ROWS, 31);
    let flipped: Vec<u8> = data.target.iter().map(|&y| 1 - y).collect();
    ml_data::io::write_keyed_target(&c.raw.join("target.csv"), ids(), &flipped).expect("target");
    let out = monitor(&c, &["-q"]);
    assert!(
        out.status.success(),
        "a verdict is not a failure: {}",
        stderr(&out)
    );
    let r = report(&c.out);
    assert_eq!(r["verdict"], "decay");
    let reasons: Vec<&str> = r["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|v| v.as_str().expect("text"))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("below the validation ROC AUC") && reasons[0].contains("(margin 0.03)")
    );
    assert!(
        reasons[1].ends_with("is below the promotion floor 0.75"),
        "{}",
        reasons[1]
    );
    assert!(f(&r["quality"]["roc_auc"]) < 0.3);
    let page = html(&c.out);
    assert!(page.contains(">DECAY</div>") && page.contains("promotion floor 0.75"));
}

#[test]
fn features_unlike_the_training_data_are_drift() {
    // chol squeezed into 100..200 and fbs always 1; neither drives the label.
    let c = case_with(true, |d| {
        let chol = d
            .features
            .names
            .iter()
            .position(|n| n == "chol")
            .expect("chol");
        let fbs = d
            .features
            .names
            .iter()
            .position(|n| n == "fbs")
            .expect("fbs");
        for v in &mut d.features.columns[chol] {
            *v = (100.0 + (*v - 100.0) / 5.0).round();
        }
        for v in &mut d.features.columns[fbs] {
            if !v.is_nan() {
                *v = 1.0;
            }
        }
    });
    let out = monitor(&c, &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&c.out);
    assert_eq!(r["verdict"], "drift", "{:#}", r["reasons"]);
    assert_eq!(r["drift"]["drifted"], serde_json::json!(["chol", "fbs"]));
    let reasons = r["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 2);
    assert!(reasons.iter().all(|t| t
        .as_str()
        .is_some_and(|t| t.contains(": PSI ") && t.ends_with(" >= 0.2"))));
    // A higher threshold: no drift.
    let out = monitor(&c, &["-q", "--psi-threshold", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(report(&c.out)["verdict"], "ok");
}

#[test]
fn earlier_reports_feed_the_chart_and_bad_ones_are_skipped() {
    let c = case();
    for day in ["2026-01-03", "2026-01-04"] {
        let out = command(&c, &c.out.with_file_name(day), &["-q", "--date", day])
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let broken = c.out.with_file_name("2026-01-02");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(broken.join("report.json"), b"{\"format\": 1").expect("write");
    let out = monitor(&c, &[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("history: 2 earlier report(s) in the 29 days before 2026-01-05"),
        "{log}"
    );
    assert!(
        log.contains("skipping ")
            && log.contains("2026-01-02/report.json in the chart: not a monitoring report"),
        "{log}"
    );
    let page = html(&c.out);
    for day in ["2026-01-03", "2026-01-04", "2026-01-05"] {
        assert!(page.contains(&format!("<title>{day}: ROC AUC ")), "{day}");
    }
    assert!(!page.contains("<title>2026-01-02: ROC AUC"));
    assert!(page.contains("3 of the 30 days have a report"));

    // Another history directory: none.
    let elsewhere = c.tmp.path().join("elsewhere");
    let out = monitor(&c, &["--history-dir", elsewhere.to_str().expect("utf-8")]);
    assert!(
        stderr(&out).contains("history: 0 earlier report(s)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_date_comes_from_the_flag_or_the_directory_name() {
    let c = case();
    let renamed = c.pred.with_file_name("latest");
    std::fs::rename(&c.pred, &renamed).expect("rename");
    let mut run = Command::new(BIN);
    run.arg("--predictions-dir")
        .arg(&renamed)
        .arg("--labels-dir")
        .arg(&c.raw)
        .arg("--output-dir")
        .arg(&c.out)
        .env_remove("MLFLOW_TRACKING_URI");
    let out = run.output().expect("run");
    assert_fails_with(
        &c,
        &out,
        2,
        &["--date is required", "latest is not named YYYY-MM-DD"],
    );
    let out = run
        .args(["-q", "--date", "2026-02-01"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(report(&c.out)["date"], "2026-02-01");
}

#[test]
fn thresholds_are_bounded() {
    let c = case();
    for (flag, want) in [
        ("--psi-threshold=0", "must be a finite number > 0"),
        ("--auc-margin=1.5", "must be a number in [0, 1]"),
        ("--min-roc-auc=-0.1", "must be a number in [0, 1]"),
        ("--min-labeled-rows=0", "0 is not in 1..=4294967295"),
        ("--date=2026-02-30", "no such day"),
    ] {
        let out = monitor(&c, &[flag]);
        let name = flag.split('=').next().unwrap_or_default();
        assert_fails_with(&c, &out, 2, &[name, want]);
    }
}

#[test]
fn an_unreachable_mlflow_exits_75_after_a_bounded_retry() {
    let c = case();
    let mut run = command(&c, &c.out, &["-q"]);
    let uri = ml_cli::testing::unreachable_mlflow(&mut run);
    ml_cli::testing::assert_mlflow_unreachable(run, &uri);
}

/// A validation ROC AUC that only MLflow knows, with MLflow down: retry later (75), and
/// nothing is written meanwhile.
#[test]
fn a_validation_auc_mlflow_cannot_give_now_is_transient() {
    let c = case();
    std::fs::remove_file(c.model.join("metrics.json")).expect("rm");
    let record = serde_json::json!({
        "format": 1,
        "tracking_uri": "http://mlflow:5000",
        "experiment_id": "1",
        "experiment_name": "heart-disease",
        "run_id": "0123456789abcdef0123456789abcdef",
        "artifact_uri": "mlflow-artifacts:/1/0123456789abcdef0123456789abcdef/artifacts",
        "model_artifact_path": "model",
    });
    std::fs::write(c.model.join("mlflow_run.json"), record.to_string()).expect("record");
    // Without MLflow: no way to tell.
    assert_fails(
        &c,
        &monitor(&c, &["-q"]),
        &["MLFLOW_TRACKING_URI is not set to ask run 0123456789abcdef0123456789abcdef"],
    );
    let mut run = command(&c, &c.out, &["-q"]);
    let uri = ml_cli::testing::unreachable_mlflow(&mut run);
    ml_cli::testing::assert_mlflow_unreachable(run, &uri);
    assert!(!c.out.exists());
}

#[test]
fn reports_are_readable_by_others_unless_the_umask_says_no() {
    for umask in ml_cli::testing::UMASKS {
        let c = case();
        let root = c.out.parent().expect("monitoring").to_path_buf();
        let run = command(&c, &c.out, &[]);
        let made = [root.as_path(), &c.out];
        let files = ml_cli::testing::assert_modes_under_umask(umask, &run, &root, &made);
        assert_eq!(
            files,
            [c.out.join("report.html"), c.out.join("report.json")]
        );
    }
}

#[test]
fn a_panic_is_one_error_line_and_exit_1() {
    let c = case();
    ml_cli::testing::assert_panic_reported(command(&c, &c.out, &[]));
    assert!(!c.out.exists());
}
