//! Runs the real `ml-train` binary in temporary directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ml_model::testing::labeled;

const BIN: &str = env!("CARGO_BIN_EXE_ml-train");

struct Case {
    _tmp: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
}

/// A processed directory named like a real date holding a good `train.csv`.
fn case() -> Case {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("processed").join("2026-01-05");
    ml_data::io::write_labeled(&input.join("train.csv"), &labeled(1500, 5)).expect("write");
    let output = tmp.path().join("models").join("2026-01-05");
    Case {
        _tmp: tmp,
        input,
        output,
    }
}

fn command(input: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--input-dir")
        .arg(input)
        .arg("--output-dir")
        .arg(output)
        .args(extra);
    command
}

fn train(input: &Path, output: &Path, extra: &[&str]) -> Output {
    command(input, output, extra)
        .output()
        .expect("run ml-train")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 65: the training data is unusable (Airflow does not retry it).
const BAD_INPUT: i32 = 65;
/// Exit 2: the command line is refused.
const USAGE: i32 = 2;

/// Fails with exit `code`, one `error:` line containing every piece of `expect`, and no
/// outputs.
fn assert_fails(c: &Case, out: &Output, code: i32, expect: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    // Progress lines may come first; the error is the one line that starts with `error: `.
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    let first = errors[0];
    for piece in expect {
        assert!(first.contains(piece), "{piece:?} not in {first:?}");
    }
    assert!(!c.output.join("model.bin").exists());
    assert!(!c.output.join("params.json").exists());
    assert!(!c.output.join("reference_profile.json").exists());
    assert!(!c.output.join("MLmodel").exists());
}

/// `reference_profile.json` of a model directory, parsed and checked.
fn profile(dir: &Path) -> ml_model::ReferenceProfile {
    let text = std::fs::read_to_string(dir.join("reference_profile.json")).expect("profile");
    let profile: ml_model::ReferenceProfile = serde_json::from_str(&text).expect("json");
    profile.check().expect("consistent profile");
    profile
}

fn params(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("params.json")).expect("params.json");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn trains_logistic_regression_and_writes_model_and_params() {
    let c = case();
    let out = train(&c.input, &c.output, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("fit logistic-regression"));
    let model = ml_model::Model::load_dir(&c.output).expect("model loads");
    assert_eq!(model.kind(), ml_model::ModelKind::LogisticRegression);
    let p = params(&c.output);
    assert_eq!(p["model"], "logistic-regression");
    assert_eq!(p["hyperparameters"]["alpha"], 1.0);
    assert_eq!(p["rows"]["train"], 1500);
    assert_eq!(p["data_date"], "2026-01-05");
    assert_eq!(p["format_version"], 2);
    assert!(p["probabilities"]
        .as_str()
        .is_some_and(|t| t.starts_with("logistic function")));
    assert!(p["code_version"].is_string());
    // Only the four outputs (model, params, profile, MLmodel descriptor), no temporary
    // leftovers.
    let mut names: Vec<_> = std::fs::read_dir(&c.output)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "MLmodel",
            "model.bin",
            "params.json",
            "reference_profile.json"
        ]
    );
}

/// The profile is that of train.csv's features: every feature in schema order, the
/// training row count, and no drift against the very rows it was built from.
#[test]
fn the_reference_profile_describes_the_training_features() {
    let c = case();
    let out = train(&c.input, &c.output, &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let p = profile(&c.output);
    assert_eq!(p.format, 1);
    assert_eq!(p.rows, 1500);
    let names: Vec<&str> = p.features.iter().map(|f| f.name.as_str()).collect();
    let schema: Vec<&str> = ml_data::schema::feature_names().collect();
    assert_eq!(names, schema);
    let age = &p.features[0];
    assert!(
        matches!(&age.bins, ml_model::profile::Bins::Numeric { edges } if edges.len() == 9),
        "{age:?}"
    );
    let sex = &p.features[1];
    assert_eq!(
        sex.bins,
        ml_model::profile::Bins::Categorical {
            categories: vec![0.0, 1.0]
        }
    );
    let train = ml_data::io::read_labeled(&c.input.join("train.csv")).expect("train.csv");
    for d in p.psi(&train.features).expect("psi") {
        assert_eq!(d.psi, 0.0, "{}", d.name);
    }
}

#[test]
fn random_forest_takes_its_hyperparameters() {
    let c = case();
    let out = train(
        &c.input,
        &c.output,
        &[
            "--model",
            "random-forest",
            "--n-trees",
            "5",
            "--max-depth",
            "4",
            "--seed",
            "3",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "--quiet: {}", stderr(&out));
    let p = params(&c.output);
    assert_eq!(p["model"], "random-forest");
    assert!(p["probabilities"]
        .as_str()
        .is_some_and(|t| t.contains("class-1 frequency") && t.contains("not the share of votes")));
    assert_eq!(p["hyperparameters"]["n_trees"], 5);
    assert_eq!(p["hyperparameters"]["max_depth"], 4);
    assert_eq!(p["hyperparameters"]["seed"], 3);
}

#[test]
fn same_input_gives_byte_identical_files() {
    let c = case();
    for extra in [&[][..], &["--model", "random-forest", "--n-trees", "6"][..]] {
        let a = c.output.join("a");
        let b = c.output.join("b");
        assert!(train(&c.input, &a, extra).status.success());
        assert!(train(&c.input, &b, extra).status.success());
        for f in ["model.bin", "params.json", "reference_profile.json"] {
            assert_eq!(
                std::fs::read(a.join(f)).expect("a"),
                std::fs::read(b.join(f)).expect("b"),
                "{f} {extra:?}"
            );
        }
        std::fs::remove_dir_all(&a).expect("rm");
        std::fs::remove_dir_all(&b).expect("rm");
    }
}

#[test]
fn data_date_is_null_for_other_directory_names() {
    let c = case();
    let other = c.input.with_file_name("latest");
    std::fs::rename(&c.input, &other).expect("rename");
    assert!(train(&other, &c.output, &["-q"]).status.success());
    assert!(params(&c.output)["data_date"].is_null());
}

/// Rewrites train.csv with `edit` applied to its text.
fn edit_train(c: &Case, edit: impl FnOnce(String) -> String) {
    let path = c.input.join("train.csv");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, edit(text)).expect("write");
}

fn replace_first_cell_of_line(text: &str, line: usize, value: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rest = lines[line].split_once(',').map(|(_, r)| r.to_string());
    lines[line] = format!("{value},{}", rest.unwrap_or_default());
    lines.join("\n") + "\n"
}

#[test]
fn bad_input_files_are_one_line_errors_naming_the_file() {
    type Edit = fn(String) -> String;
    let cases: [(&str, Edit, &[&str]); 9] = [
        ("empty file", |_| String::new(), &["train.csv", "empty"]),
        (
            "header only",
            |t| t.lines().next().unwrap_or_default().to_string() + "\n",
            &["train.csv", "no data rows"],
        ),
        (
            "missing column",
            |t| t.replacen("age,", "", 1),
            &["train.csv"],
        ),
        (
            "misnamed column",
            |t| t.replacen("chol", "cholesterol", 1),
            &["train.csv", "chol"],
        ),
        (
            "extra column",
            |t| {
                t.lines()
                    .enumerate()
                    .map(|(i, l)| {
                        if i == 0 {
                            format!("{l},extra\n")
                        } else {
                            format!("{l},1\n")
                        }
                    })
                    .collect()
            },
            &["train.csv", "extra"],
        ),
        (
            "non-numeric cell",
            |t| replace_first_cell_of_line(&t, 3, "old"),
            &["train.csv", "row 3", "age"],
        ),
        (
            "NaN text",
            |t| replace_first_cell_of_line(&t, 2, "NaN"),
            &["train.csv", "row 2", "age"],
        ),
        (
            "inf text",
            |t| replace_first_cell_of_line(&t, 2, "inf"),
            &["train.csv", "row 2", "age"],
        ),
        (
            "target not 0/1",
            |t| {
                let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
                let l = &mut lines[4];
                l.pop();
                l.push('2');
                lines.join("\n") + "\n"
            },
            &["train.csv", "row 4", "target"],
        ),
    ];
    for (what, edit, expect) in cases {
        let c = case();
        edit_train(&c, edit);
        let out = train(&c.input, &c.output, &["-q"]);
        eprintln!("{what}: {}", stderr(&out).trim());
        assert_fails(&c, &out, BAD_INPUT, expect);
    }
}

#[test]
fn one_class_training_set_is_a_clear_error() {
    let c = case();
    let mut data = labeled(50, 1);
    data.target = vec![0; 50];
    ml_data::io::write_labeled(&c.input.join("train.csv"), &data).expect("write");
    let out = train(&c.input, &c.output, &["-q"]);
    assert_fails(&c, &out, BAD_INPUT, &["train.csv", "only class 0"]);
}

#[test]
fn missing_directory_and_file_are_named() {
    let c = case();
    let gone = c.input.with_file_name("2026-01-06");
    assert_fails(
        &c,
        &train(&gone, &c.output, &["-q"]),
        BAD_INPUT,
        &["2026-01-06", "no such directory"],
    );
    std::fs::remove_file(c.input.join("train.csv")).expect("rm");
    assert_fails(
        &c,
        &train(&c.input, &c.output, &["-q"]),
        BAD_INPUT,
        &["train.csv", "no such file"],
    );
}

#[test]
fn unwritable_output_directory_is_named() {
    let c = case();
    let blocker = c.input.join("not-a-dir");
    std::fs::write(&blocker, b"").expect("write");
    let out = train(&c.input, &blocker.join("model"), &["-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: ") && stderr(&out).contains("not-a-dir"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_model_kind_and_foreign_flags_are_usage_errors() {
    let c = case();
    let out = train(&c.input, &c.output, &["--model", "svm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'svm'"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("logistic-regression"));
    let out = train(&c.input, &c.output, &["--n-trees", "3"]);
    assert_fails(
        &c,
        &out,
        USAGE,
        &["error: --n-trees does not apply to --model logistic-regression"],
    );
    let out = train(
        &c.input,
        &c.output,
        &["--model", "random-forest", "--feature-fraction", "2"],
    );
    assert_fails(
        &c,
        &out,
        USAGE,
        &["invalid value '2' for '--feature-fraction <FEATURE_FRACTION>': must be a number in (0, 1]"],
    );
}

#[test]
fn every_numeric_flag_is_bounded() {
    let c = case();
    // `--flag=value`, so that a value starting with `-` is not read as a flag.
    let forest: [(&str, &str); 12] = [
        ("--n-trees=0", "0 is not in 1..=10000"),
        ("--n-trees=10001", "10001 is not in 1..=10000"),
        ("--n-trees=1000000000000000000000", "--n-trees"),
        ("--max-depth=0", "0 is not in 1..=65535"),
        ("--max-depth=70000", "70000 is not in 1..=65535"),
        ("--min-samples-leaf=0", "0 is not in 1..=4294967295"),
        ("--max-samples=0", "0 is not in 1..=4294967295"),
        (
            "--max-samples=4294967296",
            "4294967296 is not in 1..=4294967295",
        ),
        ("--feature-fraction=0", "must be a number in (0, 1]"),
        ("--feature-fraction=NaN", "must be a number in (0, 1]"),
        ("--seed=-1", "--seed"),
        ("--seed=1.5", "--seed"),
    ];
    for (flag, want) in forest {
        let out = train(&c.input, &c.output, &["--model=random-forest", flag]);
        let name = flag.split('=').next().unwrap_or_default();
        assert_fails(&c, &out, USAGE, &[name, want]);
    }
    for (flag, want) in [
        ("--alpha=-1", "must be a finite number >= 0"),
        ("--alpha=inf", "must be a finite number >= 0"),
        ("--c=0", "must be a finite number > 0"),
    ] {
        let out = train(&c.input, &c.output, &[flag]);
        assert_fails(&c, &out, USAGE, &[want]);
    }
}

#[test]
fn an_unreachable_mlflow_exits_75_after_a_bounded_retry() {
    let c = case();
    let mut run = command(&c.input, &c.output, &["-q"]);
    let uri = ml_cli::testing::unreachable_mlflow(&mut run);
    ml_cli::testing::assert_mlflow_unreachable(run, &uri);
    assert!(!c.output.join(ml_mlflow::RUN_RECORD_FILE).exists());
}

#[test]
fn outputs_are_readable_by_others_unless_the_umask_says_no() {
    for umask in ml_cli::testing::UMASKS {
        let c = case();
        let models = c.output.parent().expect("models dir").to_path_buf();
        let run = command(&c.input, &c.output, &[]);
        let made = [models.as_path(), &c.output];
        let files = ml_cli::testing::assert_modes_under_umask(umask, &run, &models, &made);
        let names: Vec<_> = files.iter().filter_map(|f| f.file_name()).collect();
        assert_eq!(
            names,
            [
                "MLmodel",
                "model.bin",
                "params.json",
                "reference_profile.json"
            ]
        );
    }
}

#[test]
fn a_panic_is_one_error_line_and_exit_1() {
    let c = case();
    ml_cli::testing::assert_panic_reported(command(&c.input, &c.output, &[]));
    assert!(!c.output.exists());
}
