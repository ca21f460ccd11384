//! The one error type of the data layer. Every message names the file, and the column and row
//! where one applies, so a person reading an Airflow log knows what to fix without a debugger.

use std::fmt;
use std::path::PathBuf;

/// What is wrong with a single cell.
#[derive(Debug, Clone, PartialEq)]
pub enum CellProblem {
    /// The text is not a number at all.
    NotNumeric(String),
    /// A number with spaces before or after it (` 61`, `61 `).
    Padded(String),
    /// A quoted cell whose closing quote never comes.
    UnclosedQuote(String),
    /// `NaN`, `inf` and friends: a missing value must be an empty cell.
    NotFinite(String),
    /// A number outside the schema's valid range.
    OutOfRange { value: f64, min: f64, max: f64 },
    /// A categorical code or count that is not a whole number.
    NotInteger(f64),
    /// An empty cell where a value is required (the target).
    Empty,
    /// A label other than 0 or 1.
    NotBinary(String),
    /// An id with spaces before or after it: not trimmed, for the reason numbers are not
    /// (and `" 7"` would not join with `"7"`).
    PaddedId(String),
    /// A quoted cell with text after its closing quote, where text is expected (an id).
    TextAfterQuote(String),
    /// An id that an earlier row of the same file already has.
    DuplicateId { id: String, first_row: usize },
}

impl fmt::Display for CellProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotNumeric(text) => write!(f, "{text:?} is not a number"),
            Self::Padded(text) => write!(
                f,
                "{text:?} is not a number: it has leading or trailing spaces"
            ),
            Self::UnclosedQuote(text) => {
                write!(f, "{text:?} opens a quote that is never closed")
            }
            Self::NotFinite(text) => write!(
                f,
                "{text:?} is not a finite number (leave the cell empty for a missing value)"
            ),
            Self::OutOfRange { value, min, max } => {
                write!(f, "{value} is outside the valid range [{min}, {max}]")
            }
            Self::NotInteger(value) => write!(f, "{value} is not a whole-number code"),
            Self::Empty => write!(f, "empty cell, a value is required"),
            Self::NotBinary(text) => write!(f, "{text:?} is not a label (expected 0 or 1)"),
            Self::PaddedId(text) => write!(f, "{text:?} has leading or trailing spaces"),
            Self::TextAfterQuote(text) => {
                write!(f, "{text:?} has text after its closing quote")
            }
            Self::DuplicateId { id, first_row } => {
                write!(f, "{id:?} is already the id of row {first_row}")
            }
        }
    }
}

/// A data-layer failure. `row` is the 1-based data row (the header is not counted); the
/// message also gives the 1-based line of the file, which is `row + 1`.
///
/// Every variant but four is about the data (running again on the same input fails the
/// same way). `Read`, `Write`, `Remove` and `CreateDir` are about the machine, and carry the
/// `std::io::Error` as their source, which is how `ml-cli` tells them apart.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: no such directory", path.display())]
    MissingDir { path: PathBuf },
    #[error("{}: no such file", path.display())]
    MissingFile { path: PathBuf },
    #[error("{}: cannot read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: file is empty (expected a header line)", path.display())]
    Empty { path: PathBuf },
    #[error("{}: header only, no data rows", path.display())]
    NoRows { path: PathBuf },
    #[error("{}: missing column `{column}` (header: {header})", path.display())]
    MissingColumn {
        path: PathBuf,
        column: String,
        header: String,
    },
    #[error("{}: unexpected column `{column}` at position {position} (expected columns: {expected})", path.display())]
    ExtraColumn {
        path: PathBuf,
        column: String,
        position: usize,
        expected: String,
    },
    #[error("{}: column `{column}` appears more than once", path.display())]
    DuplicateColumn { path: PathBuf, column: String },
    #[error("{}: columns out of order: expected `{expected}` at position {position}, found `{found}`", path.display())]
    ColumnOrder {
        path: PathBuf,
        position: usize,
        expected: String,
        found: String,
    },
    #[error("{}: row {row} (line {}): expected {expected} fields, found {found}", path.display(), row + 1)]
    FieldCount {
        path: PathBuf,
        row: usize,
        expected: usize,
        found: usize,
    },
    #[error("{}: row {row} (line {}), column `{column}`: {problem}", path.display(), row + 1)]
    Cell {
        path: PathBuf,
        row: usize,
        column: String,
        problem: CellProblem,
    },
    #[error("{}: column `id` must be the first column, found at position {position}", path.display())]
    IdNotFirst { path: PathBuf, position: usize },
    /// `data.csv` and `target.csv` both have ids, and those of one row differ.
    #[error("{}: row {row} (line {}), column `id`: {found:?} does not match {expected:?}, the id of row {row} in {}", path.display(), row + 1, other.display())]
    IdMismatch {
        path: PathBuf,
        row: usize,
        found: String,
        other: PathBuf,
        expected: String,
    },
    #[error("row count mismatch: {} has {data_rows} rows but {} has {target_rows}", data.display(), target.display())]
    RowCountMismatch {
        data: PathBuf,
        data_rows: usize,
        target: PathBuf,
        target_rows: usize,
    },
    #[error("{}: cannot write", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot remove", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot create output directory", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl DataError {
    /// The file (or directory) the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::MissingDir { path }
            | Self::MissingFile { path }
            | Self::Read { path, .. }
            | Self::Empty { path }
            | Self::NoRows { path }
            | Self::MissingColumn { path, .. }
            | Self::ExtraColumn { path, .. }
            | Self::DuplicateColumn { path, .. }
            | Self::ColumnOrder { path, .. }
            | Self::FieldCount { path, .. }
            | Self::Cell { path, .. }
            | Self::IdNotFirst { path, .. }
            | Self::IdMismatch { path, .. }
            | Self::Write { path, .. }
            | Self::Remove { path, .. }
            | Self::CreateDir { path, .. }
            | Self::Invalid { path, .. } => path,
            Self::RowCountMismatch { data, .. } => data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_message_names_file_row_line_and_column() {
        let err = DataError::Cell {
            path: "raw/data.csv".into(),
            row: 17,
            column: "chol".into(),
            problem: CellProblem::NotNumeric("abc".into()),
        };
        assert_eq!(
            err.to_string(),
            "raw/data.csv: row 17 (line 18), column `chol`: \"abc\" is not a number"
        );
    }
}
