//! Synthetic labeled data over the real schema, for tests and benchmarks of the model stages
//! (the real generator lives in `ml-generate`; these crates do not depend on it).

use ml_data::schema::{Kind, FEATURES};
use ml_data::{Frame, Labeled};
use rand::{Rng, SeedableRng};
// ChaCha12 by name: rand documents `StdRng` as free to change algorithm between releases, and
// the golden model files are checked against predictions on this data.
use rand_chacha::ChaCha12Rng;

/// `n` rows whose label leans on `thalach`, `oldpeak` and `cp` with noise; about one cell in
/// seventeen rows is missing. Same `n` and `seed`, same data.
pub fn labeled(n: usize, seed: u64) -> Labeled {
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let mut columns: Vec<Vec<f64>> = FEATURES
        .iter()
        .map(|c| {
            (0..n)
                .map(|_| match c.kind {
                    Kind::Numeric => rng.random_range(c.min..c.max).round(),
                    Kind::Categorical => f64::from(rng.random_range(c.min as u8..=c.max as u8)),
                })
                .collect()
        })
        .collect();
    for i in (0..n).step_by(17) {
        columns[i % FEATURES.len()][i] = f64::NAN;
    }
    let target = (0..n)
        .map(|i| {
            let thalach = columns[7][i];
            let thalach = if thalach.is_nan() { 140.0 } else { thalach };
            let oldpeak = columns[9][i];
            let oldpeak = if oldpeak.is_nan() { 1.0 } else { oldpeak };
            let cp = columns[2][i];
            let cp = if cp.is_nan() { 1.0 } else { cp };
            let z = (thalach - 140.0) / 20.0 - oldpeak + cp - 0.5 + rng.random_range(-1.5..1.5);
            u8::from(z > 0.0)
        })
        .collect();
    Labeled {
        features: Frame {
            names: FEATURES.iter().map(|c| c.name.to_string()).collect(),
            columns,
        },
        target,
    }
}

/// Fits a model of `hp` on `labeled(1500, seed)` and saves it as `dir/model.bin`: the model
/// directory the stage tests hand to their binaries.
pub fn save_fitted_model(dir: &std::path::Path, hp: &crate::Hyperparameters, seed: u64) {
    let model = crate::Model::fit(&labeled(1500, seed), hp).expect("fit the test model");
    model
        .save(&dir.join("model.bin"))
        .expect("save the test model");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_two_classes_and_some_missing_cells() {
        let a = labeled(500, 1);
        assert_eq!(a.target, labeled(500, 1).target);
        assert!(a.target.contains(&0) && a.target.contains(&1));
        let missing = a
            .features
            .columns
            .iter()
            .flatten()
            .filter(|v| v.is_nan())
            .count();
        assert!(missing > 0);
    }
}
