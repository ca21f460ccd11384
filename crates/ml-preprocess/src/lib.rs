//! Turns a day of raw data into the training table.
//!
//! Validation is strict and total: a file that breaks the schema (columns, numbers, ranges,
//! labels, matching row counts) is rejected with a message naming the file, column and row,
//! and nothing is written. Bad data is never "repaired" here, because a silent fix would hide
//! an upstream bug from the person who has to fix it.
//!
//! Cleaning then removes only rows that carry no information or would double-count:
//!
//! * rows whose 13 features are all empty (nothing to learn from);
//! * exact duplicates of an earlier row, features and label alike (the first is kept).
//!   Rows with equal features but different labels are both kept: that is label noise the
//!   model has to live with, not an error.
//!
//! Empty cells stay empty: imputation is learned by the model on its training split only and
//! stored in the model file, so validate and predict apply exactly the same values.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use ml_data::{io, DataError, Labeled};

/// Where to read and write.
#[derive(Debug, Clone)]
pub struct Options {
    /// Holds `data.csv` and `target.csv`.
    pub input_dir: PathBuf,
    /// Receives `train_data.csv`.
    pub output_dir: PathBuf,
}

/// What cleaning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub rows_in: usize,
    pub all_missing: usize,
    pub duplicates: usize,
    pub rows_out: usize,
}

/// Reads both raw files of a day with their row counts checked against each other.
pub fn read_raw(input_dir: &Path) -> Result<Labeled, DataError> {
    if !input_dir.is_dir() {
        return Err(DataError::MissingDir {
            path: input_dir.to_path_buf(),
        });
    }
    let data_path = input_dir.join("data.csv");
    let target_path = input_dir.join("target.csv");
    let features = io::read_features(&data_path)?;
    let target = io::read_target(&target_path)?;
    if features.n_rows() != target.len() {
        return Err(DataError::RowCountMismatch {
            data: data_path,
            data_rows: features.n_rows(),
            target: target_path,
            target_rows: target.len(),
        });
    }
    Ok(Labeled { features, target })
}

/// A row as a hash key: the bit patterns of its features and its label. Every empty cell is
/// the same NaN, so equal rows have equal keys.
type RowKey = [u64; ml_data::schema::FEATURES.len() + 1];

/// A multiply-rotate hasher for the fixed-size keys above: the keys come from our own
/// validated file, so the DoS resistance of the default SipHash buys nothing here, and it is
/// several times slower on a million rows.
#[derive(Default)]
struct RowHasher(u64);

impl Hasher for RowHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Drops all-empty rows and exact duplicates; see the module documentation.
pub fn clean(data: Labeled) -> (Labeled, CleanStats) {
    let n = data.n_rows();
    let cols = &data.features.columns;
    let mut seen: HashSet<RowKey, BuildHasherDefault<RowHasher>> =
        HashSet::with_capacity_and_hasher(n, BuildHasherDefault::default());
    let mut keep = Vec::with_capacity(n);
    let mut stats = CleanStats {
        rows_in: n,
        ..CleanStats::default()
    };
    for row in 0..n {
        if cols.iter().all(|c| c[row].is_nan()) {
            stats.all_missing += 1;
            continue;
        }
        let mut key: RowKey = [0; ml_data::schema::FEATURES.len() + 1];
        for (k, c) in key.iter_mut().zip(cols) {
            *k = c[row].to_bits();
        }
        key[key.len() - 1] = u64::from(data.target[row]);
        if seen.insert(key) {
            keep.push(row);
        } else {
            stats.duplicates += 1;
        }
    }
    stats.rows_out = keep.len();
    let cleaned = if keep.len() == n {
        data
    } else {
        data.take(&keep)
    };
    (cleaned, stats)
}

/// Reads, validates and cleans `INPUT/{data,target}.csv` and writes `OUTPUT/train_data.csv`.
pub fn run(options: &Options) -> Result<CleanStats, DataError> {
    let raw = read_raw(&options.input_dir)?;
    let (cleaned, stats) = clean(raw);
    if cleaned.n_rows() == 0 {
        return Err(DataError::Invalid {
            path: options.input_dir.join("data.csv"),
            message: "no usable rows after cleaning (every row is empty)".into(),
        });
    }
    io::write_labeled(&output_path(&options.output_dir), &cleaned)?;
    Ok(stats)
}

/// `OUTPUT/train_data.csv`.
pub fn output_path(output_dir: &Path) -> PathBuf {
    output_dir.join("train_data.csv")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_data::Frame;

    #[test]
    fn drops_empty_rows_and_exact_duplicates_only() {
        let nan = f64::NAN;
        let data = Labeled {
            features: Frame {
                names: vec!["a".into(), "b".into()],
                columns: vec![
                    vec![1.0, 1.0, nan, 1.0, 2.0, nan],
                    vec![nan, nan, nan, nan, 3.0, 4.0],
                ],
            },
            target: vec![0, 0, 1, 1, 1, 1],
        };
        let (out, stats) = clean(data);
        assert_eq!(
            stats,
            CleanStats {
                rows_in: 6,
                all_missing: 1,
                duplicates: 1,
                rows_out: 4
            }
        );
        assert_eq!(out.target, vec![0, 1, 1, 1]);
        assert_eq!(out.features.columns[0][2], 2.0);
    }
}
