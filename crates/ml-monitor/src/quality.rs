//! How well the model did on the predictions whose labels arrived: the metrics `ml-validate`
//! computes (ROC AUC, log loss, accuracy at the 0.5 threshold, from `ml_model::metrics`),
//! the predicted and observed positive rates, and calibration over ten equal-width
//! probability bins with its expected calibration error.

use ml_model::Metrics;
use serde::{Deserialize, Serialize};

use crate::join::Joined;
use crate::MonitorError;

/// Probability bins of the calibration table: `[0, 0.1)`, ..., `[0.8, 0.9)`, `[0.9, 1]`.
pub const CALIBRATION_BINS: usize = 10;

/// The quality of the joined rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub roc_auc: f64,
    pub log_loss: f64,
    pub accuracy: f64,
    /// Share of joined rows predicted 1.
    pub predicted_positive_rate: f64,
    /// Share of joined rows labelled 1.
    pub observed_positive_rate: f64,
    /// Expected calibration error: sum over bins of `count / joined * |observed_rate -
    /// mean_predicted|`.
    pub ece: f64,
    pub calibration: Vec<CalibrationBin>,
}

/// One probability bin of the calibration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    /// Exclusive, but for the last bin, which holds 1.
    pub upper: f64,
    pub count: usize,
    /// Mean probability of the bin's rows; `None` (null) for an empty bin.
    pub mean_predicted: Option<f64>,
    /// Share of the bin's rows labelled 1; `None` (null) for an empty bin.
    pub observed_rate: Option<f64>,
}

/// The quality of `joined`, or why no verdict can rest on it: fewer than `min_rows` rows,
/// or labels of one class only (ROC AUC undefined).
pub fn quality(joined: &Joined, min_rows: usize) -> Result<Quality, MonitorError> {
    let n = joined.labels.len();
    if n < min_rows {
        return Err(MonitorError::TooFewLabeled {
            joined: n,
            min: min_rows,
        });
    }
    let metrics = Metrics::compute(&joined.labels, &joined.probabilities)
        .map_err(|e| MonitorError::Metrics(e.to_string()))?;
    let Some(roc_auc) = metrics.roc_auc else {
        return Err(MonitorError::SingleClass {
            class: joined.labels[0],
            joined: n,
        });
    };
    let share = |count: usize| count as f64 / n as f64;
    let calibration = calibration(&joined.labels, &joined.probabilities);
    let ece = calibration
        .iter()
        .filter_map(|b| Some(share(b.count) * (b.observed_rate? - b.mean_predicted?).abs()))
        .sum();
    Ok(Quality {
        roc_auc,
        log_loss: metrics.log_loss,
        accuracy: metrics.accuracy,
        predicted_positive_rate: share(joined.predictions.iter().filter(|&&p| p == 1).count()),
        observed_positive_rate: share(joined.labels.iter().filter(|&&y| y == 1).count()),
        ece,
        calibration,
    })
}

/// The bin of probability `p` in `[0, 1]`: `i` with `i / 10 <= p < (i + 1) / 10`, the last
/// bin closed. Decided against the same `i / 10` the table shows as bounds.
pub fn calibration_bin(p: f64) -> usize {
    let last = CALIBRATION_BINS - 1;
    let bound = |i: usize| i as f64 / CALIBRATION_BINS as f64;
    let mut i = ((p * CALIBRATION_BINS as f64).floor().max(0.0) as usize).min(last);
    // `p * 10` may round across a bound; the bounds themselves decide.
    while i > 0 && p < bound(i) {
        i -= 1;
    }
    while i < last && p >= bound(i + 1) {
        i += 1;
    }
    i
}

fn calibration(labels: &[u8], probabilities: &[f64]) -> Vec<CalibrationBin> {
    let mut count = [0usize; CALIBRATION_BINS];
    let mut sum_p = [0.0f64; CALIBRATION_BINS];
    let mut positives = [0usize; CALIBRATION_BINS];
    for (&y, &p) in labels.iter().zip(probabilities) {
        let b = calibration_bin(p);
        count[b] += 1;
        sum_p[b] += p;
        positives[b] += usize::from(y == 1);
    }
    (0..CALIBRATION_BINS)
        .map(|b| {
            let n = count[b];
            let mean = |x: f64| (n > 0).then(|| x / n as f64);
            CalibrationBin {
                lower: b as f64 / CALIBRATION_BINS as f64,
                upper: (b + 1) as f64 / CALIBRATION_BINS as f64,
                count: n,
                mean_predicted: mean(sum_p[b]),
                observed_rate: mean(positives[b] as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn joined(labels: &[u8], probabilities: &[f64]) -> Joined {
        Joined {
            labels: labels.to_vec(),
            predictions: ml_model::metrics::decide(probabilities),
            probabilities: probabilities.to_vec(),
        }
    }

    /// ROC AUC as the share of (positive, negative) pairs the model orders right, ties
    /// counting half: the definition, not the rank-sum formula the code uses.
    fn auc_by_pairs(labels: &[u8], p: &[f64]) -> f64 {
        let mut right = 0.0;
        let mut pairs = 0.0;
        for (i, &yi) in labels.iter().enumerate() {
            for (j, &yj) in labels.iter().enumerate() {
                if yi == 1 && yj == 0 {
                    pairs += 1.0;
                    right += match p[i].partial_cmp(&p[j]) {
                        Some(std::cmp::Ordering::Greater) => 1.0,
                        Some(std::cmp::Ordering::Equal) => 0.5,
                        _ => 0.0,
                    };
                }
            }
        }
        right / pairs
    }

    #[test]
    fn metrics_match_their_definitions() {
        let y = [1, 0, 1, 1, 0, 0, 1, 0];
        let p = [0.9, 0.3, 0.55, 0.4, 0.4, 0.05, 0.95, 0.7];
        let q = quality(&joined(&y, &p), 1).expect("quality");
        assert!(close(q.roc_auc, auc_by_pairs(&y, &p)));
        // Pairs right: 0.9 above all 4 negatives, 0.55 above 3, 0.4 above 2 and tied with
        // one (a half), 0.95 above 4: (4 + 3 + 2.5 + 4) / 16.
        assert!(close(q.roc_auc, 13.5 / 16.0));
        let ll = -(0.9f64.ln()
            + 0.7f64.ln()
            + 0.55f64.ln()
            + 0.4f64.ln()
            + 0.6f64.ln()
            + 0.95f64.ln()
            + 0.95f64.ln()
            + 0.3f64.ln())
            / 8.0;
        assert!(close(q.log_loss, ll), "{} vs {ll}", q.log_loss);
        // Right at 0.5: rows 0, 1, 2, 4, 5, 6 -> 6 of 8.
        assert!(close(q.accuracy, 0.75));
        assert!(close(q.predicted_positive_rate, 4.0 / 8.0));
        assert!(close(q.observed_positive_rate, 0.5));
    }

    #[test]
    fn calibration_table_and_ece_by_hand() {
        let y = [0, 1, 1, 0, 1];
        let p = [0.05, 0.15, 0.1, 0.95, 1.0];
        let q = quality(&joined(&y, &p), 1).expect("quality");
        assert_eq!(q.calibration.len(), 10);
        let b0 = &q.calibration[0];
        assert_eq!((b0.lower, b0.upper, b0.count), (0.0, 0.1, 1));
        assert_eq!(
            (b0.mean_predicted, b0.observed_rate),
            (Some(0.05), Some(0.0))
        );
        let b1 = &q.calibration[1];
        assert_eq!(b1.count, 2, "0.1 opens bin 1");
        assert!(close(b1.mean_predicted.expect("mean"), 0.125));
        assert_eq!(b1.observed_rate, Some(1.0));
        let b9 = &q.calibration[9];
        assert_eq!(
            (b9.lower, b9.upper, b9.count),
            (0.9, 1.0, 2),
            "1 closes bin 9"
        );
        assert_eq!(b9.observed_rate, Some(0.5));
        for empty in &q.calibration[2..9] {
            assert_eq!(
                (empty.count, empty.mean_predicted, empty.observed_rate),
                (0, None, None)
            );
        }
        let ece = 1.0 / 5.0 * (0.0f64 - 0.05).abs()
            + 2.0 / 5.0 * (1.0f64 - 0.125).abs()
            + 2.0 / 5.0 * (0.5f64 - 0.975).abs();
        assert!(close(q.ece, ece), "{} vs {ece}", q.ece);
    }

    #[test]
    fn bins_follow_their_printed_bounds() {
        for i in 0..10 {
            let lower = i as f64 / 10.0;
            assert_eq!(calibration_bin(lower), i, "{lower}");
            if i > 0 {
                let below = f64::from_bits(lower.to_bits() - 1);
                assert_eq!(calibration_bin(below), i - 1, "{below}");
            }
        }
        assert_eq!(calibration_bin(1.0), 9);
        assert_eq!(calibration_bin(0.0), 0);
    }

    #[test]
    fn too_few_rows_or_one_class_give_no_verdict() {
        let err = quality(&joined(&[1, 0], &[0.9, 0.1]), 3).expect_err("few");
        assert_eq!(
            err.to_string(),
            "only 2 predictions have a label, fewer than --min-labeled-rows 3: no verdict can \
             be given yet"
        );
        let err = quality(&joined(&[1, 1, 1], &[0.9, 0.1, 0.5]), 3).expect_err("one class");
        assert_eq!(
            err.to_string(),
            "the 3 labelled predictions are all of class 1: ROC AUC is undefined, no verdict \
             can be given"
        );
        assert!(quality(&joined(&[1, 0, 1], &[0.9, 0.1, 0.5]), 3).is_ok());
    }
}
