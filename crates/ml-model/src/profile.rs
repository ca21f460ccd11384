//! The reference profile of a model's training data, and the population stability index
//! (PSI) of live data against it.
//!
//! `ml-train` writes the profile of the training split's features next to the model
//! ([`PROFILE_FILE`]); it travels with the model (it is logged under `model/` in MLflow), so
//! whoever monitors a model later compares live features with the very rows it learned from.
//!
//! # Bins
//!
//! A numeric feature has decile bins cut at the training data's own quantiles: the edges are
//! the 10%, 20%, ..., 90% quantiles of its non-missing values, each the smallest value with at
//! least that share of values at or below it (the inverse of the empirical distribution
//! function, so every edge is a value that occurred), with equal edges merged. A feature with
//! few distinct values therefore has fewer bins. The edges `e1 < ... < ek` make `k + 1` bins,
//! closed on the right: a value `v` falls into bin `i` = the number of edges below it
//! (`e < v`), so bin 0 is `v <= e1` and bin `k` is `v > ek`.
//!
//! A categorical feature has one bin per category seen in training, in ascending order, and
//! one last "other" bin for categories training never saw (empty in the reference).
//!
//! Missing cells are counted apart. [`FeatureProfile::bin`] is the one binning function, for
//! the reference and for live data alike.
//!
//! # PSI
//!
//! Over the feature's bins plus one bin of missing cells (so a feature that goes missing
//! drifts), with `e` the reference share and `a` the live share of a bin (counts over all
//! rows, missing included):
//!
//! ```text
//! PSI = sum over bins of (a - e) * ln(a / e)
//! ```
//!
//! Each share is first raised to at least [`SHARE_FLOOR`], so a bin empty on one side gives a
//! large but finite term, and a bin empty on both sides gives 0. Identical data gives 0. A
//! common reading: below 0.1 stable, 0.1 to 0.2 a moderate shift, 0.2 and above a shift
//! that matters.

use ml_data::schema::{self, Kind};
use ml_data::Frame;
use serde::{Deserialize, Serialize};

/// The profile's file name inside a model directory.
pub const PROFILE_FILE: &str = "reference_profile.json";
/// The layout of [`ReferenceProfile`]; bumped when a field changes meaning.
pub const PROFILE_FORMAT: u32 = 1;
/// The smallest share a bin takes in the PSI formula (see the module documentation).
pub const SHARE_FLOOR: f64 = 1e-4;
/// Numeric features are cut at the 1/10, ..., 9/10 quantiles.
const QUANTILES: usize = 10;

/// Why a profile cannot be built, used or trusted.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no rows to profile")]
    NoRows,
    #[error("column `{name}` is not a feature of the schema")]
    UnknownFeature { name: String },
    #[error("feature `{name}` of the reference profile is not in the data")]
    MissingFeature { name: String },
    #[error("format {found} is not the supported format {PROFILE_FORMAT}")]
    Format { found: u32 },
    #[error("feature `{name}`: {detail}")]
    Invalid { name: String, detail: String },
}

/// The training data's features, binned; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// [`PROFILE_FORMAT`].
    pub format: u32,
    /// Training rows profiled.
    pub rows: usize,
    /// One per feature, in the frame's column order.
    pub features: Vec<FeatureProfile>,
}

/// One feature of a [`ReferenceProfile`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    pub name: String,
    #[serde(flatten)]
    pub bins: Bins,
    /// Non-missing training rows per bin, in bin order ([`Bins::len`] of them).
    pub counts: Vec<usize>,
    /// Training rows where the feature is missing.
    pub missing: usize,
}

/// How a feature's values map to bins; `kind` in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Bins {
    /// Ascending cut points; `edges.len() + 1` bins.
    Numeric { edges: Vec<f64> },
    /// Ascending categories seen in training; `categories.len() + 1` bins, the last "other".
    Categorical { categories: Vec<f64> },
}

impl Bins {
    /// Number of bins (the missing cells not counted).
    pub fn len(&self) -> usize {
        match self {
            Bins::Numeric { edges } => edges.len() + 1,
            Bins::Categorical { categories } => categories.len() + 1,
        }
    }

    /// Never true: there is always at least one bin. For clippy's `len` without `is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One feature's drift of live data against the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub name: String,
    pub psi: f64,
    pub missing_share_reference: f64,
    pub missing_share_live: f64,
    /// Live rows compared.
    pub live_rows: usize,
}

impl ReferenceProfile {
    /// Profiles every column of `frame` (the training split's features).
    pub fn from_frame(frame: &Frame) -> Result<Self, ProfileError> {
        let rows = frame.n_rows();
        if rows == 0 {
            return Err(ProfileError::NoRows);
        }
        let features = frame
            .names
            .iter()
            .zip(&frame.columns)
            .map(|(name, values)| FeatureProfile::from_values(name, values))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            format: PROFILE_FORMAT,
            rows,
            features,
        })
    }

    /// Checks what a file cannot promise by its syntax: the format, and for every feature
    /// ascending bins, one count per bin and counts that add up to [`ReferenceProfile::rows`].
    pub fn check(&self) -> Result<(), ProfileError> {
        if self.format != PROFILE_FORMAT {
            return Err(ProfileError::Format { found: self.format });
        }
        if self.rows == 0 {
            return Err(ProfileError::NoRows);
        }
        for feature in &self.features {
            let invalid = |detail: String| ProfileError::Invalid {
                name: feature.name.clone(),
                detail,
            };
            let cuts = match &feature.bins {
                Bins::Numeric { edges } => edges,
                Bins::Categorical { categories } => categories,
            };
            if cuts.iter().any(|v| !v.is_finite()) || cuts.windows(2).any(|w| w[0] >= w[1]) {
                return Err(invalid("bins are not finite and strictly ascending".into()));
            }
            if feature.counts.len() != feature.bins.len() {
                return Err(invalid(format!(
                    "{} counts for {} bins",
                    feature.counts.len(),
                    feature.bins.len()
                )));
            }
            let total = feature.counts.iter().sum::<usize>() + feature.missing;
            if total != self.rows {
                return Err(invalid(format!(
                    "counts add up to {total} rows, the profile has {}",
                    self.rows
                )));
            }
        }
        Ok(())
    }

    /// The PSI of every profiled feature of `live` (looked up by name) against the
    /// reference, in profile order. A profiled feature absent from `live` is an error.
    pub fn psi(&self, live: &Frame) -> Result<Vec<FeatureDrift>, ProfileError> {
        let rows = live.n_rows();
        if rows == 0 {
            return Err(ProfileError::NoRows);
        }
        self.features
            .iter()
            .map(|feature| {
                let column = live
                    .names
                    .iter()
                    .position(|n| *n == feature.name)
                    .ok_or_else(|| ProfileError::MissingFeature {
                        name: feature.name.clone(),
                    })?;
                Ok(feature.drift(self.rows, &live.columns[column]))
            })
            .collect()
    }
}

impl FeatureProfile {
    /// The profile of one training column; `name` must be a feature of the schema (its kind
    /// decides the bins).
    pub fn from_values(name: &str, values: &[f64]) -> Result<Self, ProfileError> {
        let column = schema::column(name).ok_or_else(|| ProfileError::UnknownFeature {
            name: name.to_string(),
        })?;
        let mut present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        present.sort_unstable_by(f64::total_cmp);
        let bins = match column.kind {
            Kind::Numeric => Bins::Numeric {
                edges: decile_edges(&present),
            },
            Kind::Categorical => {
                let mut categories = present.clone();
                categories.dedup();
                Bins::Categorical { categories }
            }
        };
        let mut profile = FeatureProfile {
            name: name.to_string(),
            bins,
            counts: Vec::new(),
            missing: 0,
        };
        (profile.counts, profile.missing) = profile.count(values);
        Ok(profile)
    }

    /// The bin of a present (non-NaN) value; see the module documentation.
    pub fn bin(&self, value: f64) -> usize {
        match &self.bins {
            Bins::Numeric { edges } => edges.partition_point(|&e| e < value),
            Bins::Categorical { categories } => categories
                .iter()
                .position(|&c| c == value)
                .unwrap_or(categories.len()),
        }
    }

    /// Rows per bin and missing rows of `values`, binned on this profile's bins.
    pub fn count(&self, values: &[f64]) -> (Vec<usize>, usize) {
        let mut counts = vec![0; self.bins.len()];
        let mut missing = 0;
        for &v in values {
            if v.is_nan() {
                missing += 1;
            } else {
                counts[self.bin(v)] += 1;
            }
        }
        (counts, missing)
    }

    /// The drift of the live column `values` against this profile of `reference_rows` rows.
    pub fn drift(&self, reference_rows: usize, values: &[f64]) -> FeatureDrift {
        let (counts, missing) = self.count(values);
        let shares = |counts: &[usize], missing: usize, rows: usize| -> Vec<f64> {
            let rows = rows.max(1) as f64;
            counts
                .iter()
                .chain(std::iter::once(&missing))
                .map(|&n| n as f64 / rows)
                .collect()
        };
        let expected = shares(&self.counts, self.missing, reference_rows);
        let actual = shares(&counts, missing, values.len());
        FeatureDrift {
            name: self.name.clone(),
            psi: population_stability_index(&expected, &actual),
            missing_share_reference: self.missing as f64 / reference_rows.max(1) as f64,
            missing_share_live: missing as f64 / values.len().max(1) as f64,
            live_rows: values.len(),
        }
    }
}

/// PSI of the shares `actual` against `expected`, bin for bin, each share raised to at least
/// [`SHARE_FLOOR`] first. Both slices are over the same bins.
pub fn population_stability_index(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(SHARE_FLOOR), a.max(SHARE_FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// The 1/10, ..., 9/10 quantiles of ascending `sorted` (inverse empirical distribution:
/// the value at 1-based rank `ceil(q * n)`), equal ones merged. None for no values.
fn decile_edges(sorted: &[f64]) -> Vec<f64> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let mut edges: Vec<f64> = (1..QUANTILES)
        .map(|q| sorted[(q * n).div_ceil(QUANTILES) - 1])
        .collect();
    edges.dedup();
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn frame(columns: &[(&str, Vec<f64>)]) -> Frame {
        Frame {
            names: columns.iter().map(|(n, _)| n.to_string()).collect(),
            columns: columns.iter().map(|(_, c)| c.clone()).collect(),
        }
    }

    #[test]
    fn numeric_edges_are_the_deciles_and_bins_close_on_the_right() {
        // 1..=100: the q/10 quantile is 10q.
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = FeatureProfile::from_values("age", &values).expect("profile");
        let want: Vec<f64> = (1..=9).map(|q| f64::from(q * 10)).collect();
        assert_eq!(p.bins, Bins::Numeric { edges: want });
        assert_eq!(p.counts, vec![10; 10]);
        assert_eq!(p.missing, 0);
        assert_eq!(
            (p.bin(10.0), p.bin(10.5), p.bin(90.0), p.bin(91.0)),
            (0, 1, 8, 9)
        );
        assert_eq!((p.bin(-1e9), p.bin(1e9)), (0, 9));
        // 1..=15: rank ceil(15q/10) -> 2, 3, 5, 6, 8, 9, 11, 12, 14.
        let values: Vec<f64> = (1..=15).map(f64::from).collect();
        let p = FeatureProfile::from_values("age", &values).expect("profile");
        let want = vec![2.0, 3.0, 5.0, 6.0, 8.0, 9.0, 11.0, 12.0, 14.0];
        assert_eq!(p.bins, Bins::Numeric { edges: want });
    }

    #[test]
    fn tied_edges_are_merged_into_fewer_bins() {
        // 70% zeros, 30% ones: deciles 0 x7, 1 x2 -> edges [0, 1], three bins (the one
        // above 1 empty).
        let mut values = vec![0.0; 70];
        values.extend([1.0; 30]);
        let p = FeatureProfile::from_values("oldpeak", &values).expect("profile");
        assert_eq!(
            p.bins,
            Bins::Numeric {
                edges: vec![0.0, 1.0]
            }
        );
        assert_eq!(p.counts, vec![70, 30, 0]);
        // One value only: one edge, everything at or below it.
        let p = FeatureProfile::from_values("age", &[5.0; 8]).expect("profile");
        assert_eq!(p.bins, Bins::Numeric { edges: vec![5.0] });
        assert_eq!(p.counts, vec![8, 0]);
        // No value at all: one bin, everything missing.
        let p = FeatureProfile::from_values("age", &[f64::NAN; 3]).expect("profile");
        assert_eq!(p.bins, Bins::Numeric { edges: vec![] });
        assert_eq!((p.counts.clone(), p.missing), (vec![0], 3));
    }

    #[test]
    fn categories_seen_plus_one_other_bin() {
        let p =
            FeatureProfile::from_values("cp", &[2.0, 0.0, 2.0, f64::NAN, 3.0]).expect("profile");
        assert_eq!(
            p.bins,
            Bins::Categorical {
                categories: vec![0.0, 2.0, 3.0]
            }
        );
        assert_eq!((p.counts.clone(), p.missing), (vec![1, 2, 1, 0], 1));
        assert_eq!((p.bin(2.0), p.bin(1.0), p.bin(9.0)), (1, 3, 3));
    }

    #[test]
    fn unknown_columns_and_empty_frames_are_refused() {
        assert!(matches!(
            FeatureProfile::from_values("colour", &[1.0]),
            Err(ProfileError::UnknownFeature { .. })
        ));
        assert!(matches!(
            ReferenceProfile::from_frame(&Frame::default()),
            Err(ProfileError::NoRows)
        ));
    }

    #[test]
    fn identical_data_has_no_drift() {
        let data = crate::testing::labeled(600, 3).features;
        let profile = ReferenceProfile::from_frame(&data).expect("profile");
        profile.check().expect("consistent");
        let drift = profile.psi(&data).expect("psi");
        assert_eq!(drift.len(), 13);
        for d in &drift {
            assert_eq!(d.psi, 0.0, "{}", d.name);
            assert_eq!(d.missing_share_reference, d.missing_share_live);
            assert_eq!(d.live_rows, 600);
        }
    }

    #[test]
    fn psi_matches_the_formula_on_hand_picked_shares() {
        // Reference `cp`: 0 x5, 1 x3, 2 x2 (10 rows, nothing missing); live: 0 x2, 1 x4,
        // 2 x2, 3 (unseen) x1, missing x1.
        let reference = frame(&[("cp", vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0])]);
        let live = frame(&[(
            "cp",
            vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, f64::NAN],
        )]);
        let profile = ReferenceProfile::from_frame(&reference).expect("profile");
        let d = &profile.psi(&live).expect("psi")[0];
        // Bins 0, 1, 2, other, missing. The reference's other and missing shares are 0,
        // floored to 1e-4.
        let want = (0.2 - 0.5) * (0.2f64 / 0.5).ln()
            + (0.4 - 0.3) * (0.4f64 / 0.3).ln()
            + (0.2 - 0.2) * 1.0f64.ln()
            + (0.1 - 1e-4) * (0.1f64 / 1e-4).ln()
            + (0.1 - 1e-4) * (0.1f64 / 1e-4).ln();
        assert!(close(d.psi, want), "{} vs {want}", d.psi);
        assert_eq!(
            (d.missing_share_reference, d.missing_share_live),
            (0.0, 0.1)
        );
        assert_eq!(d.live_rows, 10);
    }

    #[test]
    fn a_feature_gone_missing_drifts_through_the_missing_bin() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let profile = ReferenceProfile::from_frame(&frame(&[("age", values)])).expect("profile");
        let d = &profile
            .psi(&frame(&[("age", vec![f64::NAN; 40])]))
            .expect("psi")[0];
        // Ten bins of share 0.1 now empty (floored), the missing bin 0 -> 1.
        let want = 10.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln() + (1.0 - 1e-4) * (1.0f64 / 1e-4).ln();
        assert!(close(d.psi, want), "{} vs {want}", d.psi);
        assert_eq!(d.missing_share_live, 1.0);
    }

    #[test]
    fn the_floor_keeps_empty_bins_finite_and_empty_on_both_sides_free() {
        assert_eq!(population_stability_index(&[0.0, 1.0], &[0.0, 1.0]), 0.0);
        let one_sided = population_stability_index(&[0.0, 1.0], &[0.5, 0.5]);
        let want = (0.5 - 1e-4) * (0.5f64 / 1e-4).ln() + (0.5 - 1.0) * 0.5f64.ln();
        assert!(one_sided.is_finite() && close(one_sided, want));
        // Below the floor counts as the floor.
        assert_eq!(population_stability_index(&[1e-6, 1.0], &[1e-5, 1.0]), 0.0);
    }

    #[test]
    fn a_feature_absent_from_live_data_is_an_error() {
        let profile =
            ReferenceProfile::from_frame(&frame(&[("age", vec![1.0, 2.0])])).expect("profile");
        let err = profile
            .psi(&frame(&[("sex", vec![1.0])]))
            .expect_err("age is missing");
        assert_eq!(
            err.to_string(),
            "feature `age` of the reference profile is not in the data"
        );
    }

    #[test]
    fn check_refuses_inconsistent_profiles() {
        let good =
            ReferenceProfile::from_frame(&frame(&[("age", vec![1.0, 2.0, 3.0])])).expect("profile");
        good.check().expect("consistent");
        let mut bad = good.clone();
        bad.format = 2;
        assert_eq!(
            bad.check().expect_err("format").to_string(),
            "format 2 is not the supported format 1"
        );
        let mut bad = good.clone();
        bad.features[0].counts.push(0);
        assert!(bad.check().is_err());
        let mut bad = good.clone();
        bad.features[0].missing = 1;
        assert!(bad.check().is_err());
        let mut bad = good;
        bad.features[0].bins = Bins::Numeric {
            edges: vec![2.0, 1.0],
        };
        assert!(bad.check().is_err());
    }
}
