//! Runs the real `ml-predict` binary in temporary directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ml_model::testing::{labeled, save_fitted_model};
use ml_model::{ForestParams, Hyperparameters, Model};

const BIN: &str = env!("CARGO_BIN_EXE_ml-predict");
const ROWS: usize = 2500;

struct Case {
    _tmp: tempfile::TempDir,
    raw: PathBuf,
    model_dir: PathBuf,
    out: PathBuf,
}

fn case_with(hp: &Hyperparameters) -> Case {
    let tmp = tempfile::tempdir().expect("tempdir");
    let raw = tmp.path().join("raw");
    let data = labeled(ROWS, 31);
    ml_data::io::write_features(&raw.join("data.csv"), &data.features).expect("write");
    let model_dir = tmp.path().join("model");
    save_fitted_model(&model_dir, hp, 30);
    let out = tmp.path().join("predictions");
    Case {
        _tmp: tmp,
        raw,
        model_dir,
        out,
    }
}

fn case() -> Case {
    case_with(&Hyperparameters::LogisticRegression(Default::default()))
}

/// `ml-predict` on the case's data; `model` is the case's model directory unless given.
fn command(c: &Case, out_dir: &Path, model: Option<&str>, extra: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.arg("--input-dir").arg(&c.raw).arg("--model");
    match model {
        Some(model) => command.arg(model),
        None => command.arg(&c.model_dir),
    };
    command.arg("--output-dir").arg(out_dir).args(extra);
    command
}

fn predict(c: &Case, out_dir: &Path, extra: &[&str]) -> Output {
    command(c, out_dir, None, extra)
        .output()
        .expect("run ml-predict")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 65: the data or the model is unusable (Airflow does not retry it).
const BAD_INPUT: i32 = 65;

/// Exit 65, one `error:` line with every piece of `expect`, and nothing in the output
/// directory: neither the final file nor a temporary one.
fn assert_fails(c: &Case, out: &Output, expect: &[&str]) {
    assert_fails_with(c, out, BAD_INPUT, expect);
}

/// [`assert_fails`] with another exit status; a usage error (2) may add clap's hint lines
/// after its one `error:` line.
fn assert_fails_with(c: &Case, out: &Output, code: i32, expect: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    if code != 2 {
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert_eq!(ml_cli::testing::error_lines(&out.stderr).len(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for piece in expect {
        assert!(err.contains(piece), "{piece:?} not in {err:?}");
    }
    let left: Vec<_> = std::fs::read_dir(&c.out)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `(prediction, probability)` rows of a predictions file, after checking its header.
fn read_predictions(dir: &Path) -> Vec<(u8, f64)> {
    read_keyed_predictions(dir)
        .into_iter()
        .map(|(_, p, q)| (p, q))
        .collect()
}

/// `(id, prediction, probability)` rows of a predictions file, after checking its header.
fn read_keyed_predictions(dir: &Path) -> Vec<(String, u8, f64)> {
    let text = std::fs::read_to_string(dir.join("predictions.csv")).expect("predictions.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,prediction,probability"));
    lines
        .map(|l| {
            let mut cells = l.split(',');
            let mut next = || cells.next().expect("three fields");
            let id = next().to_string();
            (id, next().parse().expect("0/1"), next().parse().expect("p"))
        })
        .collect()
}

/// The ids [`keyed_case`] gives its rows: not in sorted order, so that "the input's order"
/// and "sorted by id" differ.
fn case_ids() -> Vec<String> {
    (1..=ROWS)
        .map(|i| format!("2026-01-05-{:06}", (i * 7919) % 1_000_003))
        .collect()
}

/// [`case`], with `data.csv` rewritten to carry an `id` column first.
fn keyed_case() -> Case {
    let c = case();
    let frame = ml_data::io::read_features(&c.raw.join("data.csv")).expect("read");
    ml_data::io::write_keyed_features(&c.raw.join("data.csv"), case_ids(), &frame).expect("write");
    c
}

/// `provenance.json` of an output directory, parsed.
fn read_provenance(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("provenance.json")).expect("provenance.json");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn scores_every_row_in_input_order_in_several_batches() {
    for hp in [
        Hyperparameters::LogisticRegression(Default::default()),
        Hyperparameters::RandomForest(ForestParams {
            n_trees: 8,
            ..Default::default()
        }),
    ] {
        let c = case_with(&hp);
        let out = predict(&c, &c.out, &["--batch-rows", "1000"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("scored 2,500 rows"),
            "{}",
            stderr(&out)
        );
        let keyed = read_keyed_predictions(&c.out);
        // data.csv has no id column: every row is keyed by its row number, from 1.
        let ids: Vec<String> = keyed.iter().map(|r| r.0.clone()).collect();
        let numbers: Vec<String> = (1..=ROWS).map(|i| i.to_string()).collect();
        assert_eq!(ids, numbers);
        let rows = read_predictions(&c.out);
        assert_eq!(rows.len(), ROWS);
        // The same numbers as scoring the whole frame in-process.
        let model = Model::load_dir(&c.model_dir).expect("load");
        let frame = ml_data::io::read_features(&c.raw.join("data.csv")).expect("read");
        let expected = model.predict_proba(&frame).expect("proba");
        for (i, ((pred, prob), want)) in rows.iter().zip(&expected).enumerate() {
            assert!((prob - want).abs() < 1e-9, "row {i}: {prob} vs {want}");
            assert_eq!(*pred, u8::from(*prob > 0.5), "row {i}");
        }
        assert!(rows.iter().any(|r| r.0 == 0) && rows.iter().any(|r| r.0 == 1));
    }
}

#[test]
fn output_is_identical_across_runs_and_batch_sizes() {
    let c = case();
    let a = c.out.join("a");
    let b = c.out.join("b");
    assert!(predict(&c, &a, &["-q"]).status.success());
    assert!(predict(&c, &b, &["-q", "--batch-rows", "7"])
        .status
        .success());
    for file in ["predictions.csv", "provenance.json"] {
        assert_eq!(
            std::fs::read(a.join(file)).expect("a"),
            std::fs::read(b.join(file)).expect("b"),
            "{file}"
        );
    }
}

#[test]
fn predictions_carry_the_input_ids_in_input_order() {
    let c = keyed_case();
    let out = predict(&c, &c.out, &["-q", "--batch-rows", "300"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let keyed = read_keyed_predictions(&c.out);
    let ids: Vec<String> = keyed.iter().map(|r| r.0.clone()).collect();
    assert_eq!(ids, case_ids());
    // The scores are those of the same rows without ids: the id is no feature.
    let plain = case();
    let out = predict(&plain, &plain.out, &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_predictions(&c.out), read_predictions(&plain.out));
    assert_eq!(read_provenance(&c.out)["keyed_by"], "id");
    assert_eq!(read_provenance(&plain.out)["keyed_by"], "row_number");
}

/// provenance.json of a model directory: every field, each checksum recomputed from the
/// files, and nothing else in it.
#[test]
fn provenance_names_the_model_and_the_checksums_of_every_file() {
    let c = keyed_case();
    let out = predict(&c, &c.out, &["-q", "--batch-rows", "999"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sha = ml_cli::testing::sha256;
    let model = c.model_dir.to_str().expect("utf-8");
    let want = serde_json::json!({
        "format": 1,
        "model": {
            "uri": model,
            "registered_model": null,
            "version": null,
            "alias": null,
            "run_id": null,
            "file": "model.bin",
            "sha256": sha(&c.model_dir.join("model.bin")),
        },
        "input": {
            "file": "data.csv",
            "sha256": sha(&c.raw.join("data.csv")),
            "rows": ROWS,
        },
        "predictions": {
            "file": "predictions.csv",
            "sha256": sha(&c.out.join("predictions.csv")),
            "rows": ROWS,
        },
        "keyed_by": "id",
    });
    assert_eq!(read_provenance(&c.out), want);
    let text = std::fs::read_to_string(c.out.join("provenance.json")).expect("read");
    assert!(
        text.starts_with("{\n  \"format\": 1,") && text.ends_with("}\n"),
        "{text}"
    );

    // A model directory that ml-train logged to MLflow has its run record: its run id.
    let record = serde_json::json!({
        "format": 1,
        "tracking_uri": "http://mlflow:5000",
        "experiment_id": "1",
        "experiment_name": "heart-disease",
        "run_id": "0123456789abcdef0123456789abcdef",
        "artifact_uri": "mlflow-artifacts:/1/0123456789abcdef0123456789abcdef/artifacts",
        "model_artifact_path": "model",
    });
    std::fs::write(c.model_dir.join("mlflow_run.json"), record.to_string()).expect("write");
    let out = predict(&c, &c.out, &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut want = want;
    want["model"]["run_id"] = "0123456789abcdef0123456789abcdef".into();
    assert_eq!(read_provenance(&c.out), want);
}

/// A run that replaces the predictions replaces their provenance; one that fails leaves the
/// earlier pair as it was, still matching.
#[test]
fn provenance_always_vouches_for_the_predictions_beside_it() {
    let c = keyed_case();
    let matches = |dir: &Path| {
        read_provenance(dir)["predictions"]["sha256"]
            == ml_cli::testing::sha256(&dir.join("predictions.csv")).as_str()
    };
    assert!(predict(&c, &c.out, &["-q"]).status.success());
    assert!(matches(&c.out));
    let first = std::fs::read(c.out.join("predictions.csv")).expect("read");

    // Another model: both files change, together.
    save_fitted_model(
        &c.model_dir,
        &Hyperparameters::RandomForest(ForestParams {
            n_trees: 4,
            ..Default::default()
        }),
        30,
    );
    assert!(predict(&c, &c.out, &["-q"]).status.success());
    assert!(matches(&c.out));
    let second = std::fs::read(c.out.join("predictions.csv")).expect("read");
    assert_ne!(first, second);

    // Bad input in a late batch: nothing is replaced, nothing is left behind.
    let data = c.raw.join("data.csv");
    let good = std::fs::read_to_string(&data).expect("read");
    std::fs::write(&data, set_cell(&good, 2400, 5, "lots")).expect("write");
    let out = predict(&c, &c.out, &["-q", "--batch-rows", "500"]);
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(c.out.join("predictions.csv")).expect("read"),
        second
    );
    assert!(matches(&c.out));
    let names: Vec<_> = std::fs::read_dir(&c.out)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // An old provenance.json that cannot be removed: the predictions are not replaced.
    std::fs::write(&data, good).expect("write");
    std::fs::remove_file(c.out.join("provenance.json")).expect("rm");
    std::fs::create_dir_all(c.out.join("provenance.json/in-the-way")).expect("mkdir");
    let out = predict(&c, &c.out, &["-q"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("provenance.json: cannot remove"), "{err}");
    assert_eq!(
        std::fs::read(c.out.join("predictions.csv")).expect("read"),
        second
    );
}

#[test]
fn bad_ids_are_one_line_errors_and_write_nothing() {
    type Edit = fn(String) -> String;
    let cases: [(Edit, &[&str]); 3] = [
        (
            |t| set_cell(&t, 9, 0, ""),
            &["data.csv: row 9 (line 10), column `id`: empty cell"],
        ),
        (
            // In a later batch than the first.
            |t| {
                let first = t.lines().nth(3).and_then(|l| l.split(',').next());
                let first = first.unwrap_or_default().to_string();
                set_cell(&t, 2001, 0, &first)
            },
            &[
                "data.csv: row 2001 (line 2002), column `id`: ",
                "is already the id of row 3",
            ],
        ),
        (
            |t| t.replacen("id,age", "age,id", 1),
            &["data.csv: column `id` must be the first column, found at position 2"],
        ),
    ];
    for (edit, expect) in cases {
        let c = keyed_case();
        edit_data(&c, edit);
        let out = predict(&c, &c.out, &["-q", "--batch-rows", "500"]);
        assert_fails(&c, &out, expect);
    }
}

#[test]
fn unseen_category_scores_instead_of_failing() {
    let c = case();
    // Training never saw ca = 4 here: rewrite the training data without it.
    let mut train = labeled(1500, 30);
    let ca = train
        .features
        .names
        .iter()
        .position(|n| n == "ca")
        .expect("ca");
    for v in &mut train.features.columns[ca] {
        if *v == 4.0 {
            *v = 3.0;
        }
    }
    let hp = Hyperparameters::LogisticRegression(Default::default());
    Model::fit(&train, &hp)
        .expect("fit")
        .save(&c.model_dir.join("model.bin"))
        .expect("save");
    let out = predict(&c, &c.out, &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_predictions(&c.out).len(), ROWS);
}

fn edit_data(c: &Case, edit: impl FnOnce(String) -> String) {
    let path = c.raw.join("data.csv");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, edit(text)).expect("write");
}

fn set_cell(text: &str, line: usize, col: usize, value: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[line].split(',').map(str::to_string).collect();
    cells[col] = value.into();
    lines[line] = cells.join(",");
    lines.join("\n") + "\n"
}

#[test]
fn bad_data_files_are_one_line_errors_and_write_nothing() {
    type Edit = fn(String) -> String;
    let cases: [(Edit, &[&str]); 11] = [
        (|_| String::new(), &["data.csv", "empty"]),
        (
            |t| t.lines().next().unwrap_or_default().to_string() + "\n",
            &["data.csv", "no data rows"],
        ),
        (
            |t| t.replacen("thalach", "max_hr", 1),
            &["data.csv", "thalach"],
        ),
        (|t| t.replacen(",thal\n", "\n", 1), &["data.csv", "thal"]),
        (
            |t| set_cell(&t, 10, 4, "lots"),
            &["data.csv", "row 10", "chol", "\"lots\""],
        ),
        (
            |t| set_cell(&t, 10, 0, "NaN"),
            &["data.csv", "row 10", "age"],
        ),
        (
            |t| set_cell(&t, 11, 0, "-inf"),
            &["data.csv", "row 11", "age"],
        ),
        (
            |t| set_cell(&t, 12, 0, "61 "),
            &["data.csv: row 12 (line 13), column `age`: \"61 \" is not a number: it has leading or trailing spaces"],
        ),
        (
            |t| set_cell(&t, 1300, 3, " 120"),
            &["data.csv: row 1300 (line 1301), column `trestbps`: \" 120\" is not a number: it has leading or trailing spaces"],
        ),
        (
            |t| set_cell(&t, 5, 9, "\"1.5\"x"),
            &["data.csv: row 5 (line 6), column `oldpeak`: \"\\\"1.5\\\"x\" is not a number"],
        ),
        // A bad cell in a late batch: the batches before it were scored and written to the
        // temporary file, which must disappear.
        (
            |t| set_cell(&t, 2400, 7, "fast"),
            &["data.csv", "row 2400", "thalach"],
        ),
    ];
    for (edit, expect) in cases {
        let c = case();
        edit_data(&c, edit);
        let out = predict(&c, &c.out, &["-q", "--batch-rows", "500"]);
        assert_fails(&c, &out, expect);
    }
}

#[test]
fn model_problems_are_one_line_errors_and_write_nothing() {
    let c = case();
    let path = c.model_dir.join("model.bin");
    let good = std::fs::read(&path).expect("read");

    std::fs::write(&path, &good[..good.len() - 100]).expect("write");
    assert_fails(
        &c,
        &predict(&c, &c.out, &["-q"]),
        &["model.bin", "truncated"],
    );

    let mut flipped = good.clone();
    flipped[40] ^= 1;
    std::fs::write(&path, &flipped).expect("write");
    assert_fails(
        &c,
        &predict(&c, &c.out, &["-q"]),
        &["model.bin", "checksum"],
    );

    let mut v9 = good.clone();
    v9[8..12].copy_from_slice(&9u32.to_le_bytes());
    std::fs::write(&path, &v9).expect("write");
    assert_fails(
        &c,
        &predict(&c, &c.out, &["-q"]),
        &["model.bin", "version 9"],
    );

    std::fs::remove_file(&path).expect("rm");
    assert_fails(
        &c,
        &predict(&c, &c.out, &["-q"]),
        &["model.bin", "no such model file"],
    );

    std::fs::remove_dir(&c.model_dir).expect("rm");
    assert_fails(
        &c,
        &predict(&c, &c.out, &["-q"]),
        &["model: no such model directory"],
    );
}

#[test]
fn missing_input_and_unwritable_output_are_named() {
    let c = case();
    std::fs::remove_file(c.raw.join("data.csv")).expect("rm");
    assert_fails(
        &c,
        &predict(&c, &c.out, &["-q"]),
        &["data.csv", "no such file"],
    );
    std::fs::remove_dir(&c.raw).expect("rm");
    assert_fails(
        &c,
        &predict(&c, &c.out, &["-q"]),
        &["raw: no such directory"],
    );

    let c = case();
    let blocker = c.raw.join("blocker");
    std::fs::write(&blocker, b"").expect("write");
    let out = predict(&c, &blocker.join("out"), &["-q"]);
    // Not the input's fault: an ordinary failure, retried as usual.
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: ") && err.contains("blocker"),
        "{err}"
    );
}

#[test]
fn batch_rows_are_bounded() {
    let c = case();
    for (value, want) in [
        ("0", "0 is not in 1..=1000000"),
        ("1000001", "1000001 is not in 1..=1000000"),
        ("99999999999999999999", "--batch-rows"),
        ("-1", "--batch-rows"),
    ] {
        let out = predict(&c, &c.out, &[&format!("--batch-rows={value}")]);
        assert_fails_with(&c, &out, 2, &["error: invalid value", want]);
    }
}

/// Quoted numbers and CRLF line endings are valid CSV: the predictions are those of the
/// plain LF file, byte for byte.
#[test]
fn quoted_numbers_and_crlf_score_like_the_plain_file() {
    let c = case();
    let plain = c.out.join("plain");
    assert!(predict(&c, &plain, &["-q"]).status.success());
    let want = std::fs::read(plain.join("predictions.csv")).expect("plain");
    let original = std::fs::read_to_string(c.raw.join("data.csv")).expect("read");
    let quote = |line: &str| -> String {
        let cells: Vec<String> = line.split(',').map(|c| format!("\"{c}\"")).collect();
        cells.join(",")
    };
    let variants = [
        ("crlf", original.replace('\n', "\r\n")),
        (
            "quoted",
            original.lines().map(|l| quote(l) + "\n").collect(),
        ),
        (
            "quoted-crlf",
            original.lines().map(|l| quote(l) + "\r\n").collect(),
        ),
        ("no-final-newline", original.trim_end().to_string()),
    ];
    for (name, text) in variants {
        std::fs::write(c.raw.join("data.csv"), text).expect("write");
        let out_dir = c.out.join(name);
        let out = predict(&c, &out_dir, &["-q", "--batch-rows", "700"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(
            std::fs::read(out_dir.join("predictions.csv")).expect("predictions"),
            want,
            "{name}"
        );
    }
}

#[test]
fn an_unreachable_mlflow_exits_75_after_a_bounded_retry() {
    let c = case();
    let cache = c.out.with_file_name("cache");
    let cache = ["-q", "--model-cache", cache.to_str().expect("utf-8")];
    let model = Some("models:/heart-disease-classifier@production");
    let mut run = command(&c, &c.out, model, &cache);
    let uri = ml_cli::testing::unreachable_mlflow(&mut run);
    ml_cli::testing::assert_mlflow_unreachable(run, &uri);
    assert!(!c.out.exists());
}

#[test]
fn predictions_are_readable_by_others_unless_the_umask_says_no() {
    for umask in ml_cli::testing::UMASKS {
        let c = case();
        let out_dir = c.out.join("2026-03-01");
        let run = command(&c, &out_dir, None, &[]);
        let made = [c.out.as_path(), &out_dir];
        let files = ml_cli::testing::assert_modes_under_umask(umask, &run, &c.out, &made);
        assert_eq!(
            files,
            [
                out_dir.join("predictions.csv"),
                out_dir.join("provenance.json")
            ]
        );
    }
}

#[test]
fn a_panic_is_one_error_line_and_exit_1() {
    let c = case();
    ml_cli::testing::assert_panic_reported(command(&c, &c.out, None, &[]));
    assert!(!c.out.exists());
}
