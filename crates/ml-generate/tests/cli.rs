//! Runs the real `ml-generate` binary in temporary directories.

use std::path::Path;
use std::process::{Command, Output};

fn generate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ml-generate"))
        .args(args)
        .output()
        .expect("spawn ml-generate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("output file")
}

const HEADER: &str = "age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal";

#[test]
fn writes_a_day_of_data_and_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("raw/2024-06-03");
    let o = generate(&[
        "--output-dir",
        out.to_str().expect("utf-8"),
        "--date",
        "2024-06-03",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    assert!(text(&o.stderr).contains("data.csv"), "{}", text(&o.stderr));

    let data = read(&out.join("data.csv"));
    let target = read(&out.join("target.csv"));
    let mut lines = data.lines();
    assert_eq!(lines.next(), Some(HEADER));
    let rows: Vec<&str> = lines.collect();
    assert!((1500..5000).contains(&rows.len()), "{} rows", rows.len());
    assert_eq!(target.lines().count(), rows.len() + 1);
    assert_eq!(target.lines().next(), Some("target"));
    assert!(target.lines().skip(1).all(|l| l == "0" || l == "1"));
    // Whole-number columns carry no ".0"; only oldpeak (column 10) has decimals.
    for row in &rows {
        for (i, cell) in row.split(',').enumerate() {
            assert!(i == 9 || !cell.contains('.'), "column {i} of {row}");
        }
    }
    assert!(
        rows.iter().any(|r| r.contains(",,") || r.ends_with(',')),
        "some empty cells"
    );
    let names: Vec<_> = std::fs::read_dir(&out)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
}

#[test]
fn same_date_and_seed_give_identical_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |name: &str, date: &str, seed: &str| {
        let out = dir.path().join(name);
        let out = out.to_str().expect("utf-8");
        let args = [
            "--output-dir",
            out,
            "--date",
            date,
            "--seed",
            seed,
            "--rows",
            "5000",
            "-q",
        ];
        let o = generate(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(o.stderr.is_empty(), "--quiet: {}", text(&o.stderr));
        let file = |name: &str| std::fs::read(Path::new(out).join(name)).expect("output");
        (file("data.csv"), file("target.csv"))
    };
    let a = run("a", "2024-02-29", "7");
    assert_eq!(a, run("b", "2024-02-29", "7"));
    assert_ne!(a.0, run("c", "2024-03-01", "7").0);
    assert_ne!(a.0, run("d", "2024-02-29", "8").0);
    assert_eq!(String::from_utf8_lossy(&a.0).lines().count(), 5001);
}

#[test]
fn rejects_bad_dates_as_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf-8");
    for date in ["2023-02-29", "2024-13-01", "24-01-01", "yesterday"] {
        let o = generate(&["--output-dir", out, "--date", date]);
        assert_eq!(o.status.code(), Some(2), "{date}");
        assert!(
            text(&o.stderr).contains("invalid date"),
            "{}",
            text(&o.stderr)
        );
    }
    let o = generate(&["--date", "2024-01-01"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--output-dir"));
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[test]
fn unwritable_output_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("raw");
    std::fs::write(&blocker, "a file where the directory should be").expect("write");
    let out = blocker.join("2024-01-01");
    let o = generate(&[
        "--output-dir",
        out.to_str().expect("utf-8"),
        "--date",
        "2024-01-01",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("error: cannot generate data for 2024-01-01"),
        "{err}"
    );
    assert!(
        err.lines().filter(|l| l.starts_with("error: ")).count() == 1
            && err.contains("raw/2024-01-01: cannot create output directory"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
}
