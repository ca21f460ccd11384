//! Scoring a model on labelled rows, and comparing two models on the same rows.
//!
//! `ml-validate` writes [`score`]'s metrics to `metrics.json`; `ml-promote` scores the
//! challenger and the production model with the same function on the same `val.csv` and
//! judges the difference of their ROC AUC with [`paired_auc_difference`]: a paired bootstrap
//! that resamples validation rows (the same rows for both models in every resample), so the
//! interval reflects how much the difference could move on other data of this size.

use ml_data::Labeled;
use rand::{Rng, SeedableRng};
// A named algorithm: rand documents `StdRng` as free to change between versions, and a
// promotion decision must not change because a dependency was upgraded.
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::{Model, ModelError};

/// A model's probabilities of class 1 on labelled rows, and the metrics they give.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub probabilities: Vec<f64>,
    pub metrics: Metrics,
}

/// Scores `model` on `data`: the rows go through the model's own feature pipeline, exactly as
/// prediction does.
pub fn score(model: &Model, data: &Labeled) -> Result<Scored, ModelError> {
    let probabilities = model.predict_proba(&data.features)?;
    let metrics = Metrics::compute(&data.target, &probabilities)?;
    Ok(Scored {
        probabilities,
        metrics,
    })
}

/// How the paired bootstrap runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of resamples of the rows; at least [`BootstrapConfig::MIN_RESAMPLES`].
    pub resamples: usize,
    /// Seed of the resampling generator (ChaCha12): same data and seed, same interval.
    pub seed: u64,
    /// Coverage of the two-sided percentile interval, in (0, 1).
    pub confidence: f64,
}

impl BootstrapConfig {
    pub const MIN_RESAMPLES: usize = 1000;
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: 2000,
            seed: 20_260_101,
            confidence: 0.95,
        }
    }
}

/// The ROC AUC difference `a - b` on the same rows, with its bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AucDifference {
    /// `auc(a) - auc(b)` on the rows as they are.
    pub estimate: f64,
    /// Lower end of the percentile interval of the resampled differences.
    pub lower: f64,
    /// Upper end of the percentile interval.
    pub upper: f64,
    pub confidence: f64,
    pub resamples: usize,
    /// Resamples that held both classes (the others have no AUC and are left out).
    pub valid_resamples: usize,
    pub seed: u64,
}

/// Paired bootstrap of `auc(scores_a) - auc(scores_b)` over the rows of `labels`.
///
/// Every resample draws `n` rows with replacement (as row counts) and computes both AUCs with
/// the same counts. `Ok(None)` when the difference is undefined: one class only, or fewer than
/// half of the resamples held both classes (too few rows to say anything).
pub fn paired_auc_difference(
    labels: &[u8],
    scores_a: &[f64],
    scores_b: &[f64],
    config: &BootstrapConfig,
) -> Result<Option<AucDifference>, ModelError> {
    for found in [scores_a.len(), scores_b.len()] {
        if found != labels.len() {
            return Err(ModelError::Shape {
                expected: labels.len(),
                found,
            });
        }
    }
    if config.resamples < BootstrapConfig::MIN_RESAMPLES {
        return Err(ModelError::Hyperparameter(format!(
            "the bootstrap needs at least {} resamples, got {}",
            BootstrapConfig::MIN_RESAMPLES,
            config.resamples
        )));
    }
    if !(config.confidence > 0.0 && config.confidence < 1.0) {
        return Err(ModelError::Hyperparameter(format!(
            "the bootstrap confidence must be in (0, 1), got {}",
            config.confidence
        )));
    }
    let n = labels.len();
    let ones = vec![1.0; n];
    let ranked_a = Ranked::new(labels, scores_a);
    let ranked_b = Ranked::new(labels, scores_b);
    let (Some(auc_a), Some(auc_b)) = (ranked_a.auc(&ones), ranked_b.auc(&ones)) else {
        return Ok(None);
    };
    let mut rng = ChaCha12Rng::seed_from_u64(config.seed);
    let mut counts = vec![0.0; n];
    let mut differences = Vec::with_capacity(config.resamples);
    for _ in 0..config.resamples {
        counts.iter_mut().for_each(|c| *c = 0.0);
        for _ in 0..n {
            counts[rng.random_range(0..n)] += 1.0;
        }
        if let (Some(a), Some(b)) = (ranked_a.auc(&counts), ranked_b.auc(&counts)) {
            differences.push(a - b);
        }
    }
    if differences.len() * 2 < config.resamples {
        return Ok(None);
    }
    differences.sort_unstable_by(f64::total_cmp);
    let tail = (1.0 - config.confidence) / 2.0;
    Ok(Some(AucDifference {
        estimate: auc_a - auc_b,
        lower: quantile(&differences, tail),
        upper: quantile(&differences, 1.0 - tail),
        confidence: config.confidence,
        resamples: config.resamples,
        valid_resamples: differences.len(),
        seed: config.seed,
    }))
}

/// The `q` quantile of sorted `values`, interpolated linearly between neighbours (numpy's
/// default), so the interval does not jump by whole resamples.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// Rows in ascending score order, cut into groups of tied scores, so the AUC of any row
/// weighting is one pass (O(n)) instead of a sort per resample.
struct Ranked<'a> {
    labels: &'a [u8],
    /// Row indices, ascending by score.
    order: Vec<usize>,
    /// `order[groups[k]..groups[k + 1]]` share one score.
    groups: Vec<usize>,
}

impl<'a> Ranked<'a> {
    fn new(labels: &'a [u8], scores: &[f64]) -> Self {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let mut groups = vec![0];
        for k in 1..order.len() {
            if scores[order[k]] != scores[order[k - 1]] {
                groups.push(k);
            }
        }
        groups.push(order.len());
        Self {
            labels,
            order,
            groups,
        }
    }

    /// Weighted Mann-Whitney AUC: the weighted share of (positive, negative) pairs ranked
    /// right, ties counting one half. `None` when a class has no weight.
    fn auc(&self, weights: &[f64]) -> Option<f64> {
        let (mut negatives_below, mut pairs_right, mut positives) = (0.0, 0.0, 0.0);
        for bounds in self.groups.windows(2) {
            let (mut pos, mut neg) = (0.0, 0.0);
            for &row in &self.order[bounds[0]..bounds[1]] {
                if self.labels[row] == 1 {
                    pos += weights[row];
                } else {
                    neg += weights[row];
                }
            }
            pairs_right += pos * (negatives_below + 0.5 * neg);
            negatives_below += neg;
            positives += pos;
        }
        (positives > 0.0 && negatives_below > 0.0)
            .then(|| pairs_right / (positives * negatives_below))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;

    fn noisy_scores(labels: &[u8], noise: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha12Rng::seed_from_u64(seed);
        labels
            .iter()
            .map(|&y| f64::from(y) + noise * rng.random_range(-1.0..1.0))
            .collect()
    }

    fn labels(n: usize) -> Vec<u8> {
        (0..n).map(|i| u8::from(i % 3 == 0)).collect()
    }

    #[test]
    fn unit_weights_give_the_plain_auc_ties_included() {
        let y = labels(300);
        // Rounded scores make many ties.
        let s: Vec<f64> = noisy_scores(&y, 1.2, 1)
            .iter()
            .map(|v| (v * 4.0).round() / 4.0)
            .collect();
        let ranked = Ranked::new(&y, &s);
        let ours = ranked.auc(&vec![1.0; y.len()]).expect("auc");
        let reference = roc_auc(&y, &s).expect("auc");
        assert!((ours - reference).abs() < 1e-12, "{ours} vs {reference}");
    }

    #[test]
    fn integer_weights_equal_repeating_the_rows() {
        let y = labels(60);
        let s = noisy_scores(&y, 1.0, 2);
        let weights: Vec<f64> = (0..60).map(|i| f64::from(i % 4)).collect();
        let (mut ry, mut rs) = (Vec::new(), Vec::new());
        for (i, &w) in weights.iter().enumerate() {
            for _ in 0..w as usize {
                ry.push(y[i]);
                rs.push(s[i]);
            }
        }
        let weighted = Ranked::new(&y, &s).auc(&weights).expect("auc");
        let repeated = roc_auc(&ry, &rs).expect("auc");
        assert!((weighted - repeated).abs() < 1e-12);
    }

    #[test]
    fn a_clearly_better_model_has_an_interval_above_zero() {
        let y = labels(500);
        let good = noisy_scores(&y, 0.8, 3);
        let weak = noisy_scores(&y, 2.5, 4);
        let d = paired_auc_difference(&y, &good, &weak, &BootstrapConfig::default())
            .expect("runs")
            .expect("defined");
        assert!(d.lower > 0.0, "{d:?}");
        assert!(d.lower <= d.estimate && d.estimate <= d.upper, "{d:?}");
        assert_eq!(d.valid_resamples, 2000);
        let plain = roc_auc(&y, &good).expect("a") - roc_auc(&y, &weak).expect("b");
        assert!((d.estimate - plain).abs() < 1e-12);
    }

    #[test]
    fn two_equally_good_models_have_an_interval_around_zero() {
        let y = labels(500);
        let a = noisy_scores(&y, 1.5, 5);
        let b = noisy_scores(&y, 1.5, 6);
        let d = paired_auc_difference(&y, &a, &b, &BootstrapConfig::default())
            .expect("runs")
            .expect("defined");
        assert!(d.lower < 0.0 && d.upper > 0.0, "{d:?}");
        // The same model against itself: exactly zero, every time.
        let same = paired_auc_difference(&y, &a, &a, &BootstrapConfig::default())
            .expect("runs")
            .expect("defined");
        assert_eq!((same.lower, same.estimate, same.upper), (0.0, 0.0, 0.0));
    }

    #[test]
    fn seeded_and_repeatable_other_seed_other_interval() {
        let y = labels(200);
        let a = noisy_scores(&y, 1.0, 7);
        let b = noisy_scores(&y, 1.3, 8);
        let config = BootstrapConfig::default();
        let first = paired_auc_difference(&y, &a, &b, &config).expect("runs");
        assert_eq!(
            first,
            paired_auc_difference(&y, &a, &b, &config).expect("runs")
        );
        let other = BootstrapConfig { seed: 1, ..config };
        assert_ne!(
            first,
            paired_auc_difference(&y, &a, &b, &other).expect("runs")
        );
    }

    #[test]
    fn undefined_and_invalid_cases() {
        let config = BootstrapConfig::default();
        assert_eq!(
            paired_auc_difference(&[1, 1, 1], &[0.1, 0.2, 0.3], &[0.3, 0.2, 0.1], &config)
                .expect("runs"),
            None
        );
        // One positive in two rows: most resamples miss a class.
        assert_eq!(
            paired_auc_difference(&[1, 0], &[0.9, 0.1], &[0.1, 0.9], &config).expect("runs"),
            None
        );
        assert!(paired_auc_difference(&[1, 0], &[0.9], &[0.1, 0.9], &config).is_err());
        let few = BootstrapConfig {
            resamples: 999,
            ..config
        };
        let msg = paired_auc_difference(&[1, 0], &[0.9, 0.1], &[0.1, 0.9], &few)
            .expect_err("too few")
            .to_string();
        assert!(msg.contains("at least 1000"), "{msg}");
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), 0.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert!((quantile(&v, 0.1) - 0.4).abs() < 1e-12);
    }
}
