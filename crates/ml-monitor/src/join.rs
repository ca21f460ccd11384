//! Predictions joined with the labels that arrived.
//!
//! Both sides are keyed the same way or not joined at all: by id when `provenance.json` says
//! the predictions are keyed by `id` and `target.csv` has an `id` column, by row number
//! when neither has ids (the predictions' `id` column then holds the 1-based row numbers).
//! Labels may be fewer than predictions (labels arrive late) or name rows that were never
//! scored; both are counted, neither is an error. An id given twice on either side is.

use std::collections::HashMap;
use std::path::Path;

use ml_data::{Keyed, KeyedBy};
use serde::{Deserialize, Serialize};

use crate::predictions::Prediction;
use crate::MonitorError;

/// How many rows each side had and how many met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Rows of `predictions.csv`.
    pub predictions: usize,
    /// Rows of `target.csv`.
    pub labels: usize,
    /// Predictions with a label.
    pub joined: usize,
    /// Predictions without a label (yet).
    pub unlabeled: usize,
    /// Labels without a prediction.
    pub unpredicted: usize,
}

/// The joined rows, in the predictions' order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Joined {
    pub labels: Vec<u8>,
    pub predictions: Vec<u8>,
    pub probabilities: Vec<f64>,
}

/// Joins `predictions` (keyed as `keyed_by` says, from `provenance`) with `labels`, read
/// from `labels_path`; the paths are for messages.
pub fn join(
    predictions: &[Prediction],
    keyed_by: KeyedBy,
    provenance: &Path,
    labels: &Keyed<Vec<u8>>,
    labels_path: &Path,
) -> Result<(Joined, RowCounts), MonitorError> {
    if keyed_by != labels.keyed_by() {
        return Err(MonitorError::MixedKeys {
            provenance: provenance.to_path_buf(),
            predictions: keyed_by.as_str(),
            labels_path: labels_path.to_path_buf(),
            labels: labels.keyed_by().as_str(),
        });
    }
    let keys: Vec<String> = match &labels.ids {
        Some(ids) => ids.clone(),
        None => (1..=labels.rows.len()).map(|r| r.to_string()).collect(),
    };
    let mut row_of: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        if row_of.insert(key, i).is_some() {
            return Err(MonitorError::DuplicateId {
                path: labels_path.to_path_buf(),
                id: key.clone(),
            });
        }
    }
    let mut used = vec![false; keys.len()];
    let mut joined = Joined::default();
    for p in predictions {
        let Some(&i) = row_of.get(p.id.as_str()) else {
            continue;
        };
        if std::mem::replace(&mut used[i], true) {
            return Err(MonitorError::DuplicateId {
                path: provenance.with_file_name(crate::PREDICTIONS_FILE),
                id: p.id.clone(),
            });
        }
        joined.labels.push(labels.rows[i]);
        joined.predictions.push(p.prediction);
        joined.probabilities.push(p.probability);
    }
    let n = joined.labels.len();
    let counts = RowCounts {
        predictions: predictions.len(),
        labels: keys.len(),
        joined: n,
        unlabeled: predictions.len() - n,
        unpredicted: keys.len() - n,
    };
    Ok((joined, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preds(ids: &[&str]) -> Vec<Prediction> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Prediction {
                id: id.to_string(),
                prediction: (i % 2) as u8,
                probability: i as f64 / 10.0,
            })
            .collect()
    }

    fn labels(ids: Option<&[&str]>, rows: &[u8]) -> Keyed<Vec<u8>> {
        Keyed {
            ids: ids.map(|ids| ids.iter().map(|s| s.to_string()).collect()),
            rows: rows.to_vec(),
        }
    }

    fn run(
        p: &[Prediction],
        keyed_by: KeyedBy,
        l: &Keyed<Vec<u8>>,
    ) -> Result<(Joined, RowCounts), MonitorError> {
        join(
            p,
            keyed_by,
            Path::new("pred/provenance.json"),
            l,
            Path::new("raw/target.csv"),
        )
    }

    #[test]
    fn joins_by_id_in_prediction_order_and_counts_both_sides() {
        let p = preds(&["a", "b", "c", "d"]);
        // "b" has no label yet; "z" was never scored.
        let l = labels(Some(&["d", "z", "a", "c"]), &[1, 0, 0, 1]);
        let (joined, counts) = run(&p, KeyedBy::Id, &l).expect("join");
        assert_eq!(joined.labels, [0, 1, 1]);
        assert_eq!(joined.probabilities, [0.0, 0.2, 0.3]);
        assert_eq!(joined.predictions, [0, 0, 1]);
        assert_eq!(
            counts,
            RowCounts {
                predictions: 4,
                labels: 4,
                joined: 3,
                unlabeled: 1,
                unpredicted: 1
            }
        );
    }

    #[test]
    fn joins_by_row_number_when_neither_side_has_ids() {
        let p = preds(&["1", "2", "3"]);
        // Two labels so far: rows 1 and 2.
        let (joined, counts) = run(&p, KeyedBy::RowNumber, &labels(None, &[1, 0])).expect("join");
        assert_eq!(joined.labels, [1, 0]);
        assert_eq!(joined.probabilities, [0.0, 0.1]);
        assert_eq!(
            (counts.joined, counts.unlabeled, counts.unpredicted),
            (2, 1, 0)
        );
    }

    #[test]
    fn mixed_keys_and_repeated_ids_are_refused() {
        let p = preds(&["1", "2"]);
        let err = run(&p, KeyedBy::Id, &labels(None, &[1, 0])).expect_err("mixed");
        assert_eq!(
            err.to_string(),
            "predictions are keyed by id (pred/provenance.json) but raw/target.csv is keyed by \
             row_number: they cannot be joined"
        );
        let err =
            run(&p, KeyedBy::RowNumber, &labels(Some(&["1", "2"]), &[1, 0])).expect_err("mixed");
        assert!(err.to_string().contains("keyed by row_number"), "{err}");
        let err = run(&p, KeyedBy::Id, &labels(Some(&["1", "1"]), &[1, 0])).expect_err("twice");
        assert_eq!(
            err.to_string(),
            "raw/target.csv: id \"1\" appears more than once"
        );
        let twice = preds(&["1", "1"]);
        let err = run(&twice, KeyedBy::Id, &labels(Some(&["1"]), &[1])).expect_err("twice");
        assert_eq!(
            err.to_string(),
            "pred/predictions.csv: id \"1\" appears more than once"
        );
    }
}
