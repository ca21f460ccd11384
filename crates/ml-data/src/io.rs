//! CSV reading and writing for the pipeline's files, with validation.
//!
//! Reading has a fast path and a slow path. The fast path checks the header, counts fields per
//! line in one byte scan (polars would quietly pad short rows with nulls), and lets polars
//! parse the body with an all-`Float64` schema; the parsed values are then checked against the
//! schema ranges. When polars rejects a cell, the slow path walks the same bytes line by line
//! to name the exact row, line and column. Both paths report with [`DataError`].
//!
//! Every data row is 1-based in messages (header not counted) and the file line is given too.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::{
    CsvReadOptions, CsvWriter, DataFrame, DataType, Field, Float64Chunked, Int32Chunked,
    IntoColumn, NewChunkedArray, PolarsError, Schema, SerReader, SerWriter,
};

use crate::atomic::AtomicFile;
use crate::error::{CellProblem, DataError};
use crate::frame::{Frame, Labeled};
use crate::schema::{Column, FEATURES, TARGET};

/// Rows per batch when a caller has no better idea: ~6 MB of text, ~13 MB of columns.
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

    /// Checks a parsed value; `text` produces the raw cell for the message only on failure.
    fn check(self, value: Option<f64>) -> Result<(), CellProblem> {
        match (self, value) {
            (Rule::Feature(_), None) => Ok(()),
            (Rule::Target, None) => Err(CellProblem::Empty),
            (_, Some(v)) if !v.is_finite() => Err(CellProblem::NotFinite(v.to_string())),
            (Rule::Target, Some(v)) => {
                if v == 0.0 || v == 1.0 {
                    Ok(())
                } else {
                    Err(CellProblem::NotBinary(v.to_string()))
                }
            }
            (Rule::Feature(c), Some(v)) => {
                if v < c.min || v > c.max {
                    Err(CellProblem::OutOfRange {
                        value: v,
                        min: c.min,
                        max: c.max,
                    })
                } else if c.integer && v.fract() != 0.0 {
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

// ---------------------------------------------------------------------------------------------
// Public reading API

/// Reads `data.csv`: exactly the schema's feature columns, in order. Empty cells become NaN.
pub fn read_features(path: &Path) -> Result<Frame, DataError> {
    let columns = read_validated(path, &feature_rules())?;
    Ok(Frame {
        names: FEATURES.iter().map(|c| c.name.to_string()).collect(),
        columns,
    })
}

/// Reads `target.csv`: a single `target` column of 0/1 labels.
pub fn read_target(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut columns = read_validated(path, &[Rule::Target])?;
    Ok(to_labels(columns.pop().unwrap_or_default()))
}

/// Reads a processed file (`train_data.csv`, `train.csv`, `val.csv`): features plus `target`.
pub fn read_labeled(path: &Path) -> Result<Labeled, DataError> {
    let mut columns = read_validated(path, &labeled_rules())?;
    let target = to_labels(columns.pop().unwrap_or_default());
    Ok(Labeled {
        features: Frame {
            names: FEATURES.iter().map(|c| c.name.to_string()).collect(),
            columns,
        },
        target,
    })
}

/// Counts the data rows of a CSV file without parsing cells (header not counted).
pub fn count_rows(path: &Path) -> Result<usize, DataError> {
    let bytes = read_file(path)?;
    let (_, body) = split_header(path, &bytes)?;
    Ok(line_ranges(body).count())
}

fn to_labels(column: Vec<f64>) -> Vec<u8> {
    // Already validated to be exactly 0.0 or 1.0.
    column.into_iter().map(|v| u8::from(v == 1.0)).collect()
}

fn read_validated(path: &Path, rules: &[Rule]) -> Result<Vec<Vec<f64>>, DataError> {
    let bytes = read_file(path)?;
    let (header, body) = split_header(path, &bytes)?;
    check_header(path, &header, rules)?;
    if line_ranges(body).next().is_none() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    parse_block(path, body, rules, 0)
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut file = open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| DataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
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
            DataError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Splits off the header line (without BOM and line ending) and returns the body after it.
fn split_header<'a>(path: &Path, bytes: &'a [u8]) -> Result<(String, &'a [u8]), DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let line = trim_cr(&bytes[..end]);
    let body = bytes.get(end + 1..).unwrap_or(&[]);
    Ok((String::from_utf8_lossy(line).into_owned(), body))
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn check_header(path: &Path, header: &str, rules: &[Rule]) -> Result<(), DataError> {
    let found: Vec<&str> = header.split(',').map(str::trim).collect();
    let expected: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    let p = || path.to_path_buf();
    for (i, name) in found.iter().enumerate() {
        if found[..i].contains(name) {
            return Err(DataError::DuplicateColumn {
                path: p(),
                column: name.to_string(),
            });
        }
    }
    for (i, name) in found.iter().enumerate() {
        if !expected.contains(name) {
            return Err(DataError::ExtraColumn {
                path: p(),
                column: name.to_string(),
                position: i + 1,
                expected: expected.join(","),
            });
        }
    }
    for name in &expected {
        if !found.contains(name) {
            return Err(DataError::MissingColumn {
                path: p(),
                column: name.to_string(),
                header: header.to_string(),
            });
        }
    }
    for (i, (want, got)) in expected.iter().zip(&found).enumerate() {
        if want != got {
            return Err(DataError::ColumnOrder {
                path: p(),
                position: i + 1,
                expected: want.to_string(),
                found: got.to_string(),
            });
        }
    }
    Ok(())
}

/// The data lines of a body, without line endings; trailing blank lines are ignored.
fn line_ranges(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let end = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let body = &body[..end];
    let mut rest = (!body.is_empty()).then_some(body);
    std::iter::from_fn(move || {
        let chunk = rest?;
        match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => {
                rest = Some(&chunk[i + 1..]);
                Some(trim_cr(&chunk[..i]))
            }
            None => {
                rest = None;
                Some(trim_cr(chunk))
            }
        }
    })
}

/// Checks that every line has `n` fields; returns the number of lines.
fn check_field_counts(
    path: &Path,
    body: &[u8],
    n: usize,
    first_row: usize,
) -> Result<usize, DataError> {
    let mut rows = 0;
    for line in line_ranges(body) {
        let found = line.iter().filter(|&&b| b == b',').count() + 1;
        if found != n {
            return Err(DataError::FieldCount {
                path: path.to_path_buf(),
                row: first_row + rows + 1,
                expected: n,
                found,
            });
        }
        rows += 1;
    }
    Ok(rows)
}

/// Parses and validates a block of data lines. `first_row` is the 0-based index of its first
/// line among all data rows of the file, so messages give absolute rows.
fn parse_block(
    path: &Path,
    body: &[u8],
    rules: &[Rule],
    first_row: usize,
) -> Result<Vec<Vec<f64>>, DataError> {
    let n_rows = check_field_counts(path, body, rules.len(), first_row)?;
    if n_rows == 0 {
        return Ok(vec![Vec::new(); rules.len()]);
    }
    let schema: Schema = rules
        .iter()
        .map(|r| Field::new(r.name().into(), DataType::Float64))
        .collect();
    let parsed = CsvReadOptions::default()
        .with_has_header(false)
        .with_schema(Some(Arc::new(schema)))
        .with_rechunk(true)
        .into_reader_with_file_handle(Cursor::new(body))
        .finish();
    let df = match parsed {
        Ok(df) => df,
        Err(err) => return Err(locate_error(path, body, rules, first_row, &err)),
    };
    if df.height() != n_rows {
        // Something polars read differently from our line count (quotes spanning lines, ...).
        return Err(locate_error_or(path, body, rules, first_row, || {
            format!(
                "parsed {} rows but the file has {n_rows} lines",
                df.height()
            )
        }));
    }
    let mut columns = Vec::with_capacity(rules.len());
    for (rule, column) in rules.iter().zip(df.columns()) {
        let ca = column
            .f64()
            .map_err(|e| locate_error(path, body, rules, first_row, &e))?;
        let mut values = Vec::with_capacity(n_rows);
        for (i, v) in ca.iter().enumerate() {
            if let Err(problem) = rule.check(v) {
                return Err(cell_error(path, body, rules, first_row, i, rule, problem));
            }
            values.push(v.unwrap_or(f64::NAN));
        }
        columns.push(values);
    }
    Ok(columns)
}

/// Builds the error for a bad value found after parsing, quoting the cell's raw text.
fn cell_error(
    path: &Path,
    body: &[u8],
    rules: &[Rule],
    first_row: usize,
    index: usize,
    rule: &Rule,
    problem: CellProblem,
) -> DataError {
    let col = rules
        .iter()
        .position(|r| r.name() == rule.name())
        .unwrap_or(0);
    let raw = line_ranges(body)
        .nth(index)
        .and_then(|line| line.split(|&b| b == b',').nth(col))
        .map(|cell| String::from_utf8_lossy(cell).trim().to_string());
    let problem = match (problem, raw) {
        (CellProblem::NotFinite(_), Some(text)) => CellProblem::NotFinite(text),
        (CellProblem::NotBinary(_), Some(text)) => CellProblem::NotBinary(text),
        (problem, _) => problem,
    };
    DataError::Cell {
        path: path.to_path_buf(),
        row: first_row + index + 1,
        column: rule.name().to_string(),
        problem,
    }
}

fn locate_error(
    path: &Path,
    body: &[u8],
    rules: &[Rule],
    first_row: usize,
    err: &PolarsError,
) -> DataError {
    locate_error_or(path, body, rules, first_row, || err.to_string())
}

/// The slow path: validates line by line with the standard library's parser to find the first
/// bad cell. Falls back to a generic CSV error if every cell looks fine to it.
fn locate_error_or(
    path: &Path,
    body: &[u8],
    rules: &[Rule],
    first_row: usize,
    message: impl FnOnce() -> String,
) -> DataError {
    for (i, line) in line_ranges(body).enumerate() {
        let row = first_row + i + 1;
        let cells: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        if cells.len() != rules.len() {
            return DataError::FieldCount {
                path: path.to_path_buf(),
                row,
                expected: rules.len(),
                found: cells.len(),
            };
        }
        for (rule, cell) in rules.iter().zip(cells) {
            let text = String::from_utf8_lossy(cell);
            let text = text.trim();
            let value = if text.is_empty() {
                None
            } else {
                match text.parse::<f64>() {
                    Ok(v) => Some(v),
                    Err(_) => {
                        return DataError::Cell {
                            path: path.to_path_buf(),
                            row,
                            column: rule.name().to_string(),
                            problem: CellProblem::NotNumeric(text.to_string()),
                        }
                    }
                }
            };
            if let Err(problem) = rule.check(value) {
                let problem = match problem {
                    CellProblem::NotFinite(_) => CellProblem::NotFinite(text.to_string()),
                    CellProblem::NotBinary(_) => CellProblem::NotBinary(text.to_string()),
                    other => other,
                };
                return DataError::Cell {
                    path: path.to_path_buf(),
                    row,
                    column: rule.name().to_string(),
                    problem,
                };
            }
        }
    }
    DataError::Csv {
        path: path.to_path_buf(),
        message: message(),
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming reader

/// Reads `data.csv` in batches of at most `batch_rows` rows, validating each like
/// [`read_features`], so memory stays bounded however large the file is.
pub fn feature_batches(path: &Path, batch_rows: usize) -> Result<FeatureBatches, DataError> {
    let mut reader = BufReader::with_capacity(1 << 20, open(path)?);
    let mut header = Vec::new();
    reader
        .read_until(b'\n', &mut header)
        .map_err(|source| DataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let (header_text, rest) = split_header(path, &header)?;
    debug_assert!(rest.is_empty());
    let rules = feature_rules();
    check_header(path, &header_text, &rules)?;
    let mut batches = FeatureBatches {
        path: path.to_path_buf(),
        reader,
        rules,
        batch_rows: batch_rows.max(1),
        next_row: 0,
        buf: Vec::new(),
        done: false,
        pending: None,
    };
    // Read the first batch now so that "header only" is reported by this call.
    match batches.read_batch() {
        Some(Ok((_, frame))) if frame.n_rows() > 0 => batches.pending = Some(frame),
        Some(Err(e)) => return Err(e),
        _ => {
            return Err(DataError::NoRows {
                path: path.to_path_buf(),
            })
        }
    }
    Ok(batches)
}

/// Iterator over `(index of the batch's first row, 0-based; batch)`; see [`feature_batches`].
pub struct FeatureBatches {
    path: PathBuf,
    reader: BufReader<File>,
    rules: Vec<Rule>,
    batch_rows: usize,
    next_row: usize,
    buf: Vec<u8>,
    done: bool,
    pending: Option<Frame>,
}

impl std::fmt::Debug for FeatureBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureBatches")
            .field("path", &self.path)
            .field("next_row", &self.next_row)
            .finish_non_exhaustive()
    }
}

impl FeatureBatches {
    fn read_batch(&mut self) -> Option<Result<(usize, Frame), DataError>> {
        if self.done {
            return None;
        }
        self.buf.clear();
        let mut lines = 0;
        let mut last_start = 0;
        // A batch never ends on a blank line unless the file ends there: blank lines are
        // tolerated only at the end of the file, as when reading it whole.
        while lines < self.batch_rows || (lines > 0 && is_blank(&self.buf[last_start..])) {
            last_start = self.buf.len();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(_) => lines += 1,
                Err(source) => {
                    self.done = true;
                    return Some(Err(DataError::Read {
                        path: self.path.clone(),
                        source,
                    }));
                }
            }
        }
        let first = self.next_row;
        match parse_block(&self.path, &self.buf, &self.rules, first) {
            Ok(columns) => {
                let frame = Frame {
                    names: FEATURES.iter().map(|c| c.name.to_string()).collect(),
                    columns,
                };
                self.next_row += frame.n_rows();
                if frame.n_rows() == 0 {
                    self.done = true;
                    return None;
                }
                Some(Ok((first, frame)))
            }
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
        ];
        for (text, want) in cases {
            if want.is_empty() {
                continue;
            }
            let err = features_err(text);
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
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
