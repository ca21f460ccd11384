//! Binary classification metrics from labels and probabilities of class 1.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Probabilities are clipped to `[EPS, 1 - EPS]` for the log loss, as scikit-learn does for
/// float64, so one confident mistake costs a large but finite amount.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// A row is predicted positive when its probability is above this (scikit-learn's `predict`
/// for logistic regression: a positive decision function).
pub const THRESHOLD: f64 = 0.5;

/// The metrics that `ml-validate` writes to `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    /// 0 when nothing is predicted positive (scikit-learn's `zero_division=0`).
    pub precision: f64,
    /// 0 when there are no positive labels.
    pub recall: f64,
    /// 0 when precision and recall are both 0.
    pub f1: f64,
    /// `None` (JSON `null`) when the labels hold a single class: the AUC is undefined.
    pub roc_auc: Option<f64>,
    pub log_loss: f64,
    pub n_val: usize,
}

/// The 0/1 decision for each probability.
pub fn decide(probabilities: &[f64]) -> Vec<u8> {
    probabilities
        .iter()
        .map(|&p| u8::from(p > THRESHOLD))
        .collect()
}

impl Metrics {
    /// Computes every metric; `labels` are 0/1 and `probabilities` are of class 1.
    pub fn compute(labels: &[u8], probabilities: &[f64]) -> Result<Self, ModelError> {
        if labels.len() != probabilities.len() {
            return Err(ModelError::Shape {
                expected: labels.len(),
                found: probabilities.len(),
            });
        }
        if labels.is_empty() {
            return Err(ModelError::NoRows);
        }
        let (mut tp, mut fp, mut tn, mut fn_) = (0usize, 0usize, 0usize, 0usize);
        for (&y, &p) in labels.iter().zip(probabilities) {
            match (y == 1, p > THRESHOLD) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (false, false) => tn += 1,
                (true, false) => fn_ += 1,
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Ok(Self {
            accuracy: ratio(tp + tn, labels.len()),
            precision,
            recall,
            f1,
            roc_auc: roc_auc(labels, probabilities),
            log_loss: log_loss(labels, probabilities),
            n_val: labels.len(),
        })
    }
}

/// Area under the ROC curve by the rank-sum (Mann-Whitney) formula, tied scores sharing their
/// average rank. `None` unless both classes are present.
pub fn roc_auc(labels: &[u8], scores: &[f64]) -> Option<f64> {
    let n_pos = labels.iter().filter(|&&y| y == 1).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut pos_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start..end (0-based) become 1-based start+1..=end; their mean:
        let avg_rank = (start + 1 + end) as f64 / 2.0;
        let pos_in_group = order[start..end]
            .iter()
            .filter(|&&i| labels[i] == 1)
            .count();
        pos_rank_sum += avg_rank * pos_in_group as f64;
        start = end;
    }
    let n_pos_f = n_pos as f64;
    Some((pos_rank_sum - n_pos_f * (n_pos_f + 1.0) / 2.0) / (n_pos_f * n_neg as f64))
}

/// Mean negative log-likelihood with probabilities clipped to `[EPS, 1 - EPS]`.
pub fn log_loss(labels: &[u8], probabilities: &[f64]) -> f64 {
    let total: f64 = labels
        .iter()
        .zip(probabilities)
        .map(|(&y, &p)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            if y == 1 {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    total / labels.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn counts_by_hand() {
        // tp: rows 0, 1; fn: row 2; fp: row 3; tn: rows 4, 5.
        let y = [1, 1, 1, 0, 0, 0];
        let p = [0.9, 0.6, 0.4, 0.7, 0.2, 0.1];
        let m = Metrics::compute(&y, &p).expect("metrics");
        assert!(close(m.accuracy, 4.0 / 6.0));
        assert!(close(m.precision, 2.0 / 3.0));
        assert!(close(m.recall, 2.0 / 3.0));
        assert!(close(m.f1, 2.0 / 3.0));
        // Pairs (pos, neg) ranked right: 0.9 beats all 3, 0.6 beats 2, 0.4 beats 2 -> 7/9.
        assert!(close(m.roc_auc.expect("auc"), 7.0 / 9.0));
        let ll =
            -(0.9f64.ln() + 0.6f64.ln() + 0.4f64.ln() + 0.3f64.ln() + 0.8f64.ln() + 0.9f64.ln())
                / 6.0;
        assert!(close(m.log_loss, ll));
        assert_eq!(m.n_val, 6);
    }

    #[test]
    fn ties_share_their_average_rank() {
        // One positive and one negative tied at 0.5, one positive above: pairs
        // (0.8 vs 0.5) = 1, (0.5 vs 0.5) = 1/2 -> (1 + 0.5) / 2.
        assert_eq!(roc_auc(&[1, 0, 1], &[0.5, 0.5, 0.8]), Some(0.75));
        // All scores equal: chance level.
        assert_eq!(roc_auc(&[1, 0, 1, 0], &[0.3; 4]), Some(0.5));
        assert_eq!(roc_auc(&[0, 1], &[0.9, 0.1]), Some(0.0));
        assert_eq!(roc_auc(&[1, 1], &[0.9, 0.1]), None);
    }

    #[test]
    fn log_loss_is_clipped_and_edge_cases_are_zero() {
        let ll = log_loss(&[1], &[0.0]);
        assert!(close(ll, -(LOG_LOSS_EPS.ln())));
        assert!(ll.is_finite());
        let m = Metrics::compute(&[0, 0], &[0.1, 0.2]).expect("metrics");
        assert_eq!((m.precision, m.recall, m.f1), (0.0, 0.0, 0.0));
        assert_eq!(m.roc_auc, None);
        assert!(matches!(
            Metrics::compute(&[], &[]),
            Err(ModelError::NoRows)
        ));
        assert!(Metrics::compute(&[1], &[0.1, 0.2]).is_err());
    }

    #[test]
    fn decision_threshold_is_exclusive() {
        assert_eq!(decide(&[0.49, 0.5, 0.51]), [0, 0, 1]);
    }
}
