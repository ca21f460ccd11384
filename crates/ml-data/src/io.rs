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
//! The raw files (`data.csv`, `target.csv`) may start with an `id` column, each row's key
//! ([`crate::schema::ID`]); files from before ids existed have none and still read. An id is
//! text, taken as written (quotes aside): empty, padded with spaces or already used by an
//! earlier row of the file, it is rejected with the row like a bad number. The readers hand
//! ids back apart from the features ([`Keyed`], [`Batch::ids`]), so they never reach a
//! model. The processed files carry no `id`, and their reader refuses one.
//!
//! Writing goes through polars' CSV writer (the only use of polars left in the pipeline),
//! into an [`AtomicFile`]. `predictions.csv` is keyed too: its `id` column holds the input's
//! ids, or the row numbers of an input without them.
//!
//! Every data row is 1-based in messages (header not counted) and the file line is given too.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use polars::prelude::{
    Column as PolarsColumn, CsvWriter, DataFrame, Float64Chunked, Int32Chunked, Int64Chunked,
    IntoColumn, NewChunkedArray, PolarsError, SerWriter, StringChunked,
};

use crate::atomic::AtomicFile;
use crate::csv::{Cell, Form, Records, Value};
use crate::digest::Sha256Writer;
use crate::error::{CellProblem, DataError};
use crate::frame::{Frame, Labeled};
use crate::key::{IdSet, Insert, Keyed, KeyedBy, RowKeys};
use crate::schema::{Column, FEATURES, ID, TARGET};

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

/// A quote never closed: the cell runs to the end of the file, so only the start of its
/// first line is quoted.
fn unclosed(text: &str) -> CellProblem {
    let first = text.lines().next().unwrap_or_default();
    CellProblem::UnclosedQuote(first.chars().take(40).collect())
}

/// The value of a cell that the parser did not read as a plain number: empty, a number in
/// another notation (`+1`, `1e3`, a quoted `"61"` that was not plain), or a problem.
fn parse_text(text: &str, form: Form) -> Result<Option<f64>, CellProblem> {
    match form {
        Form::Unclosed => return Err(unclosed(text)),
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

/// Reads `data.csv`: the schema's feature columns, in order, after an optional `id` column
/// (checked, then left out; [`read_keyed_features`] keeps it). Empty cells become NaN.
pub fn read_features(path: &Path) -> Result<Frame, DataError> {
    read_keyed_features(path).map(|keyed| keyed.rows)
}

/// Reads `data.csv` with its ids, when it has an `id` column.
pub fn read_keyed_features(path: &Path) -> Result<Keyed<Frame>, DataError> {
    let Keyed { ids, rows } = read_validated(path, feature_rules(), Ids::Allowed)?;
    Ok(Keyed {
        ids,
        rows: features_frame(rows),
    })
}

/// Reads `target.csv`: a `target` column of 0/1 labels after an optional `id` column
/// (checked, then left out; [`read_keyed_target`] keeps it).
pub fn read_target(path: &Path) -> Result<Vec<u8>, DataError> {
    read_keyed_target(path).map(|keyed| keyed.rows)
}

/// Reads `target.csv` with its ids, when it has an `id` column.
pub fn read_keyed_target(path: &Path) -> Result<Keyed<Vec<u8>>, DataError> {
    let Keyed { ids, mut rows } = read_validated(path, vec![Rule::Target], Ids::Allowed)?;
    Ok(Keyed {
        ids,
        rows: to_labels(rows.pop().unwrap_or_default()),
    })
}

/// Reads a processed file (`train_data.csv`, `train.csv`, `val.csv`): features plus `target`,
/// and no `id`: the processed files are the pipeline's own, and keys stay with the raw files.
pub fn read_labeled(path: &Path) -> Result<Labeled, DataError> {
    let mut columns = read_validated(path, labeled_rules(), Ids::NotAllowed)?.rows;
    let target = to_labels(columns.pop().unwrap_or_default());
    Ok(Labeled {
        features: features_frame(columns),
        target,
    })
}

/// Checks that two raw files of one day key their rows alike: row `i` of `second` has the id
/// of row `i` of `first` (both have `id` and the same number of rows). The error names
/// `second`, the row and both ids.
pub fn check_same_ids(
    first: &Path,
    first_ids: &[String],
    second: &Path,
    second_ids: &[String],
) -> Result<(), DataError> {
    match first_ids.iter().zip(second_ids).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(DataError::IdMismatch {
            path: second.to_path_buf(),
            row: i + 1,
            found: second_ids[i].clone(),
            other: first.to_path_buf(),
            expected: first_ids[i].clone(),
        }),
    }
}

/// Counts the data records of a CSV file without checking its header or cells.
pub fn count_rows(path: &Path) -> Result<usize, DataError> {
    // One cell kept: enough to tell a trailing blank line, which is not a record.
    let mut records = Records::new(open_input(path)?, 1);
    let mut rows: usize = 0;
    while records.next_record().map_err(|e| read_error(path, e))? {
        rows += 1;
    }
    Ok(rows.saturating_sub(1))
}

/// Opens an input file, with the error the readers give: `no such directory` when its
/// directory is missing, `no such file` when only the file is.
pub fn open_input(path: &Path) -> Result<File, DataError> {
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

fn features_frame(columns: Vec<Vec<f64>>) -> Frame {
    Frame {
        names: FEATURES.iter().map(|c| c.name.to_string()).collect(),
        columns,
    }
}

fn to_labels(column: Vec<f64>) -> Vec<u8> {
    // Already validated to be exactly 0.0 or 1.0.
    column.into_iter().map(|v| u8::from(v == 1.0)).collect()
}

/// The columns of `rules` of a whole file, with its ids when it has them.
fn read_validated(
    path: &Path,
    rules: Vec<Rule>,
    ids: Ids,
) -> Result<Keyed<Vec<Vec<f64>>>, DataError> {
    let mut table = Table::open(path, rules, ids)?;
    // A first stretch of rows tells how long a row is, so the columns can be sized for the
    // whole file at once instead of doubling their way there.
    let mut columns = table.empty_columns(SAMPLE_ROWS);
    let mut ids = table.keyed().then(|| Vec::with_capacity(SAMPLE_ROWS));
    let start = table.records.offset();
    let sampled = table.read(&mut columns, ids.as_mut(), SAMPLE_ROWS)?;
    let per_row = (table.records.offset() - start) as f64 / sampled.max(1) as f64;
    let expected = (table.size.saturating_sub(start) as f64 / per_row.max(1.0) * 1.01) as usize;
    for column in &mut columns {
        // Only a guide: if it cannot be had, the columns grow as usual.
        let _ = column.try_reserve(expected.saturating_sub(column.len()));
    }
    if let Some(ids) = ids.as_mut() {
        let _ = ids.try_reserve(expected.saturating_sub(ids.len()));
    }
    table.read(&mut columns, ids.as_mut(), usize::MAX)?;
    if table.rows == 0 {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(Keyed { ids, rows: columns })
}

fn read_error(path: &Path, source: std::io::Error) -> DataError {
    DataError::Read {
        path: path.to_path_buf(),
        source,
    }
}

#[cold]
fn cell_error(path: &Path, row: usize, column: &str, problem: CellProblem) -> DataError {
    DataError::Cell {
        path: path.to_path_buf(),
        row,
        column: column.to_string(),
        problem,
    }
}

/// Rows read before [`read_validated`] sizes its columns.
const SAMPLE_ROWS: usize = 1024;

/// Whether a file may start with an `id` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// A raw file: `id` first or not at all.
    Allowed,
    /// A processed file: `id` is an unexpected column like any other.
    NotAllowed,
}

/// The text of an `id` cell, if it is a valid one: not empty, not padded with spaces, and
/// (checked by the caller, who knows the earlier rows) not a repeat.
fn id_text<R: Read>(records: &Records<R>, cell: Cell) -> Result<String, CellProblem> {
    let text = records.text(cell);
    match cell.value {
        Value::Missing => Err(CellProblem::Empty),
        Value::Text(Form::Unclosed) => Err(unclosed(&text)),
        Value::Text(Form::Raw) => Err(CellProblem::TextAfterQuote(text)),
        _ if text.trim() != text => Err(CellProblem::PaddedId(text)),
        // A number is a valid id too (`17`): its text, as written, is the key.
        Value::Number(_) | Value::Text(Form::Plain | Form::Quoted) => Ok(text),
    }
}

/// Calls `f` with the row number (1-based) and id of each data row before `before`, read
/// again from `path`, until it returns `false`. Only for the rare moments [`IdSet`] needs the
/// ids of earlier rows; those rows were validated on the first read.
#[cold]
fn earlier_ids(
    path: &Path,
    before: usize,
    mut f: impl FnMut(usize, &str) -> bool,
) -> Result<(), DataError> {
    let mut records = Records::new(open_input(path)?, 1);
    // The header, then the rows.
    records.next_record().map_err(|e| read_error(path, e))?;
    for row in 1..before {
        if !records.next_record().map_err(|e| read_error(path, e))? {
            break;
        }
        let cell = records.cell(0);
        if let Ok(text) = id_text(&records, cell) {
            if !f(row, &text) {
                break;
            }
        }
    }
    Ok(())
}

/// Checks the id of row `row` against the earlier rows' (see [`IdSet`]).
fn check_unique(seen: &mut IdSet, path: &Path, row: usize, id: &str) -> Result<(), DataError> {
    let mut found = seen.insert(id);
    if found == Insert::OutOfOrder {
        earlier_ids(path, row, |_, earlier| {
            seen.add_earlier(earlier);
            true
        })?;
        found = seen.insert(id);
    }
    if found == Insert::Maybe {
        let mut first_row = None;
        earlier_ids(path, row, |earlier_row, earlier| {
            if earlier == id {
                first_row = Some(earlier_row);
            }
            first_row.is_none()
        })?;
        if let Some(first_row) = first_row {
            let id = id.to_string();
            let problem = CellProblem::DuplicateId { id, first_row };
            return Err(cell_error(path, row, ID, problem));
        }
    }
    Ok(())
}

/// A CSV file being read against a list of column rules, header already checked.
struct Table<R = File> {
    path: PathBuf,
    /// Bytes in the file when it was opened (a guide for sizing, not a limit); 0 if unknown.
    size: u64,
    records: Records<R>,
    rules: Vec<Rule>,
    /// The ids seen so far, when the file's first column is `id` (the rules then apply
    /// from the second column on).
    ids: Option<IdSet>,
    /// Data rows read so far.
    rows: usize,
}

impl Table {
    fn open(path: &Path, rules: Vec<Rule>, ids: Ids) -> Result<Self, DataError> {
        let file = open_input(path)?;
        let size = file.metadata().map_or(0, |m| m.len());
        Table::from_reader(path, file, size, rules, ids)
    }
}

impl<R: Read> Table<R> {
    fn from_reader(
        path: &Path,
        reader: R,
        size: u64,
        rules: Vec<Rule>,
        ids: Ids,
    ) -> Result<Self, DataError> {
        let mut records = Records::new(reader, usize::MAX);
        if !records.next_record().map_err(|e| read_error(path, e))? {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            });
        }
        // Header names are compared without surrounding spaces.
        let header: Vec<String> = (0..records.fields())
            .map(|i| records.text(records.cell(i)).trim().to_string())
            .collect();
        let keyed = check_header(path, &header, &rules, ids)?;
        records.keep(rules.len() + usize::from(keyed));
        Ok(Self {
            path: path.to_path_buf(),
            size,
            records,
            rules,
            ids: keyed.then(IdSet::new),
            rows: 0,
        })
    }

    /// Whether the file has an `id` column.
    fn keyed(&self) -> bool {
        self.ids.is_some()
    }

    fn empty_columns(&self, capacity: usize) -> Vec<Vec<f64>> {
        (0..self.rules.len())
            .map(|_| Vec::with_capacity(capacity))
            .collect()
    }

    /// Appends up to `max_rows` validated rows to `columns`, and their ids to `ids` (which is
    /// given when the file has an `id` column); returns how many rows were read.
    fn read(
        &mut self,
        columns: &mut [Vec<f64>],
        mut ids: Option<&mut Vec<String>>,
        max_rows: usize,
    ) -> Result<usize, DataError> {
        // Fields borrowed apart, so that the row loop keeps them in registers.
        let Table {
            path,
            records,
            rules,
            ids: seen,
            rows,
            ..
        } = self;
        // The rules' cells start after the id, when there is one.
        let skip = usize::from(seen.is_some());
        let n = rules.len() + skip;
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
            if let Some(seen) = seen.as_mut() {
                let id = id_text(records, records.cell(0))
                    .map_err(|problem| cell_error(path, *rows, ID, problem))?;
                check_unique(seen, path, *rows, &id)?;
                if let Some(ids) = ids.as_deref_mut() {
                    ids.push(id);
                }
            }
            for (j, (rule, column)) in rules.iter().zip(columns.iter_mut()).enumerate() {
                let cell = records.cell(j + skip);
                let text = || records.text(cell);
                let checked = match cell.value {
                    Value::Number(v) => rule.check(Some(v), text).map(|()| v),
                    Value::Missing => rule.check(None, text).map(|()| f64::NAN),
                    Value::Text(form) => parse_text(&text(), form)
                        .and_then(|v| rule.check(v, text).map(|()| v.unwrap_or(f64::NAN))),
                };
                match checked {
                    Ok(v) => column.push(v),
                    Err(problem) => return Err(cell_error(path, *rows, rule.name(), problem)),
                }
            }
        }
        Ok(read)
    }
}

/// Checks a header against the rules (after an optional `id` column, where `ids` allows
/// one); returns whether the file starts with `id`.
fn check_header(
    path: &Path,
    found: &[String],
    rules: &[Rule],
    ids: Ids,
) -> Result<bool, DataError> {
    let p = || path.to_path_buf();
    for (i, name) in found.iter().enumerate() {
        if found[..i].contains(name) {
            return Err(DataError::DuplicateColumn {
                path: p(),
                column: name.clone(),
            });
        }
    }
    let keyed = ids == Ids::Allowed && found.first().is_some_and(|name| name == ID);
    if ids == Ids::Allowed && !keyed {
        if let Some(i) = found.iter().position(|name| name == ID) {
            return Err(DataError::IdNotFirst {
                path: p(),
                position: i + 1,
            });
        }
    }
    // Positions in messages count the id column too.
    let skip = usize::from(keyed);
    let found = &found[skip..];
    let expected: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    for (i, name) in found.iter().enumerate() {
        if !expected.contains(&name.as_str()) {
            let optional_id = if ids == Ids::Allowed { "[id,]" } else { "" };
            return Err(DataError::ExtraColumn {
                path: p(),
                column: name.clone(),
                position: i + 1 + skip,
                expected: format!("{optional_id}{}", expected.join(",")),
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
                position: i + 1 + skip,
                expected: want.to_string(),
                found: got.clone(),
            });
        }
    }
    Ok(keyed)
}

// ---------------------------------------------------------------------------------------------
// Streaming reader

/// Reads `data.csv` in batches of at most `batch_rows` rows, validating each like
/// [`read_features`], so memory stays bounded however large the file is (but for the
/// fingerprints of ids that do not ascend, 8 bytes a row, see `IdSet` in [`crate::key`]).
pub fn feature_batches(path: &Path, batch_rows: usize) -> Result<FeatureBatches, DataError> {
    let file = open_input(path)?;
    FeatureBatches::from_reader(path, file, batch_rows)
}

/// One batch of [`FeatureBatches`].
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Index of the batch's first row in the file, 0-based.
    pub start: usize,
    /// The rows' ids, when the file has an `id` column.
    pub ids: Option<Vec<String>>,
    pub features: Frame,
}

impl Batch {
    /// The rows' keys: their ids, or their 1-based row numbers in a file without `id`.
    pub fn keys(&self) -> RowKeys<'_> {
        match &self.ids {
            Some(ids) => RowKeys::Ids(ids),
            None => RowKeys::RowNumbers {
                first: self.start + 1,
            },
        }
    }
}

/// Iterator over the [`Batch`]es of a file; see [`feature_batches`].
pub struct FeatureBatches<R = File> {
    table: Table<R>,
    batch_rows: usize,
    done: bool,
    pending: Option<Batch>,
}

impl<R> std::fmt::Debug for FeatureBatches<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureBatches")
            .field("path", &self.table.path)
            .field("rows", &self.table.rows)
            .finish_non_exhaustive()
    }
}

impl<R: Read> FeatureBatches<R> {
    /// [`feature_batches`] of `reader`, the content of `path` (which messages name, and
    /// which is read again only when ids fall out of order or may repeat, see [`crate::key`]). `reader` sees every byte of the
    /// input once the iterator has ended: a [`crate::digest::Sha256Reader`] then holds the
    /// checksum of exactly what was read.
    pub fn from_reader(path: &Path, reader: R, batch_rows: usize) -> Result<Self, DataError> {
        let mut batches = FeatureBatches {
            table: Table::from_reader(path, reader, 0, feature_rules(), Ids::Allowed)?,
            batch_rows: batch_rows.max(1),
            done: false,
            pending: None,
        };
        // Read the first batch now so that "header only" is reported by this call.
        match batches.read_batch() {
            Some(Ok(batch)) => batches.pending = Some(batch),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(DataError::NoRows {
                    path: path.to_path_buf(),
                })
            }
        }
        Ok(batches)
    }

    /// How the file's rows are keyed (known from its header).
    pub fn keyed_by(&self) -> KeyedBy {
        if self.table.keyed() {
            KeyedBy::Id
        } else {
            KeyedBy::RowNumber
        }
    }

    /// Data rows read so far.
    pub fn rows(&self) -> usize {
        self.table.rows
    }

    /// The reader given to [`FeatureBatches::from_reader`].
    pub fn into_reader(self) -> R {
        self.table.records.into_inner()
    }

    fn read_batch(&mut self) -> Option<Result<Batch, DataError>> {
        if self.done {
            return None;
        }
        let start = self.table.rows;
        // Grown as rows come, so a small file does not reserve a whole batch.
        let capacity = self.batch_rows.min(4096);
        let mut columns = self.table.empty_columns(capacity);
        let mut ids = self.table.keyed().then(|| Vec::with_capacity(capacity));
        match self.table.read(&mut columns, ids.as_mut(), self.batch_rows) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => Some(Ok(Batch {
                start,
                ids,
                features: features_frame(columns),
            })),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<R: Read> Iterator for FeatureBatches<R> {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(batch) = self.pending.take() {
            return Some(Ok(batch));
        }
        self.read_batch()
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes features and target (the processed files) atomically.
pub fn write_labeled(path: &Path, data: &Labeled) -> Result<(), DataError> {
    write_df(
        path,
        frame_df(path, None, &data.features, Some(&data.target))?,
    )
}

/// Writes feature columns only (a `data.csv` without ids) atomically.
pub fn write_features(path: &Path, frame: &Frame) -> Result<(), DataError> {
    write_df(path, frame_df(path, None, frame, None)?)
}

/// Writes `data.csv` atomically: the `id` column first, one id from `ids` per row (taken as
/// the file is built, so a caller need not hold them all), then the feature columns.
pub fn write_keyed_features<S: AsRef<str>>(
    path: &Path,
    ids: impl IntoIterator<Item = S>,
    frame: &Frame,
) -> Result<(), DataError> {
    write_df(path, frame_df(path, Some(id_column(ids)), frame, None)?)
}

/// Writes a `target` column only (a `target.csv` without ids) atomically.
pub fn write_target(path: &Path, target: &[u8]) -> Result<(), DataError> {
    write_df(path, frame_df(path, None, &Frame::default(), Some(target))?)
}

/// Writes `target.csv` atomically: the `id` column first (see [`write_keyed_features`]),
/// then `target`.
pub fn write_keyed_target<S: AsRef<str>>(
    path: &Path,
    ids: impl IntoIterator<Item = S>,
    target: &[u8],
) -> Result<(), DataError> {
    let ids = Some(id_column(ids));
    write_df(path, frame_df(path, ids, &Frame::default(), Some(target))?)
}

fn id_column<S: AsRef<str>>(ids: impl IntoIterator<Item = S>) -> PolarsColumn {
    StringChunked::from_iter_values(ID.into(), ids.into_iter()).into_column()
}

/// `ids` (if any), the feature columns of `frame` and `target` (if any) as one table; an
/// id column of another length than the rows is an error naming `path`.
fn frame_df(
    path: &Path,
    ids: Option<PolarsColumn>,
    frame: &Frame,
    target: Option<&[u8]>,
) -> Result<DataFrame, DataError> {
    let height = target.map_or_else(|| frame.n_rows(), <[u8]>::len);
    let invalid = |message: String| DataError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let mut cols = Vec::with_capacity(frame.n_cols() + 2);
    if let Some(ids) = ids {
        if ids.len() != height {
            return Err(invalid(format!("{} ids for {height} rows", ids.len())));
        }
        cols.push(ids);
    }
    for (name, values) in frame.names.iter().zip(&frame.columns) {
        let integer = crate::schema::column(name).is_some_and(|c| c.integer);
        let opts = values.iter().map(|&v| (!v.is_nan()).then_some(v));
        let col = if integer {
            // Whole numbers are written without a trailing ".0"; codes are small.
            Int64Chunked::from_iter_options(name.as_str().into(), opts.map(|o| o.map(|v| v as i64)))
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
    DataFrame::new(height, cols).map_err(|e| invalid(e.to_string()))
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

/// The header of `predictions.csv`: the row's key, the 0/1 decision, the probability of 1.
pub const PREDICTIONS_HEADER: &str = "id,prediction,probability";

/// Streams `predictions.csv` ([`PREDICTIONS_HEADER`]) batch by batch to a temporary file
/// that becomes the final file only on [`PredictionWriter::commit`]. The `id` column holds
/// the input's ids, or its 1-based row numbers for an input without `id`.
#[derive(Debug)]
pub struct PredictionWriter {
    out: Sha256Writer<AtomicFile>,
    rows: usize,
}

/// What [`PredictionWriter::commit`] put under the final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenPredictions {
    pub rows: usize,
    /// SHA-256 of the file's bytes, in hex, taken as they were written.
    pub sha256: String,
}

impl PredictionWriter {
    pub fn create(path: &Path) -> Result<Self, DataError> {
        let mut out = Sha256Writer::new(AtomicFile::create(path)?);
        out.write_all(format!("{PREDICTIONS_HEADER}\n").as_bytes())
            .map_err(|source| DataError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self { out, rows: 0 })
    }

    /// Appends one batch: the rows' keys, decisions and probabilities, all of one length.
    pub fn write_batch(
        &mut self,
        keys: RowKeys<'_>,
        predictions: &[u8],
        probabilities: &[f64],
    ) -> Result<(), DataError> {
        let path = self.out.get_ref().path().to_path_buf();
        let n = predictions.len();
        let n_keys = match keys {
            RowKeys::Ids(ids) => ids.len(),
            RowKeys::RowNumbers { .. } => n,
        };
        if probabilities.len() != n || n_keys != n {
            return Err(DataError::Invalid {
                path,
                message: format!(
                    "{n_keys} keys, {n} predictions and {} probabilities in one batch",
                    probabilities.len()
                ),
            });
        }
        let key_column = match keys {
            RowKeys::Ids(ids) => id_column(ids),
            RowKeys::RowNumbers { first } => {
                Int64Chunked::from_iter_values(ID.into(), (first..first + n).map(|r| r as i64))
                    .into_column()
            }
        };
        let mut df = DataFrame::new(
            n,
            vec![
                key_column,
                Int32Chunked::from_iter_values(
                    "prediction".into(),
                    predictions.iter().map(|&v| i32::from(v)),
                )
                .into_column(),
                Float64Chunked::from_slice("probability".into(), probabilities).into_column(),
            ],
        )
        .map_err(|e| polars_write_error(&path, e))?;
        CsvWriter::new(&mut self.out)
            .include_header(false)
            .finish(&mut df)
            .map_err(|e| polars_write_error(&path, e))?;
        self.rows += n;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Renames the file into place; returns its row count and checksum.
    pub fn commit(self) -> Result<WrittenPredictions, DataError> {
        let (file, sha256) = self.out.finish();
        file.commit()?;
        Ok(WrittenPredictions {
            rows: self.rows,
            sha256,
        })
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
        let batches: Vec<Batch> = feature_batches(&path, 2)
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("valid");
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].start, 2);
        assert_eq!(batches[0].features.get(1, 9), 1.5);
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
        let batches: Vec<Batch> = feature_batches(&path, 4)
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("valid");
        let starts: Vec<usize> = batches.iter().map(|b| b.start).collect();
        assert_eq!(starts, vec![0, 4, 8]);
        assert_eq!(batches[1].keys(), RowKeys::RowNumbers { first: 5 });
        let chol: Vec<f64> = batches
            .iter()
            .flat_map(|b| b.features.columns[4].clone())
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
    fn prediction_writer_is_all_or_nothing_and_keys_every_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("predictions.csv");
        let numbers = |first| RowKeys::RowNumbers { first };
        let mut w = PredictionWriter::create(&path).expect("create");
        w.write_batch(numbers(1), &[1, 0], &[0.75, 0.125])
            .expect("batch");
        drop(w);
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);

        let mut w = PredictionWriter::create(&path).expect("create");
        w.write_batch(numbers(1), &[1, 0], &[0.75, 0.125])
            .expect("batch");
        w.write_batch(numbers(3), &[1], &[0.5]).expect("batch");
        assert!(w.write_batch(numbers(4), &[1], &[]).is_err());
        let written = w.commit().expect("commit");
        let text = "id,prediction,probability\n1,1,0.75\n2,0,0.125\n3,1,0.5\n";
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        assert_eq!(
            written,
            WrittenPredictions {
                rows: 3,
                sha256: crate::digest::sha256_hex(text.as_bytes())
            }
        );

        // Ids as given, quoted where CSV needs it, so they read back as written.
        let ids = ["a-1", "b,2", "c\"3"].map(String::from);
        let mut w = PredictionWriter::create(&path).expect("create");
        assert!(w
            .write_batch(RowKeys::Ids(&ids[..2]), &[1, 0, 1], &[0.5, 0.25, 1.0])
            .is_err());
        w.write_batch(RowKeys::Ids(&ids), &[1, 0, 1], &[0.5, 0.25, 1.0])
            .expect("batch");
        w.commit().expect("commit");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "id,prediction,probability\na-1,1,0.5\n\"b,2\",0,0.25\n\"c\"\"3\",1,1.0\n"
        );
    }

    const IDS: [&str; 3] = [
        "2026-01-05-000001",
        "2026-01-05-000002",
        "2026-01-05-000003",
    ];

    /// `data.csv` of three rows with the `id` column `ids`.
    fn keyed_data(ids: [&str; 3]) -> String {
        let rows: Vec<String> = ids.iter().map(|id| format!("{id},{ROW}")).collect();
        format!("id,{HEADER}\n{}\n", rows.join("\n"))
    }

    #[test]
    fn ids_are_read_apart_from_the_features() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "data.csv", &keyed_data(IDS));
        let keyed = read_keyed_features(&path).expect("valid");
        assert_eq!(keyed.keyed_by(), KeyedBy::Id);
        assert_eq!(keyed.ids, Some(IDS.map(String::from).to_vec()));
        assert_eq!(keyed.rows.names.len(), FEATURES.len());
        // The same features as the file without ids.
        let plain = write(
            dir.path(),
            "plain.csv",
            &format!("{HEADER}\n{ROW}\n{ROW}\n{ROW}\n"),
        );
        let unkeyed = read_keyed_features(&plain).expect("valid");
        assert_eq!(
            (unkeyed.keyed_by(), unkeyed.ids),
            (KeyedBy::RowNumber, None)
        );
        assert_eq!(unkeyed.rows, keyed.rows);
        assert_eq!(read_features(&path).expect("valid"), keyed.rows);

        let batches: Vec<Batch> = feature_batches(&path, 2)
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("valid");
        assert_eq!(batches[1].keys(), RowKeys::Ids(&[IDS[2].to_string()]));
        assert_eq!(
            batches[0].features.columns,
            keyed.rows.take(&[0, 1]).columns
        );

        let target = write(
            dir.path(),
            "target.csv",
            &format!(
                "id,target\n{},1\n\"{}\",0\r\n{},1\n",
                IDS[0], IDS[1], IDS[2]
            ),
        );
        let labels = read_keyed_target(&target).expect("valid");
        assert_eq!(labels.rows, vec![1, 0, 1]);
        assert_eq!(labels.ids, keyed.ids);
        assert_eq!(read_target(&target).expect("valid"), vec![1, 0, 1]);
        let ids = keyed.ids.unwrap_or_default();
        check_same_ids(&path, &ids, &target, &ids).expect("same ids");
        let mut other = ids.clone();
        other[1] = "2026-01-05-000009".into();
        assert_eq!(
            check_same_ids(&path, &ids, &target, &other)
                .expect_err("differs")
                .to_string(),
            format!(
                "{}: row 2 (line 3), column `id`: \"2026-01-05-000009\" does not match \
                 \"2026-01-05-000002\", the id of row 2 in {}",
                target.display(),
                path.display()
            )
        );
    }

    #[test]
    fn bad_ids_name_file_row_and_column() {
        let cases: &[(String, &str)] = &[
            (
                keyed_data([IDS[0], "", IDS[2]]),
                "row 2 (line 3), column `id`: empty cell",
            ),
            (
                keyed_data([IDS[0], "\"\"", IDS[2]]),
                "row 2 (line 3), column `id`: empty cell",
            ),
            (
                keyed_data([IDS[0], IDS[1], IDS[0]]),
                "row 3 (line 4), column `id`: \"2026-01-05-000001\" is already the id of row 1",
            ),
            // Quoted or not, the same text is the same id.
            (
                keyed_data([IDS[0], IDS[1], "\"2026-01-05-000002\""]),
                "row 3 (line 4), column `id`: \"2026-01-05-000002\" is already the id of row 2",
            ),
            (
                keyed_data(["7", "07", "7"]),
                "row 3 (line 4), column `id`: \"7\" is already the id of row 1",
            ),
            (
                keyed_data([IDS[0], " 2026-01-05-000002", IDS[2]]),
                "row 2 (line 3), column `id`: \" 2026-01-05-000002\" has leading or trailing spaces",
            ),
            (
                keyed_data([IDS[0], "\"x\"y", IDS[2]]),
                "row 2 (line 3), column `id`: \"\\\"x\\\"y\" has text after its closing quote",
            ),
            (
                keyed_data([IDS[0], IDS[1], "\"open"]),
                "row 3 (line 4), column `id`: \"\\\"open,63,1,3,145,233,1,0,150,0,2.3,0,0,1\" opens a quote",
            ),
            (
                format!("{HEADER},id\n{ROW},1\n"),
                "column `id` must be the first column, found at position 14",
            ),
            (
                format!("id,{HEADER},id\n1,{ROW},1\n"),
                "column `id` appears more than once",
            ),
            (
                format!("id,{HEADER},extra\n1,{ROW},1\n"),
                "unexpected column `extra` at position 15 (expected columns: [id,]age,sex,",
            ),
            (
                format!("id,{}\n1,{ROW}\n", HEADER.replace("age,sex", "sex,age")),
                "expected `age` at position 2, found `sex`",
            ),
            (
                format!("id,{HEADER}\n1,{ROW}\n{ROW}\n"),
                "row 2 (line 3): expected 14 fields, found 13",
            ),
        ];
        for (text, want) in cases {
            let err = features_err(text);
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "t.csv", "id,target\na,0\nb,1\na,1\n");
        let err = read_target(&path).expect_err("duplicate").to_string();
        assert!(
            err.contains("row 3 (line 4), column `id`: \"a\" is already the id of row 1"),
            "{err}"
        );
    }

    #[test]
    fn a_duplicate_is_found_across_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ids: Vec<String> = (1..=50)
            .map(|i| format!("k{i}"))
            .chain(["k7".into()])
            .collect();
        let rows: Vec<String> = ids.iter().map(|id| format!("{id},{ROW}")).collect();
        let path = write(
            dir.path(),
            "data.csv",
            &format!("id,{HEADER}\n{}\n", rows.join("\n")),
        );
        let err = feature_batches(&path, 8)
            .expect("open")
            .collect::<Result<Vec<_>, _>>()
            .expect_err("k7 twice");
        assert!(
            err.to_string()
                .contains("row 51 (line 52), column `id`: \"k7\" is already the id of row 7"),
            "{err}"
        );
    }

    #[test]
    fn ids_in_any_order_are_fine_if_none_repeats() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Ascending, then not (row 4), then ascending again: every row is read.
        let ids = ["b", "c", "d", "a", "e", "ba", "f"];
        let rows: Vec<String> = ids.iter().map(|id| format!("{id},{ROW}")).collect();
        let path = write(
            dir.path(),
            "data.csv",
            &format!("id,{HEADER}\n{}\n", rows.join("\n")),
        );
        let got: Vec<String> = feature_batches(&path, 3)
            .expect("open")
            .flat_map(|b| b.expect("valid").ids.unwrap_or_default())
            .collect();
        assert_eq!(got, ids);
        let text = format!("id,{HEADER}\n{}\nd,{ROW}\n", rows.join("\n"));
        assert!(features_err(&text)
            .contains("row 8 (line 9), column `id`: \"d\" is already the id of row 3"));
    }

    #[test]
    fn processed_files_refuse_an_id_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "train.csv",
            &format!("id,{HEADER},target\n1,{ROW},1\n"),
        );
        let err = read_labeled(&path).expect_err("no id").to_string();
        assert!(
            err.contains("unexpected column `id` at position 1"),
            "{err}"
        );
    }

    #[test]
    fn keyed_writers_put_the_id_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = read_labeled(&write(
            dir.path(),
            "in.csv",
            &format!("{HEADER},target\n{ROW},1\n{ROW},0\n"),
        ))
        .expect("valid");
        let ids = ["d-000001", "d-000002"];
        let features = dir.path().join("data.csv");
        write_keyed_features(&features, ids, &data.features).expect("write");
        assert_eq!(
            std::fs::read_to_string(&features).expect("read"),
            format!("id,{HEADER}\nd-000001,{ROW}\nd-000002,{ROW}\n")
        );
        let target = dir.path().join("target.csv");
        write_keyed_target(&target, ids, &data.target).expect("write");
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "id,target\nd-000001,1\nd-000002,0\n"
        );
        let err = write_keyed_target(&dir.path().join("short.csv"), ["x"], &data.target)
            .expect_err("one id for two rows");
        assert!(err.to_string().contains("1 ids for 2 rows"), "{err}");
        assert!(!dir.path().join("short.csv").exists());
    }

    #[test]
    fn a_reader_given_to_the_batches_sees_every_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A trailing blank line too: read, not a record.
        let text = format!("{}\n\n", keyed_data(IDS));
        let path = write(dir.path(), "data.csv", &text);
        let reader = crate::digest::Sha256Reader::new(open_input(&path).expect("open"));
        let mut batches = FeatureBatches::from_reader(&path, reader, 2).expect("open");
        assert_eq!(batches.keyed_by(), KeyedBy::Id);
        for batch in &mut batches {
            batch.expect("valid");
        }
        assert_eq!(batches.rows(), 3);
        assert_eq!(
            batches.into_reader().finish(),
            crate::digest::sha256_hex(text.as_bytes())
        );
    }
}
