//! Splits the cleaned training table into `train.csv` and `val.csv`, stratified by the label
//! so both parts keep the day's positive rate, and deterministic for a given seed. Rows keep
//! their input order inside each part.

use std::path::{Path, PathBuf};

use ml_data::{io, split::stratified_split, DataError};

/// Default share of rows held out for validation.
pub const DEFAULT_VAL_SIZE: f64 = 0.2;
/// Default shuffle seed.
pub const DEFAULT_SEED: u64 = 42;

#[derive(Debug, Clone)]
pub struct Options {
    /// Holds `train_data.csv`.
    pub input_dir: PathBuf,
    /// Receives `train.csv` and `val.csv`.
    pub output_dir: PathBuf,
    /// Share of rows for validation, strictly between 0 and 1.
    pub val_size: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub train_rows: usize,
    pub val_rows: usize,
    pub train_positives: usize,
    pub val_positives: usize,
}

pub fn input_path(dir: &Path) -> PathBuf {
    dir.join("train_data.csv")
}

pub fn train_path(dir: &Path) -> PathBuf {
    dir.join(ml_data::split::TRAIN_FILE)
}

pub fn val_path(dir: &Path) -> PathBuf {
    dir.join(ml_data::split::VAL_FILE)
}

/// Reads `train_data.csv`, splits it and writes both parts atomically (`val.csv` first, so a
/// reader that sees `train.csv` finds its validation set too).
pub fn run(options: &Options) -> Result<Summary, DataError> {
    if !options.input_dir.is_dir() {
        return Err(DataError::MissingDir {
            path: options.input_dir.clone(),
        });
    }
    let input = input_path(&options.input_dir);
    let data = io::read_labeled(&input)?;
    let (train, val) = stratified_split(&data.target, options.val_size, options.seed);
    if train.is_empty() || val.is_empty() {
        return Err(DataError::Invalid {
            path: input,
            message: format!(
                "{} rows are too few to split with --val-size {} (train {}, val {})",
                data.n_rows(),
                options.val_size,
                train.len(),
                val.len()
            ),
        });
    }
    let positives = |rows: &[usize]| rows.iter().filter(|&&i| data.target[i] == 1).count();
    let summary = Summary {
        train_rows: train.len(),
        val_rows: val.len(),
        train_positives: positives(&train),
        val_positives: positives(&val),
    };
    io::write_labeled(&val_path(&options.output_dir), &data.take(&val))?;
    io::write_labeled(&train_path(&options.output_dir), &data.take(&train))?;
    Ok(summary)
}
