//! CSV reading and writing for the pipeline's files, with validation.
//!
//! Reading is one pass (the crate's own parser, module `csv`): records are split and plain
//! numbers parsed on the way, the header is checked against the schema, and every cell
//! against its column's rule, so the first problem in file order is reported with its file,
//! row, line and column, in the words of [`DataError`] and nothing from a parser library.
//! The whole-file readers and [`feature_batches`] share that pass; memory is the columns
//! read plus one buffer. A cell with spaces around its number (` 61`, `61 `) is rejected,
//! not trimmed: the schema says numbers, and a silent trim would hide an upstream bug.
//! Quoted cells (`"61"`) and CRLF line endings are valid CSV and read like plain ones.
//!
//! Writing goes through polars' CSV writer (the only use of polars left in the pipeline),
//! into an [`AtomicFile`].
//!
//! Every data row is 1-based in messages (header not counted) and the file line is given too.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::{
    CsvWriter, DataFrame, Float64Chunked, Int32Chunked, IntoColumn, NewChunkedArray, PolarsError,
    SerWriter,
};

use crate::atomic::AtomicFile;
use crate::csv::{Form, Records, Value};
use crate::error::{CellProblem, DataError};
use crate::frame::{Frame, Labeled};
use crate::schema::{Column, FEATURES, TARGET};

/// Rows per batch when a caller has no better idea: ~13 MB of columns (the text is read
/// through one 1 MiB buffer whatever the batch).
pub const DEFAULT_BATCH_ROWS: usize = 131_072;

/// How one column is validated.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Feature(&'static Column),
    Target,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::Feature(c) => c.name,
            Rule::Target => TARGET,
        }
    }

    /// Checks a parsed value; `text` gives the cell as written, for the message only.
    #[inline]
    fn check(self, value: Option<f64>, text: impl FnOnce() -> String) -> Result<(), CellProblem> {
        match (self, value) {
            (Rule::Feature(_), None) => Ok(()),
            (Rule::Target, None) => Err(CellProblem::Empty),
            (_, Some(v)) if !v.is_finite() => Err(CellProblem::NotFinite(text())),
            (Rule::Target, Some(v)) => {
                // `|`, not `||`: labels are random, and a branch on which one it is would be
                // mispredicted half the time.
                if (v == 0.0) | (v == 1.0) {
                    Ok(())
                } else {
                    Err(CellProblem::NotBinary(text()))
                }
            }
            (Rule::Feature(c), Some(v)) => {
                if v < c.min || v > c.max {
                    Err(CellProblem::OutOfRange {
                        value: v,
                        min: c.min,
                        max: c.max,
                    })
                } else if c.integer && v != (v as i64) as f64 {
                    // (Within the range checked above, `as i64` truncates exactly; cheaper
                    // than `fract`, a libm call on the baseline x86-64 target.)
                    Err(CellProblem::NotInteger(v))
                } else {
                    Ok(())
                }
            }
        }
    }
}

fn feature_rules() -> Vec<Rule> {
    FEATURES.iter().map(Rule::Feature).collect()
}

fn labeled_rules() -> Vec<Rule> {
    let mut rules = feature_rules();
    rules.push(Rule::Target);
    rules
}

/// The value of a cell that the parser did not read as a plain number: empty, a number in
/// another notation (`+1`, `1e3`, a quoted `"61"` that was not plain), or a problem.
fn parse_text(text: &str, form: Form) -> Result<Option<f64>, CellProblem> {
    match form {
        Form::Unclosed => {
            // The cell runs to the end of the file: quote its first line only.
            let first: String = text
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(40)
                .collect();
            return Err(CellProblem::UnclosedQuote(first));
        }
        Form::Raw => return Err(CellProblem::NotNumeric(text.to_string())),
        Form::Plain | Form::Quoted => {}
    }
    if text.is_empty() {
        return Ok(None);
    }
    if text.trim() != text {
        // Not trimmed away: a padded number usually means a hand edit or an upstream bug,
        // and the schema says numbers.
        return Err(CellProblem::Padded(text.to_string()));
    }
    text.parse::<f64>()
        .map(Some)
        .map_err(|_| CellProblem::NotNumeric(text.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Public reading API

/// Reads `data.csv`: exactly the schema's feature columns, in order. Empty cells become NaN.
pub fn read_features(path: &Path) -> Result<Frame, DataError> {
    let columns = read_validated(path, feature_rules())?;
    Ok(Frame {
        names: FEATURES.iter().map(|c| c.name.to_string()).collect(),
        columns,
    })
}

/// Reads `target.csv`: a single `target` column of 0/1 labels.
pub fn read_target(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut columns = read_validated(path, vec![Rule::Target])?;
    Ok(to_labels(columns.pop().unwrap_or_default()))
}

/// Reads a processed file (`train_data.csv`, `train.csv`, `val.csv`): features plus `target`.
pub fn read_labeled(path: &Path) -> Result<Labeled, DataError> {
    let mut columns = read_validated(path, labeled_rules())?;
    let target = to_labels(columns.pop().unwrap_or_default());
    Ok(Labeled {
        features: Frame {
            names: FEATURES.iter().map(|c| c.name.to_string()).collect(),
            columns,
        },
        target,
    })
}

/// Counts the data records of a CSV file without checking its header or cells.
pub fn count_rows(path: &Path) -> Result<usize, DataError> {
    // One cell kept: enough to tell a trailing blank line, which is not a record.
    let mut records = Records::new(open(path)?, 1);
    let mut rows: usize = 0;
    while records.next_record().map_err(|e| read_error(path, e))? {
        rows += 1;
    }
    Ok(rows.saturating_sub(1))
}

fn to_labels(column: Vec<f64>) -> Vec<u8> {
    // Already validated to be exactly 0.0 or 1.0.
    column.into_iter().map(|v| u8::from(v == 1.0)).collect()
}

fn read_validated(path: &Path, rules: Vec<Rule>) -> Result<Vec<Vec<f64>>, DataError> {
    let mut table = Table::open(path, rules)?;
    // A first stretch of rows tells how long a row is, so the columns can be sized for the
    // whole file at once instead of doubling their way there.
    let mut columns = table.empty_columns(SAMPLE_ROWS);
    let start = table.records.offset();
    let sampled = table.read(&mut columns, SAMPLE_ROWS)?;
    let per_row = (table.records.offset() - start) as f64 / sampled.max(1) as f64;
    let expected = (table.size.saturating_sub(start) as f64 / per_row.max(1.0) * 1.01) as usize;
    for column in &mut columns {
        // Only a guide: if it cannot be had, the columns grow as usual.
        let _ = column.try_reserve(expected.saturating_sub(column.len()));
    }
    table.read(&mut columns, usize::MAX)?;
    if table.rows == 0 {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(columns)
}

fn open(path: &Path) -> Result<File, DataError> {
    File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                    DataError::MissingDir {
                        path: dir.to_path_buf(),
                    }
                }
                _ => DataError::MissingFile {
                    path: path.to_path_buf(),
                },
            }
        } else {
            read_error(path, source)
        }
    })
}

fn read_error(path: &Path, source: std::io::Error) -> DataError {
    DataError::Read {
        path: path.to_path_buf(),
        source,
    }
}

#[cold]
fn cell_error(path: &Path, row: usize, rule: Rule, problem: CellProblem) -> DataError {
    DataError::Cell {
        path: path.to_path_buf(),
        row,
        column: rule.name().to_string(),
        problem,
    }
}

/// Rows read before [`read_validated`] sizes its columns.
const SAMPLE_ROWS: usize = 1024;

/// A CSV file being read against a list of column rules, header already checked.
struct Table {
    path: PathBuf,
    /// Bytes in the file when it was opened (a guide for sizing, not a limit).
    size: u64,
    records: Records<File>,
    rules: Vec<Rule>,
    /// Data rows read so far.
    rows: usize,
}

impl Table {
    fn open(path: &Path, rules: Vec<Rule>) -> Result<Self, DataError> {
        let file = open(path)?;
        let size = file.metadata().map_or(0, |m| m.len());
        let mut records = Records::new(file, usize::MAX);
        if !records.next_record().map_err(|e| read_error(path, e))? {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            });
        }
        // Header names are compared without surrounding spaces.
        let header: Vec<String> = (0..records.fields())
            .map(|i| records.text(records.cell(i)).trim().to_string())
            .collect();
        check_header(path, &header, &rules)?;
        records.keep(rules.len());
        Ok(Self {
            path: path.to_path_buf(),
            size,
            records,
            rules,
            rows: 0,
        })
    }

    fn empty_columns(&self, capacity: usize) -> Vec<Vec<f64>> {
        (0..self.rules.len())
            .map(|_| Vec::with_capacity(capacity))
            .collect()
    }

    /// Appends up to `max_rows` validated rows to `columns`; returns how many were read.
    fn read(&mut self, columns: &mut [Vec<f64>], max_rows: usize) -> Result<usize, DataError> {
        // Fields borrowed apart, so that the row loop keeps them in registers.
        let Table {
            path,
            records,
            rules,
            rows,
            ..
        } = self;
        let n = rules.len();
        let mut read = 0;
        while read < max_rows {
            if !records.next_record().map_err(|e| read_error(path, e))? {
                break;
            }
            read += 1;
            *rows += 1;
            // A quote left open swallows the rest of the file: say so, not "too few fields".
            if records.fields() != n
                && records.cell(records.fields().min(n) - 1).value != Value::Text(Form::Unclosed)
            {
                return Err(DataError::FieldCount {
                    path: path.clone(),
                    row: *rows,
                    expected: n,
                    found: records.fields(),
                });
            }
            for (j, (rule, column)) in rules.iter().zip(columns.iter_mut()).enumerate() {
                let cell = records.cell(j);
                let text = || records.text(cell);
                let checked = match cell.value {
                    Value::Number(v) => rule.check(Some(v), text).map(|()| v),
                    Value::Missing => rule.check(None, text).map(|()| f64::NAN),
                    Value::Text(form) => parse_text(&text(), form)
                        .and_then(|v| rule.check(v, text).map(|()| v.unwrap_or(f64::NAN))),
                };
                match checked {
                    Ok(v) => column.push(v),
                    Err(problem) => return Err(cell_error(path, *rows, *rule, problem)),
                }
            }
        }
        Ok(read)
    }
}

fn check_header(path: &Path, found: &[String], rules: &[Rule]) -> Result<(), DataError> {
    let expected: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    let p = || path.to_path_buf();
    for (i, name) in found.iter().enumerate() {
        if found[..i].contains(name) {
            return Err(DataError::DuplicateColumn {
                path: p(),
                column: name.clone(),
            });
        }
    }
    for (i, name) in found.iter().enumerate() {
        if !expected.contains(&name.as_str()) {
            return Err(DataError::ExtraColumn {
                path: p(),
                column: name.clone(),
                position: i + 1,
                expected: expected.join(","),
            });
        }
    }
    for name in &expected {
        if !found.iter().any(|f| f == name) {
            return Err(DataError::MissingColumn {
                path: p(),
                column: name.to_string(),
                header: found.join(","),
            });
        }
    }
    for (i, (want, got)) in expected.iter().zip(found).enumerate() {
        if want != got {
            return Err(DataError::ColumnOrder {
                path: p(),
                position: i + 1,
                expected: want.to_string(),
                found: got.clone(),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Streaming reader

/// Reads `data.csv` in batches of at most `batch_rows` rows, validating each like
/// [`read_features`], so memory stays bounded however large the file is.
pub fn feature_batches(path: &Path, batch_rows: usize) -> Result<FeatureBatches, DataError> {
    let mut batches = FeatureBatches {
        table: Table::open(path, feature_rules())?,
        batch_rows: batch_rows.max(1),
        done: false,
        pending: None,
    };
    // Read the first batch now so that "header only" is reported by this call.
    match batches.read_batch() {
        Some(Ok((_, frame))) => batches.pending = Some(frame),
        Some(Err(e)) => return Err(e),
        None => {
            return Err(DataError::NoRows {
                path: path.to_path_buf(),
            })
        }
    }
    Ok(batches)
}

/// Iterator over `(index of the batch's first row, 0-based; batch)`; see [`feature_batches`].
pub struct FeatureBatches {
    table: Table,
    batch_rows: usize,
    done: bool,
    pending: Option<Frame>,
}

impl std::fmt::Debug for FeatureBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureBatches")
            .field("path", &self.table.path)
            .field("rows", &self.table.rows)
            .finish_non_exhaustive()
    }
}

impl FeatureBatches {
    fn read_batch(&mut self) -> Option<Result<(usize, Frame), DataError>> {
        if self.done {
            return None;
        }
        let first = self.table.rows;
        // Grown as rows come, so a small file does not reserve a whole batch.
        let mut columns = self.table.empty_columns(self.batch_rows.min(4096));
        match self.table.read(&mut columns, self.batch_rows) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => Some(Ok((
                first,
                Frame {
                    names: FEATURES.iter().map(|c| c.name.to_string()).collect(),
                    columns,
                },
            ))),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for FeatureBatches {
    type Item = Result<(usize, Frame), DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(frame) = self.pending.take() {
            return Some(Ok((0, frame)));
        }
        self.read_batch()
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes features and target (the processed files) atomically.
pub fn write_labeled(path: &Path, data: &Labeled) -> Result<(), DataError> {
    write_df(path, frame_df(&data.features, Some(&data.target)))
}

/// Writes feature columns only (`data.csv`) atomically.
pub fn write_features(path: &Path, frame: &Frame) -> Result<(), DataError> {
    write_df(path, frame_df(frame, None))
}

/// Writes a `target` column only (`target.csv`) atomically.
pub fn write_target(path: &Path, target: &[u8]) -> Result<(), DataError> {
    write_df(path, frame_df(&Frame::default(), Some(target)))
}

fn frame_df(frame: &Frame, target: Option<&[u8]>) -> DataFrame {
    let height = target.map_or_else(|| frame.n_rows(), <[u8]>::len);
    let mut cols = Vec::with_capacity(frame.n_cols() + 1);
    for (name, values) in frame.names.iter().zip(&frame.columns) {
        let integer = crate::schema::column(name).is_some_and(|c| c.integer);
        let opts = values.iter().map(|&v| (!v.is_nan()).then_some(v));
        let col = if integer {
            // Whole numbers are written without a trailing ".0"; codes are small.
            polars::prelude::Int64Chunked::from_iter_options(
                name.as_str().into(),
                opts.map(|o| o.map(|v| v as i64)),
            )
            .into_column()
        } else {
            Float64Chunked::from_iter_options(name.as_str().into(), opts).into_column()
        };
        cols.push(col);
    }
    if let Some(t) = target {
        cols.push(
            Int32Chunked::from_iter_values(TARGET.into(), t.iter().map(|&v| i32::from(v)))
                .into_column(),
        );
    }
    // Columns are built with equal lengths above, so this cannot fail in practice.
    DataFrame::new(height, cols).unwrap_or_default()
}

fn write_df(path: &Path, mut df: DataFrame) -> Result<(), DataError> {
    let mut file = AtomicFile::create(path)?;
    CsvWriter::new(&mut file)
        .include_header(true)
        .finish(&mut df)
        .map_err(|e| polars_write_error(path, e))?;
    file.commit()
}

fn polars_write_error(path: &Path, err: PolarsError) -> DataError {
    match err {
        PolarsError::IO { error, .. } => DataError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::new(error.kind(), error.to_string()),
        },
        other => DataError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Streams `predictions.csv` (`prediction,probability`) batch by batch to a temporary file
/// that becomes the final file only on [`PredictionWriter::commit`].
#[derive(Debug)]
pub struct PredictionWriter {
    file: AtomicFile,
    rows: usize,
}

impl PredictionWriter {
    pub fn create(path: &Path) -> Result<Self, DataError> {
        let mut file = AtomicFile::create(path)?;
        file.write_all(b"prediction,probability\n")
            .map_err(|source| DataError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self { file, rows: 0 })
    }

    /// Appends one batch; the two slices must have the same length.
    pub fn write_batch(
        &mut self,
        predictions: &[u8],
        probabilities: &[f64],
    ) -> Result<(), DataError> {
        let path = self.file.path().to_path_buf();
        if predictions.len() != probabilities.len() {
            return Err(DataError::Invalid {
                path,
                message: format!(
                    "{} predictions but {} probabilities in one batch",
                    predictions.len(),
                    probabilities.len()
                ),
            });
        }
        let mut df = DataFrame::new(
            predictions.len(),
            vec![
                Int32Chunked::from_iter_values(
                    "prediction".into(),
                    predictions.iter().map(|&v| i32::from(v)),
                )
                .into_column(),
                Float64Chunked::from_slice("probability".into(), probabilities).into_column(),
            ],
        )
        .map_err(|e| polars_write_error(&path, e))?;
        CsvWriter::new(&mut self.file)
            .include_header(false)
            .finish(&mut df)
            .map_err(|e| polars_write_error(&path, e))?;
        self.rows += predictions.len();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn commit(self) -> Result<(), DataError> {
        self.file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal";
    const ROW: &str = "63,1,3,145,233,1,0,150,0,2.3,0,0,1";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write fixture");
        path
    }

    fn features_err(text: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "data.csv", text);
        let err = read_features(&path)
            .expect_err("must be rejected")
            .to_string();
        assert!(err.contains("data.csv"), "{err}");
        let batches = feature_batches(&path, 2).and_then(|b| b.collect::<Result<Vec<_>, _>>());
        assert_eq!(batches.expect_err("batches reject too").to_string(), err);
        err
    }

    #[test]
    fn reads_features_with_missing_cells() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("{HEADER}\n{ROW}\n67,1,0,,286,0,0,108,1,1.5,1,3,2\r\n");
        let frame = read_features(&write(dir.path(), "data.csv", &text)).expect("valid");
        assert_eq!(frame.n_rows(), 2);
        assert_eq!(frame.get(0, 9), 2.3);
        assert!(frame.get(1, 3).is_nan());
    }

    #[test]
    fn labeled_round_trip_writes_integers_plainly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("{HEADER},target\n{ROW},1\n67,1,0,,286,0,0,108,1,1,1,3,2,0\n");
        let data = read_labeled(&write(dir.path(), "in.csv", &text)).expect("valid");
        assert_eq!(data.target, vec![1, 0]);
        let out = dir.path().join("out.csv");
        write_labeled(&out, &data).expect("write");
        let written = std::fs::read_to_string(&out).expect("read");
        assert_eq!(
            written,
            format!("{HEADER},target\n{ROW},1\n67,1,0,,286,0,0,108,1,1.0,1,3,2,0\n")
        );
        let again = read_labeled(&out).expect("reread");
        assert_eq!(again.target, data.target);
        assert_eq!(format!("{again:?}"), format!("{data:?}"));
    }

    #[test]
    fn bad_files_name_file_column_and_row() {
        let cases: &[(String, &str)] = &[
            (String::new(), "file is empty"),
            (format!("{HEADER}\n"), "header only"),
            (
                format!(
                    "{}\n{ROW}\n",
                    HEADER.strip_suffix(",thal").unwrap_or(HEADER)
                ),
                "missing column `thal`",
            ),
            (format!("{HEADER}\n{ROW}\n"), ""),
            (
                format!("{}\n{ROW}\n", HEADER.replace("chol", "cholesterol")),
                "unexpected column `cholesterol` at position 5",
            ),
            (
                format!("{}\n{ROW}\n", HEADER.replace(",ca,thal", ",ca,thalach")),
                "column `thalach` appears more than once",
            ),
            (
                format!("{HEADER},extra\n{ROW},1\n"),
                "unexpected column `extra` at position 14",
            ),
            (
                format!("{}\n{ROW}\n", HEADER.replace("age,sex", "sex,age")),
                "expected `age` at position 1, found `sex`",
            ),
            (
                format!("{HEADER}\n{ROW}\n{ROW}\n{}\n", ROW.replace("233", "abc")),
                "row 3 (line 4), column `chol`: \"abc\" is not a number",
            ),
            (
                format!("{HEADER}\n{ROW}\n{}\n", ROW.replace("233", "NaN")),
                "row 2 (line 3), column `chol`: \"NaN\" is not a finite number",
            ),
            (
                format!("{HEADER}\n{}\n", ROW.replace("233", "-inf")),
                "row 1 (line 2), column `chol`: \"-inf\" is not a finite",
            ),
            (
                format!("{HEADER}\n{ROW}\n{}\n", ROW.replace("145", "999")),
                "row 2 (line 3), column `trestbps`: 999 is outside the valid range [80, 220]",
            ),
            (
                format!("{HEADER}\n{}\n", ROW.replace(",0,0,1", ",0,0.5,1")),
                "column `ca`: 0.5 is not a whole-number code",
            ),
            (
                format!("{HEADER}\n{ROW}\n{ROW},7\n"),
                "row 2 (line 3): expected 13 fields, found 14",
            ),
            (
                format!("{HEADER}\n{ROW}\n\n{ROW}\n"),
                "row 2 (line 3): expected 13 fields, found 1",
            ),
            // Padded numbers are rejected, not trimmed: the schema says numbers, and a
            // silent trim would hide an upstream bug.
            (
                format!("{HEADER}\n{}\n", ROW.replacen("63", "61 ", 1)),
                "data.csv: row 1 (line 2), column `age`: \"61 \" is not a number: it has leading or trailing spaces",
            ),
            (
                format!("{HEADER}\n{ROW}\n{}\n", ROW.replacen("63", " 61", 1)),
                "data.csv: row 2 (line 3), column `age`: \" 61\" is not a number: it has leading",
            ),
            (
                format!("{HEADER}\r\n{ROW}\r\n{}\r\n", ROW.replace(",2.3,", ",\"2.3 \",")),
                "row 2 (line 3), column `oldpeak`: \"2.3 \" is not a number: it has leading",
            ),
            (
                format!("{HEADER}\n{}\n", ROW.replace(",233,", ", ,")),
                "row 1 (line 2), column `chol`: \" \" is not a number: it has leading",
            ),
            (
                format!("{HEADER}\n{ROW}\n{ROW}\n{}\n", ROW.replace(",233,", ",\"233\"x,")),
                "row 3 (line 4), column `chol`: \"\\\"233\\\"x\" is not a number",
            ),
            (
                format!("{HEADER}\n{ROW}\n{}\n", ROW.replace(",233,", ",\"233,")),
                "row 2 (line 3), column `chol`: \"\\\"233,1,0,150,0,2.3,0,0,1\" opens a quote that is never closed",
            ),
        ];
        for (text, want) in cases {
            if want.is_empty() {
                continue;
            }
            let err = features_err(text);
            assert!(err.contains(want), "want {want:?} in {err:?}");
            for internal in [
                "infer_schema_length",
                "ignore_errors",
                "polars",
                "CSV parser",
            ] {
                assert!(!err.contains(internal), "{err}");
            }
        }
    }

    #[test]
    fn quoted_numbers_crlf_and_bom_read_like_plain_lf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = [
            ROW,
            "67,1,0,,286,0,0,108,1,1.5,1,3,2",
            "41,0,1,130,204,0,0,172,0,1.4,2,0,2",
        ];
        let plain = format!(
            "{HEADER},target\n{}\n",
            rows.map(|r| format!("{r},1")).join("\n")
        );
        let quote_all = |line: &str| -> String {
            line.split(',')
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        let quoted: String = plain.lines().map(|l| quote_all(l) + "\r\n").collect();
        let variants = [
            plain.replace('\n', "\r\n"),
            quoted.clone(),
            format!("\u{feff}{quoted}"),
            // No line ending after the last row, quoted header, one quoted cell.
            plain.trim_end().replacen("145", "\"145\"", 1),
        ];
        let want = read_labeled(&write(dir.path(), "plain.csv", &plain)).expect("plain");
        assert_eq!(want.n_rows(), 3);
        assert!(want.features.get(1, 3).is_nan());
        for (i, text) in variants.iter().enumerate() {
            let path = write(dir.path(), &format!("v{i}.csv"), text);
            let got = read_labeled(&path).unwrap_or_else(|e| panic!("variant {i}: {e}"));
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "variant {i}");
        }
        // The streaming reader agrees.
        let features: String = quoted
            .lines()
            .map(|l| l.rsplit_once(',').map_or(l, |(f, _)| f).to_string() + "\r\n")
            .collect();
        let path = write(dir.path(), "data.csv", &features);
        let batches: Vec<(usize, Frame)> = feature_batches(&path, 2)
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("valid");
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].0, 2);
        assert_eq!(batches[0].1.get(1, 9), 1.5);
        assert_eq!(
            read_features(&path).expect("whole").columns[0],
            vec![63.0, 67.0, 41.0]
        );
    }

    #[test]
    fn count_rows_counts_records_not_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("{HEADER}\r\n{ROW}\r\n\"6\n1\",{}\r\n\r\n\n", &ROW[3..]);
        assert_eq!(
            count_rows(&write(dir.path(), "d.csv", &text)).expect("count"),
            2
        );
        assert_eq!(
            count_rows(&write(dir.path(), "e.csv", "")).expect("count"),
            0
        );
    }

    #[test]
    fn missing_file_and_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_features(&dir.path().join("data.csv")).expect_err("missing");
        assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
        let err = read_target(&dir.path().join("nope/target.csv")).expect_err("missing");
        assert!(matches!(err, DataError::MissingDir { .. }), "{err}");
    }

    #[test]
    fn target_must_be_zero_or_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = write(dir.path(), "t.csv", "target\n0\n1\n1\n");
        assert_eq!(read_target(&ok).expect("valid"), vec![0, 1, 1]);
        for (text, want) in [
            (
                "target\n0\n2\n",
                "row 2 (line 3), column `target`: \"2\" is not a label",
            ),
            (
                "target\n0\n\n1\n",
                "row 2 (line 3), column `target`: empty cell",
            ),
            ("target\n0\nyes\n", "\"yes\" is not a number"),
            ("label\n0\n", "unexpected column `label`"),
        ] {
            let path = write(dir.path(), "t.csv", text);
            let err = read_target(&path).expect_err(text).to_string();
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
    }

    #[test]
    fn batches_cover_every_row_with_absolute_positions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows: Vec<String> = (0..10)
            .map(|i| ROW.replace("233", &(200 + i).to_string()))
            .collect();
        let path = write(
            dir.path(),
            "data.csv",
            &format!("{HEADER}\n{}\n", rows.join("\n")),
        );
        let batches: Vec<(usize, Frame)> = feature_batches(&path, 4)
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("valid");
        let starts: Vec<usize> = batches.iter().map(|(s, _)| *s).collect();
        assert_eq!(starts, vec![0, 4, 8]);
        let chol: Vec<f64> = batches
            .iter()
            .flat_map(|(_, f)| f.columns[4].clone())
            .collect();
        assert_eq!(chol, (200..210).map(f64::from).collect::<Vec<_>>());

        let bad = format!(
            "{HEADER}\n{}\n{}\n",
            rows.join("\n"),
            ROW.replace("233", "x")
        );
        let path = write(dir.path(), "bad.csv", &bad);
        let err = feature_batches(&path, 4)
            .expect("open")
            .collect::<Result<Vec<_>, _>>()
            .expect_err("row 11 is bad");
        assert!(err.to_string().contains("row 11 (line 12)"), "{err}");
    }

    #[test]
    fn prediction_writer_is_all_or_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("predictions.csv");
        let mut w = PredictionWriter::create(&path).expect("create");
        w.write_batch(&[1, 0], &[0.75, 0.125]).expect("batch");
        drop(w);
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);

        let mut w = PredictionWriter::create(&path).expect("create");
        w.write_batch(&[1, 0], &[0.75, 0.125]).expect("batch");
        w.write_batch(&[1], &[0.5]).expect("batch");
        assert!(w.write_batch(&[1], &[]).is_err());
        w.commit().expect("commit");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "prediction,probability\n1,0.75\n0,0.125\n1,0.5\n"
        );
    }
}
