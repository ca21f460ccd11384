//! The day's verdict on the model, and every rule behind it.
//!
//! - `decay` when the live ROC AUC is below the validation ROC AUC less the margin, or below
//!   the promotion floor (`--min-roc-auc`);
//! - else `drift` when a feature's PSI is at or above the threshold;
//! - else `ok`.
//!
//! The reasons list every rule that fired, as sentences with their numbers: the decay rules
//! first, then one per drifted feature (largest PSI first), drift listed under a decay too.
//! An `ok` day has no reasons.

use serde::{Deserialize, Serialize};

/// The verdict of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Drift,
    Decay,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Drift => "drift",
            Verdict::Decay => "decay",
        }
    }
}

/// The limits the rules compare with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// A feature drifted when its PSI is at least this.
    pub psi: f64,
    /// Decay when the live ROC AUC is more than this below the validation ROC AUC.
    pub auc_margin: f64,
    /// Decay when the live ROC AUC is below this (the promotion floor).
    pub min_roc_auc: f64,
    /// Fewer joined rows than this give no verdict at all.
    pub min_labeled_rows: usize,
}

/// One feature's PSI, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeaturePsi<'a> {
    pub name: &'a str,
    pub psi: f64,
}

/// A verdict with its reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

/// Whether a feature of PSI `psi` drifted.
pub fn drifted(psi: f64, thresholds: &Thresholds) -> bool {
    psi >= thresholds.psi
}

/// Applies the rules of the module documentation.
pub fn judge(
    live_roc_auc: f64,
    validation_roc_auc: f64,
    features: &[FeaturePsi<'_>],
    thresholds: &Thresholds,
) -> Judged {
    let mut decay = Vec::new();
    let gap = validation_roc_auc - live_roc_auc;
    if live_roc_auc < validation_roc_auc - thresholds.auc_margin {
        decay.push(format!(
            "live ROC AUC {live_roc_auc:.4} is {gap:.4} below the validation ROC AUC \
             {validation_roc_auc:.4} (margin {})",
            thresholds.auc_margin
        ));
    }
    if live_roc_auc < thresholds.min_roc_auc {
        decay.push(format!(
            "live ROC AUC {live_roc_auc:.4} is below the promotion floor {}",
            thresholds.min_roc_auc
        ));
    }
    let mut drift: Vec<&FeaturePsi<'_>> = features
        .iter()
        .filter(|f| drifted(f.psi, thresholds))
        .collect();
    drift.sort_by(|a, b| b.psi.total_cmp(&a.psi));
    let verdict = if !decay.is_empty() {
        Verdict::Decay
    } else if !drift.is_empty() {
        Verdict::Drift
    } else {
        Verdict::Ok
    };
    let mut reasons = decay;
    reasons.extend(
        drift
            .iter()
            .map(|f| format!("{}: PSI {:.4} >= {}", f.name, f.psi, thresholds.psi)),
    );
    Judged { verdict, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Binary fractions, so that "exactly at the limit" is exact in floating point.
    const T: Thresholds = Thresholds {
        psi: 0.25,
        auc_margin: 0.0625,
        min_roc_auc: 0.75,
        min_labeled_rows: 200,
    };

    fn f(name: &str, psi: f64) -> FeaturePsi<'_> {
        FeaturePsi { name, psi }
    }

    #[test]
    fn ok_when_no_rule_fires() {
        let j = judge(0.875, 0.875, &[f("age", 0.0), f("sex", 0.1)], &T);
        assert_eq!(
            j,
            Judged {
                verdict: Verdict::Ok,
                reasons: vec![]
            }
        );
        // Better than validation is fine too.
        assert_eq!(judge(0.95, 0.875, &[], &T).verdict, Verdict::Ok);
    }

    #[test]
    fn decay_below_the_validation_auc_less_the_margin() {
        // 0.8125 = 0.875 - 0.0625 exactly: at the limit, not below it.
        assert_eq!(judge(0.8125, 0.875, &[], &T).verdict, Verdict::Ok);
        let j = judge(0.8115, 0.875, &[], &T);
        assert_eq!(j.verdict, Verdict::Decay);
        assert_eq!(
            j.reasons,
            ["live ROC AUC 0.8115 is 0.0635 below the validation ROC AUC 0.8750 (margin 0.0625)"]
        );
    }

    #[test]
    fn decay_below_the_floor_even_close_to_validation() {
        // At the floor: fine.
        assert_eq!(judge(0.75, 0.78125, &[], &T).verdict, Verdict::Ok);
        let j = judge(0.7499, 0.78125, &[], &T);
        assert_eq!(j.verdict, Verdict::Decay);
        assert_eq!(
            j.reasons,
            ["live ROC AUC 0.7499 is below the promotion floor 0.75"]
        );
        // Both decay rules.
        let j = judge(0.5, 0.875, &[], &T);
        assert_eq!(j.reasons.len(), 2);
        assert!(j.reasons[0].contains("0.3750 below"), "{:?}", j.reasons);
    }

    #[test]
    fn drift_at_the_psi_threshold_largest_first() {
        let features = [f("age", 0.25), f("chol", 0.2499), f("thal", 1.5)];
        let j = judge(0.875, 0.875, &features, &T);
        assert_eq!(j.verdict, Verdict::Drift);
        assert_eq!(
            j.reasons,
            ["thal: PSI 1.5000 >= 0.25", "age: PSI 0.2500 >= 0.25"]
        );
        assert!(drifted(0.25, &T) && !drifted(0.2499, &T));
    }

    #[test]
    fn decay_wins_and_still_lists_the_drift() {
        let j = judge(0.6, 0.875, &[f("age", 0.3)], &T);
        assert_eq!(j.verdict, Verdict::Decay);
        assert_eq!(j.reasons.len(), 3);
        assert_eq!(j.reasons[2], "age: PSI 0.3000 >= 0.25");
    }
}
