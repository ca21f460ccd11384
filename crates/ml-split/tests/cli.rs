//! Runs the real `ml-split` binary on a generated training table.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn command(input: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ml-split"));
    command
        .arg("--input-dir")
        .arg(input)
        .arg("--output-dir")
        .arg(output)
        .args(extra);
    command
}

fn split(input: &Path, output: &Path, extra: &[&str]) -> Output {
    command(input, output, extra)
        .output()
        .expect("spawn ml-split")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `root/processed/train_data.csv` with `rows` generated rows.
fn processed(root: &Path, rows: usize) -> PathBuf {
    let day = ml_generate::generate("2024-09-15".parse().expect("date"), 5, Some(rows));
    let dir = root.join("processed");
    ml_data::io::write_labeled(&dir.join("train_data.csv"), &day).expect("write");
    dir
}

fn labels(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn stratified_split_into_train_and_val() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = processed(dir.path(), 1000);
    let o = split(&input, &input, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    let all = labels(&input.join("train_data.csv"));
    let (train, val) = (
        labels(&input.join("train.csv")),
        labels(&input.join("val.csv")),
    );
    assert_eq!(train.len() + val.len(), 1000);
    assert_eq!(val.len(), 200);
    let share = |v: &[String]| v.iter().filter(|l| *l == "1").count() as f64 / v.len() as f64;
    assert!(
        (share(&val) - share(&all)).abs() < 0.01,
        "{} vs {}",
        share(&val),
        share(&all)
    );
    assert!((share(&train) - share(&all)).abs() < 0.01);
    // Each part keeps the input order, and together they hold every input row.
    let rows = |p: &str| -> Vec<String> {
        let text = std::fs::read_to_string(input.join(p)).expect("read");
        text.lines().skip(1).map(String::from).collect()
    };
    let source = rows("train_data.csv");
    let position = |row: &String| {
        source
            .iter()
            .position(|s| s == row)
            .expect("row from input")
    };
    for part in ["train.csv", "val.csv"] {
        let positions: Vec<usize> = rows(part).iter().map(position).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{part} keeps input order"
        );
    }
    let mut all_rows = [rows("train.csv"), rows("val.csv")].concat();
    all_rows.sort();
    let mut sorted_source = source.clone();
    sorted_source.sort();
    assert_eq!(all_rows, sorted_source);
}

#[test]
fn seed_and_val_size_control_the_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = processed(dir.path(), 500);
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let o = split(&input, &out, extra);
        assert!(o.status.success(), "{}", text(&o.stderr));
        (
            std::fs::read(out.join("train.csv")).expect("train"),
            std::fs::read(out.join("val.csv")).expect("val"),
        )
    };
    let a = run("a", &["--seed", "3"]);
    assert_eq!(a, run("b", &["--seed", "3"]));
    assert_ne!(a, run("c", &["--seed", "4"]));
    let (_, val) = run("d", &["--val-size", "0.3"]);
    assert_eq!(String::from_utf8_lossy(&val).lines().count(), 151);
}

#[test]
fn bad_arguments_and_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = processed(dir.path(), 100);
    for bad in ["0", "1", "1.5", "x"] {
        let o = split(&input, &input, &["--val-size", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(text(&o.stderr).contains("strictly between 0 and 1"));
    }

    // Bad input (65, no retry): a missing directory or file, a bad cell, too few rows.
    let o = split(&dir.path().join("nope"), &input, &[]);
    assert_eq!(o.status.code(), Some(65));
    assert!(
        text(&o.stderr).contains("nope: no such directory"),
        "{}",
        text(&o.stderr)
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let o = split(&empty, &empty, &[]);
    assert_eq!(o.status.code(), Some(65));
    assert!(
        text(&o.stderr).contains("train_data.csv: no such file"),
        "{}",
        text(&o.stderr)
    );

    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).expect("mkdir");
    let good = std::fs::read_to_string(input.join("train_data.csv")).expect("read");
    std::fs::write(
        broken.join("train_data.csv"),
        good.replacen(",0\n", ",x\n", 1),
    )
    .expect("write");
    let o = split(&broken, &broken, &[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(65), "{err}");
    assert!(
        err.contains("train_data.csv: row") && err.contains("column `target`"),
        "{err}"
    );
    assert!(!broken.join("train.csv").exists() && !broken.join("val.csv").exists());

    let tiny = dir.path().join("tiny");
    std::fs::create_dir(&tiny).expect("mkdir");
    let one_row: String = good.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(tiny.join("train_data.csv"), one_row).expect("write");
    let o = split(&tiny, &tiny, &[]);
    assert_eq!(o.status.code(), Some(65));
    assert!(
        text(&o.stderr).contains("too few to split"),
        "{}",
        text(&o.stderr)
    );

    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").expect("write");
    // Not the input's fault: an ordinary failure (1).
    let o = split(&input, &blocker, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("blocker: cannot create output directory"),
        "{}",
        text(&o.stderr)
    );
}

/// The split of ml-generate's golden day (2026-03-01, seed 7) as ml-preprocess cleans it,
/// with the default --val-size and --seed: pinned, so that a dependency upgrade that changes
/// the shuffle (the named ChaCha12 generator, rand's `shuffle`) fails here.
#[test]
fn golden_split_is_byte_for_byte_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = ml_generate::generate("2026-03-01".parse().expect("date"), 7, None);
    let input = dir.path().join("processed");
    ml_data::io::write_labeled(&input.join("train_data.csv"), &day).expect("write");
    // The same bytes as ml-preprocess makes of that day (its golden test pins them too).
    assert_eq!(
        ml_cli::testing::sha256(&input.join("train_data.csv")),
        "7f99c8e630ba560ad7c33a0389343d5e8600e3f901d2c978d8c0de786fc36358"
    );
    let o = split(&input, &input, &["-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        ml_cli::testing::sha256(&input.join("train.csv")),
        "78d306bd0adc41643a7a16a167323f9ddc5d54246b29be44ebd3381479a68add"
    );
    assert_eq!(
        ml_cli::testing::sha256(&input.join("val.csv")),
        "89c2df98be36a0a14e5000020772a77cfcd94d021446b90996c004bc1366c0f5"
    );
}

#[test]
fn outputs_are_readable_by_others_unless_the_umask_says_no() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = processed(dir.path(), 100);
    for umask in ml_cli::testing::UMASKS {
        let root = dir.path().join(format!("split-{umask:o}"));
        let out = root.join("2024-09-15");
        let run = command(&input, &out, &[]);
        let files = ml_cli::testing::assert_modes_under_umask(umask, &run, &root, &[&root, &out]);
        assert_eq!(files, [out.join("train.csv"), out.join("val.csv")]);
    }
}

#[test]
fn seed_must_be_a_whole_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = processed(dir.path(), 20);
    for bad in ["-1", "1.5", "18446744073709551616"] {
        let o = split(&input, &input, &[&format!("--seed={bad}")]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let errors = ml_cli::testing::error_lines(&o.stderr);
        assert_eq!(errors.len(), 1, "{}", text(&o.stderr));
        assert!(errors[0].contains("--seed <N>"), "{}", errors[0]);
    }
}

#[test]
fn a_panic_is_one_error_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = processed(dir.path(), 20);
    let out = dir.path().join("out");
    ml_cli::testing::assert_panic_reported(command(&input, &out, &[]));
    assert!(!out.exists());
}
