//! Turns a day of raw data into the training table.
//!
//! Validation is strict and total: a file that breaks the schema (columns, numbers, ranges,
//! labels, matching row counts, ids that are empty, repeated or differ between the two files)
//! is rejected with a message naming the file, column and row, and nothing is written. Bad data is never "repaired" here, because a silent fix would hide
//! an upstream bug from the person who has to fix it.
//!
//! Cleaning then removes only rows that carry no information or would double-count:
//!
//! * rows whose 13 features are all empty (nothing to learn from);
//! * exact duplicates of an earlier row, features and label alike (the first is kept).
//!   Rows with equal features but different labels are both kept: that is label noise the
//!   model has to live with, not an error. The `id` plays no part: two rows with different
//!   ids and the same features and label still count twice for training otherwise.
//!
//! The `id` column of the raw files (optional, see `ml_data::schema::ID`) is checked and then
//! left behind: `train_data.csv` holds the 13 features and `target`, so no later stage can
//! take the key for a feature.
//!
//! Empty cells stay empty: imputation is learned by the model on its training split only and
//! stored in the model file, so validate and predict apply exactly the same values.

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

/// Reads both raw files of a day with their row counts checked against each other and, when
/// both have an `id` column, their ids: row by row the same key, or the day is bad input.
/// The ids are not returned: they are no feature, and the processed files do not carry them
/// (nothing downstream of preprocess joins by key; predictions are keyed from the raw
/// `data.csv` itself).
pub fn read_raw(input_dir: &Path) -> Result<Labeled, DataError> {
    if !input_dir.is_dir() {
        return Err(DataError::MissingDir {
            path: input_dir.to_path_buf(),
        });
    }
    let data_path = input_dir.join("data.csv");
    let target_path = input_dir.join("target.csv");
    let features = io::read_keyed_features(&data_path)?;
    let target = io::read_keyed_target(&target_path)?;
    if features.rows.n_rows() != target.rows.len() {
        return Err(DataError::RowCountMismatch {
            data: data_path,
            data_rows: features.rows.n_rows(),
            target: target_path,
            target_rows: target.rows.len(),
        });
    }
    // A file without ids (from before they existed) is keyed by row number, so with one such
    // file there is nothing to compare.
    if let (Some(data_ids), Some(target_ids)) = (&features.ids, &target.ids) {
        io::check_same_ids(&data_path, data_ids, &target_path, target_ids)?;
    }
    Ok(Labeled {
        features: features.rows,
        target: target.rows,
    })
}

/// A 64-bit fingerprint of a row's feature bits and label. Equal rows have equal
/// fingerprints (every empty cell is the same NaN); unequal rows almost never do, and
/// [`clean`] compares the rows themselves whenever fingerprints match.
fn fingerprint(cols: &[Vec<f64>], target: &[u8], row: usize) -> u64 {
    let mix = |h: u64, v: u64| (h.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    let h = cols
        .iter()
        .fold(u64::from(target[row]), |h, c| mix(h, c[row].to_bits()));
    // SplitMix64's finaliser spreads every input bit over the whole word.
    let h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Drops all-empty rows and exact duplicates (keeping the first); see the module
/// documentation.
///
/// Sorting (fingerprint, row) pairs finds duplicates with sequential memory access; a hash
/// set of whole rows spent over half a second on a million rows in cache misses.
pub fn clean(data: Labeled) -> (Labeled, CleanStats) {
    let n = data.n_rows();
    let cols = &data.features.columns;
    let mut stats = CleanStats {
        rows_in: n,
        ..CleanStats::default()
    };
    let mut dropped = vec![false; n];
    let mut prints: Vec<(u64, usize)> = Vec::with_capacity(n);
    for row in 0..n {
        if cols.iter().all(|c| c[row].is_nan()) {
            stats.all_missing += 1;
            dropped[row] = true;
        } else {
            prints.push((fingerprint(cols, &data.target, row), row));
        }
    }
    prints.sort_unstable();
    let same = |a: usize, b: usize| {
        data.target[a] == data.target[b] && cols.iter().all(|c| c[a].to_bits() == c[b].to_bits())
    };
    for group in prints.chunk_by(|x, y| x.0 == y.0).filter(|g| g.len() > 1) {
        // Rows ascend within a group: a row equal to any earlier one is a duplicate.
        for (i, &(_, row)) in group.iter().enumerate().skip(1) {
            if group[..i].iter().any(|&(_, earlier)| same(earlier, row)) {
                dropped[row] = true;
                stats.duplicates += 1;
            }
        }
    }
    let keep: Vec<usize> = (0..n).filter(|&row| !dropped[row]).collect();
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
