//! Stratified train/validation split.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;

/// The training part of a split, inside the processed directory.
pub const TRAIN_FILE: &str = "train.csv";
/// The validation part: what `ml-validate` scores and `ml-promote` judges both models on.
pub const VAL_FILE: &str = "val.csv";

/// Splits row indices so that each class keeps its share in both parts: for every class,
/// `round(n_class * val_fraction)` of its rows, chosen by a seeded shuffle, go to validation.
/// Both index lists are returned sorted, so the output files keep the input's row order.
/// The same `(target, val_fraction, seed)` always gives the same split: the shuffle's
/// generator is named (ChaCha12, seeded with `seed_from_u64`), not `StdRng`, which rand may
/// change between versions; `ml-split`'s golden test pins the result.
pub fn stratified_split(target: &[u8], val_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let fraction = if val_fraction.is_finite() {
        val_fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let mut classes: Vec<u8> = target.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let mut train = Vec::with_capacity(target.len());
    let mut val = Vec::with_capacity((target.len() as f64 * fraction) as usize + classes.len());
    for class in classes {
        let mut rows: Vec<usize> = (0..target.len()).filter(|&i| target[i] == class).collect();
        rows.shuffle(&mut rng);
        let n_val = (rows.len() as f64 * fraction).round() as usize;
        val.extend_from_slice(&rows[..n_val]);
        train.extend_from_slice(&rows[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_class_shares_and_is_deterministic() {
        let target: Vec<u8> = (0..1000).map(|i| u8::from(i % 4 == 0)).collect();
        let (train, val) = stratified_split(&target, 0.2, 7);
        assert_eq!(train.len() + val.len(), 1000);
        assert_eq!(val.len(), 200);
        assert_eq!(val.iter().filter(|&&i| target[i] == 1).count(), 50);
        assert_eq!(
            stratified_split(&target, 0.2, 7),
            (train.clone(), val.clone())
        );
        assert_ne!(stratified_split(&target, 0.2, 8).1, val);
        let mut all: Vec<usize> = train.into_iter().chain(val).collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }
}
