//! Runs the real `ml-preprocess` binary on generated and deliberately broken raw days.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn command(input: &Path, output: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ml-preprocess"));
    command
        .arg("--input-dir")
        .arg(input)
        .arg("--output-dir")
        .arg(output);
    command
}

fn preprocess(input: &Path, output: &Path) -> Output {
    command(input, output)
        .output()
        .expect("spawn ml-preprocess")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A generated raw day of `rows` rows in `root/raw`.
fn raw_day(root: &Path, rows: usize) -> PathBuf {
    let dir = root.join("raw");
    let options = ml_generate::Options {
        output_dir: dir.clone(),
        date: "2024-04-10".parse().expect("date"),
        rows: Some(rows),
        seed: 1,
    };
    ml_generate::run(&options).expect("generate");
    dir
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(String::from)
        .collect();
    f(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

/// Replaces the cell of `column` (a header name) on data line `row` (1-based, header not
/// counted).
fn set_cell(path: &Path, row: usize, column: &str, value: &str) {
    edit(path, |lines| {
        let col = lines[0]
            .split(',')
            .position(|name| name == column)
            .unwrap_or_else(|| panic!("no column {column} in {}", path.display()));
        let mut cells: Vec<String> = lines[row].split(',').map(String::from).collect();
        cells[col] = value.to_string();
        lines[row] = cells.join(",");
    });
}

/// Drops the first column (the id) of every line of a file.
fn drop_ids(path: &Path) {
    edit(path, |lines| {
        for line in lines.iter_mut() {
            *line = line
                .split_once(',')
                .map_or("", |(_, rest)| rest)
                .to_string();
        }
    });
}

/// The text after the first comma: a raw line without its id.
fn after_id(line: &str) -> &str {
    line.split_once(',').map_or("", |(_, rest)| rest)
}

#[test]
fn writes_validated_training_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = raw_day(dir.path(), 2000);
    let out = dir.path().join("processed");
    let o = preprocess(&raw, &out);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    assert!(text(&o.stderr).contains("train_data.csv"));
    let written = std::fs::read_to_string(out.join("train_data.csv")).expect("output");
    let mut lines = written.lines();
    assert_eq!(
        lines.next(),
        Some("age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal,target")
    );
    let data = std::fs::read_to_string(raw.join("data.csv")).expect("raw");
    let target = std::fs::read_to_string(raw.join("target.csv")).expect("raw");
    // Generated rows are distinct, so cleaning keeps all of them, each with its label, and
    // without the id: it is a key, not a feature.
    for ((got, features), label) in lines.zip(data.lines().skip(1)).zip(target.lines().skip(1)) {
        assert_eq!(got, format!("{},{}", after_id(features), after_id(label)));
    }
    assert_eq!(written.lines().count(), 2001);
}

#[test]
fn drops_duplicates_and_is_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = raw_day(dir.path(), 300);
    // Row 5 again under another id: a duplicate all the same (the id is no part of a row's
    // content), where the same id twice would be bad input.
    for file in ["data.csv", "target.csv"] {
        edit(&raw.join(file), |l| {
            let row = format!("again-5,{}", after_id(&l[5]));
            l.push(row);
        });
    }
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let o = preprocess(&raw, &a);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("1 duplicate rows dropped"),
        "{}",
        text(&o.stderr)
    );
    assert!(preprocess(&raw, &b).status.success());
    let read = |d: &Path| std::fs::read(d.join("train_data.csv")).expect("output");
    assert_eq!(read(&a), read(&b));
    assert_eq!(String::from_utf8_lossy(&read(&a)).lines().count(), 301);
}

/// Each broken input: exit 65 (bad input: Airflow does not retry it), one `error:` line
/// naming the file (and column and row) with no parser-library advice, and no file at all in
/// the output directory.
#[test]
fn rejects_every_kind_of_bad_input() {
    type Breakage = fn(&Path);
    let cases: Vec<(&str, Breakage, &[&str])> = vec![
        (
            "missing data.csv",
            |r| std::fs::remove_file(r.join("data.csv")).expect("rm"),
            &["data.csv: no such file"],
        ),
        (
            "missing target.csv",
            |r| std::fs::remove_file(r.join("target.csv")).expect("rm"),
            &["target.csv: no such file"],
        ),
        (
            "empty file",
            |r| std::fs::write(r.join("data.csv"), "").expect("w"),
            &["data.csv: file is empty"],
        ),
        (
            "header only",
            |r| edit(&r.join("data.csv"), |l| l.truncate(1)),
            &["data.csv: header only"],
        ),
        (
            "missing column",
            |r| {
                edit(&r.join("data.csv"), |l| {
                    for line in l.iter_mut() {
                        *line = line.rsplit_once(',').map_or("", |x| x.0).to_string();
                    }
                })
            },
            &["data.csv: missing column `thal`"],
        ),
        (
            "extra column",
            |r| {
                edit(&r.join("data.csv"), |l| {
                    for (i, line) in l.iter_mut().enumerate() {
                        line.push_str(if i == 0 { ",note" } else { ",1" });
                    }
                })
            },
            &["data.csv: unexpected column `note` at position 15"],
        ),
        (
            "misnamed column",
            |r| {
                edit(&r.join("data.csv"), |l| {
                    l[0] = l[0].replace("chol", "cholesterol")
                })
            },
            &["unexpected column `cholesterol` at position 6"],
        ),
        (
            "duplicate column",
            |r| edit(&r.join("data.csv"), |l| l[0] = l[0].replace("fbs", "sex")),
            &["column `sex` appears more than once"],
        ),
        (
            "non-numeric cell",
            |r| set_cell(&r.join("data.csv"), 17, "chol", "high"),
            &["data.csv: row 17 (line 18), column `chol`: \"high\" is not a number"],
        ),
        (
            "NaN text",
            |r| set_cell(&r.join("data.csv"), 3, "age", "NaN"),
            &["row 3 (line 4), column `age`: \"NaN\" is not a finite number"],
        ),
        (
            "inf text",
            |r| set_cell(&r.join("data.csv"), 9, "oldpeak", "inf"),
            &["row 9 (line 10), column `oldpeak`: \"inf\" is not a finite number"],
        ),
        (
            "out of range",
            |r| set_cell(&r.join("data.csv"), 40, "trestbps", "400"),
            &["row 40 (line 41), column `trestbps`: 400 is outside the valid range"],
        ),
        (
            "unknown category",
            |r| set_cell(&r.join("data.csv"), 2, "cp", "7"),
            &["row 2 (line 3), column `cp`: 7 is outside the valid range [0, 3]"],
        ),
        (
            "trailing space",
            |r| set_cell(&r.join("data.csv"), 12, "age", "61 "),
            &["data.csv: row 12 (line 13), column `age`: \"61 \" is not a number: it has leading or trailing spaces"],
        ),
        (
            "leading space",
            |r| set_cell(&r.join("data.csv"), 13, "chol", " 230"),
            &["data.csv: row 13 (line 14), column `chol`: \" 230\" is not a number: it has leading or trailing spaces"],
        ),
        (
            "padded label",
            |r| set_cell(&r.join("target.csv"), 4, "target", "1 "),
            &["target.csv: row 4 (line 5), column `target`: \"1 \" is not a number"],
        ),
        (
            "quote never closed",
            |r| set_cell(&r.join("data.csv"), 20, "trestbps", "\"140"),
            &["data.csv: row 20 (line 21), column `trestbps`: \"\\\"140", "opens a quote that is never closed"],
        ),
        (
            "ragged row",
            |r| edit(&r.join("data.csv"), |l| l[8].push_str(",1")),
            &["data.csv: row 8 (line 9): expected 14 fields, found 15"],
        ),
        (
            "row-count mismatch",
            |r| {
                edit(&r.join("target.csv"), |l| {
                    l.pop();
                })
            },
            &["data.csv has 200 rows but", "target.csv has 199"],
        ),
        (
            "target not 0/1",
            |r| set_cell(&r.join("target.csv"), 5, "target", "2"),
            &["target.csv: row 5 (line 6), column `target`: \"2\" is not a label"],
        ),
        (
            "empty target",
            |r| set_cell(&r.join("target.csv"), 6, "target", ""),
            &["target.csv: row 6 (line 7), column `target`: empty cell"],
        ),
        (
            "misnamed target",
            |r| edit(&r.join("target.csv"), |l| l[0] = "id,label".into()),
            &["target.csv: unexpected column `label`"],
        ),
        (
            "empty id",
            |r| set_cell(&r.join("data.csv"), 31, "id", ""),
            &["data.csv: row 31 (line 32), column `id`: empty cell"],
        ),
        (
            "padded id",
            |r| set_cell(&r.join("target.csv"), 32, "id", "2024-04-10-000032 "),
            &["target.csv: row 32 (line 33), column `id`: \"2024-04-10-000032 \" has leading or trailing spaces"],
        ),
        (
            "duplicate id",
            |r| set_cell(&r.join("data.csv"), 150, "id", "2024-04-10-000012"),
            &["data.csv: row 150 (line 151), column `id`: \"2024-04-10-000012\" is already the id of row 12"],
        ),
        (
            "duplicate id in target.csv only",
            |r| set_cell(&r.join("target.csv"), 3, "id", "2024-04-10-000002"),
            &["target.csv: row 3 (line 4), column `id`: \"2024-04-10-000002\" is already the id of row 2"],
        ),
        (
            "ids that differ between the files",
            |r| set_cell(&r.join("target.csv"), 77, "id", "2024-04-10-999999"),
            &["target.csv: row 77 (line 78), column `id`: \"2024-04-10-999999\" does not match \"2024-04-10-000077\", the id of row 77 in", "data.csv"],
        ),
        (
            "rows in another order",
            |r| {
                edit(&r.join("target.csv"), |l| l.swap(10, 11));
            },
            &["target.csv: row 10 (line 11), column `id`: \"2024-04-10-000011\" does not match \"2024-04-10-000010\""],
        ),
        (
            "id not first",
            |r| {
                edit(&r.join("data.csv"), |l| {
                    for line in l.iter_mut() {
                        let (id, rest) = line.split_once(',').expect("an id");
                        *line = format!("{rest},{id}");
                    }
                })
            },
            &["data.csv: column `id` must be the first column, found at position 14"],
        ),
    ];
    for (name, breakage, wants) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = raw_day(dir.path(), 200);
        breakage(&raw);
        let out = dir.path().join("processed");
        let o = preprocess(&raw, &out);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(65), "{name}: {err}");
        let errors = ml_cli::testing::error_lines(&o.stderr);
        assert_eq!(errors.len(), 1, "{name}: {err}");
        assert!(
            errors[0].starts_with("error: cannot preprocess"),
            "{name}: {err}"
        );
        for want in wants {
            assert!(errors[0].contains(want), "{name}: want {want:?} in {err}");
        }
        for internal in ["panicked", "infer_schema_length", "ignore_errors", "polars"] {
            assert!(!err.contains(internal), "{name}: {err}");
        }
        assert!(
            !out.exists(),
            "{name}: output directory must not be created"
        );
    }
}

/// Days written before ids existed, or with ids in one file only, are read as they are: the
/// training table is the same as from the keyed day.
#[test]
fn days_without_ids_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keyed = raw_day(&dir.path().join("keyed"), 300);
    let out = dir.path().join("keyed/processed");
    assert!(preprocess(&keyed, &out).status.success());
    let want = std::fs::read(out.join("train_data.csv")).expect("output");
    type Variant = fn(&Path);
    let variants: [(&str, Variant); 3] = [
        ("no ids", |r| {
            drop_ids(&r.join("data.csv"));
            drop_ids(&r.join("target.csv"));
        }),
        ("ids in data.csv only", |r| drop_ids(&r.join("target.csv"))),
        ("ids in target.csv only", |r| drop_ids(&r.join("data.csv"))),
    ];
    for (name, variant) in variants {
        let raw = raw_day(&dir.path().join(name), 300);
        variant(&raw);
        let out = dir.path().join(name).join("processed");
        let o = preprocess(&raw, &out);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        let got = std::fs::read(out.join("train_data.csv")).expect("output");
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn missing_input_dir_and_unwritable_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = preprocess(&dir.path().join("raw/2024-01-01"), &dir.path().join("out"));
    // A missing day is bad input (no retry); a directory that cannot be created is not.
    assert_eq!(o.status.code(), Some(65));
    assert!(
        text(&o.stderr).contains("raw/2024-01-01: no such directory"),
        "{}",
        text(&o.stderr)
    );

    let raw = raw_day(dir.path(), 50);
    let blocker = dir.path().join("processed");
    std::fs::write(&blocker, "").expect("write");
    let o = preprocess(&raw, &blocker.join("2024-01-01"));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("processed/2024-01-01: cannot create output directory"),
        "{err}"
    );
}

/// Rewrites every line of a file with `f`.
fn map_lines(path: &Path, f: impl Fn(&str) -> String, ending: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    let out: String = text.lines().map(|l| f(l) + ending).collect();
    std::fs::write(path, out).expect("write");
}

fn quote_cells(line: &str) -> String {
    let cells: Vec<String> = line.split(',').map(|c| format!("\"{c}\"")).collect();
    cells.join(",")
}

/// Quoted numbers and CRLF line endings are valid CSV: the same table comes out as from the
/// plain LF files.
#[test]
fn quoted_numbers_and_crlf_read_like_plain_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = raw_day(dir.path(), 300);
    let plain = dir.path().join("plain");
    assert!(preprocess(&raw, &plain).status.success());
    let want = std::fs::read(plain.join("train_data.csv")).expect("output");
    type Variant = fn(&Path);
    let variants: [(&str, Variant); 4] = [
        ("CRLF", |r| {
            for f in ["data.csv", "target.csv"] {
                map_lines(&r.join(f), str::to_string, "\r\n");
            }
        }),
        ("every cell quoted", |r| {
            for f in ["data.csv", "target.csv"] {
                map_lines(&r.join(f), quote_cells, "\n");
            }
        }),
        ("quoted and CRLF", |r| {
            map_lines(&r.join("data.csv"), quote_cells, "\r\n");
        }),
        ("one quoted number", |r| {
            set_cell(&r.join("data.csv"), 7, "age", "\"61\"")
        }),
    ];
    for (name, variant) in variants {
        let raw = raw_day(&dir.path().join(name), 300);
        variant(&raw);
        let out = dir.path().join(name).join("processed");
        let o = preprocess(&raw, &out);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        let got = std::fs::read(out.join("train_data.csv")).expect("output");
        if name == "one quoted number" {
            let line = |b: &[u8], i: usize| -> String {
                String::from_utf8_lossy(b)
                    .lines()
                    .nth(i)
                    .unwrap_or_default()
                    .to_string()
            };
            assert!(line(&got, 7).starts_with("61,"), "{}", line(&got, 7));
            assert_eq!(line(&got, 8), line(&want, 8));
        } else {
            assert_eq!(got, want, "{name}");
        }
    }
}

/// ml-generate's golden day (2026-03-01, seed 7), cleaned: pinned, so that a change in the
/// reader, the cleaning or the writer that alters the training table fails here. ml-split
/// pins the split of exactly these bytes.
#[test]
fn golden_day_cleans_to_pinned_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    let options = ml_generate::Options {
        output_dir: raw.clone(),
        date: "2026-03-01".parse().expect("date"),
        rows: None,
        seed: 7,
    };
    ml_generate::run(&options).expect("generate");
    let out = dir.path().join("processed");
    let o = preprocess(&raw, &out);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        ml_cli::testing::sha256(&out.join("train_data.csv")),
        "7f99c8e630ba560ad7c33a0389343d5e8600e3f901d2c978d8c0de786fc36358"
    );
}

#[test]
fn outputs_are_readable_by_others_unless_the_umask_says_no() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = raw_day(dir.path(), 50);
    for umask in ml_cli::testing::UMASKS {
        let processed = dir.path().join(format!("processed-{umask:o}"));
        let out = processed.join("2024-04-10");
        let made = [processed.as_path(), &out];
        let files = ml_cli::testing::assert_modes_under_umask(
            umask,
            &command(&raw, &out),
            &processed,
            &made,
        );
        assert_eq!(files, [out.join("train_data.csv")]);
    }
}

#[test]
fn a_panic_is_one_error_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = raw_day(dir.path(), 20);
    let out = dir.path().join("out");
    ml_cli::testing::assert_panic_reported(command(&raw, &out));
    assert!(!out.exists());
}
