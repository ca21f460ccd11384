//! A random forest with honest probabilities: bagged smartcore decision trees whose
//! `predict_proba` values are averaged. (smartcore's own `RandomForestClassifier` has no
//! `predict_proba`, and 0/1 predictions would make ROC AUC and log loss meaningless.)
//! smartcore 0.7's tree puts all of a row's probability on its leaf's majority class, so the
//! average is the share of trees that vote for class 1: a score graded in steps of
//! `1 / n_trees`.
//!
//! Each tree sees a bootstrap sample of the rows and a random subset of the model inputs (the
//! random-subspace flavour of feature subsampling: smartcore keeps per-split sampling
//! private). Tree `t` draws from its own generator seeded by `(seed, t)`, so the forest is the
//! same whatever the number of threads that trains it.

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::{
    DecisionTreeClassifier, DecisionTreeClassifierParameters,
};

use crate::preprocess::Matrix;
use crate::ModelError;

type Tree = DecisionTreeClassifier<f64, u8, DenseMatrix<f64>, Vec<u8>>;

/// Hyperparameters of the forest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub n_trees: usize,
    /// Maximum depth of a tree (`None`: grow until leaves are pure or too small).
    pub max_depth: Option<u16>,
    /// Minimum number of rows in a leaf.
    pub min_samples_leaf: usize,
    /// Fraction of the model inputs each tree may split on, in (0, 1].
    pub feature_fraction: f64,
    /// Rows in each tree's bootstrap sample (`None`: as many as the training rows).
    pub max_samples: Option<usize>,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        Self {
            n_trees: 100,
            max_depth: Some(10),
            min_samples_leaf: 5,
            feature_fraction: 0.6,
            max_samples: None,
            seed: 42,
        }
    }
}

impl ForestParams {
    fn check(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Hyperparameter(m));
        if self.n_trees == 0 {
            return bad("n_trees must be at least 1".into());
        }
        if self.max_depth == Some(0) {
            return bad("max_depth must be at least 1".into());
        }
        if self.min_samples_leaf == 0 {
            return bad("min_samples_leaf must be at least 1".into());
        }
        if !(self.feature_fraction > 0.0 && self.feature_fraction <= 1.0) {
            return bad(format!(
                "feature_fraction must be in (0, 1], got {}",
                self.feature_fraction
            ));
        }
        if self.max_samples == Some(0) {
            return bad("max_samples must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Member {
    /// Model inputs this tree splits on; its matrix columns are these, in this order.
    features: Vec<usize>,
    tree: Tree,
}

/// A fitted forest.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forest {
    n_inputs: usize,
    members: Vec<Member>,
}

/// Generator of tree `t`: independent streams for every tree, fixed by the forest seed.
fn tree_rng(seed: u64, t: usize) -> StdRng {
    // SplitMix64-style mixing so that neighbouring seeds give unrelated streams.
    let mut z = seed ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// Copies the given rows and columns of `x` into a smartcore matrix (column-major).
fn gather(
    x: &Matrix,
    rows: Option<&[usize]>,
    cols: &[usize],
) -> Result<DenseMatrix<f64>, ModelError> {
    let n = rows.map_or(x.n_rows, <[usize]>::len);
    let mut values = Vec::with_capacity(n * cols.len());
    for &c in cols {
        let col = x.column(c);
        match rows {
            Some(rows) => values.extend(rows.iter().map(|&r| col[r])),
            None => values.extend_from_slice(col),
        }
    }
    DenseMatrix::new(n, cols.len(), values, true).map_err(|e| ModelError::Fit(e.to_string()))
}

fn threads(work: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(work)
        .max(1)
}

impl Forest {
    /// Fits on model inputs `x` and 0/1 labels `y` (both classes present).
    pub fn fit(x: &Matrix, y: &[u8], params: &ForestParams) -> Result<Self, ModelError> {
        params.check()?;
        if x.n_rows == 0 || x.n_cols == 0 {
            return Err(ModelError::Fit("no training rows or inputs".into()));
        }
        let n_features =
            ((x.n_cols as f64 * params.feature_fraction).ceil() as usize).clamp(1, x.n_cols);
        let n_samples = params.max_samples.unwrap_or(x.n_rows);
        let fit_one = |t: usize| -> Result<Member, ModelError> {
            let mut rng = tree_rng(params.seed, t);
            let mut features = sample(&mut rng, x.n_cols, n_features).into_vec();
            features.sort_unstable();
            // A bootstrap of a tiny or very unbalanced set can miss a class; draw again.
            for _ in 0..32 {
                let rows: Vec<usize> = (0..n_samples)
                    .map(|_| rng.random_range(0..x.n_rows))
                    .collect();
                let labels: Vec<u8> = rows.iter().map(|&r| y[r]).collect();
                if labels.iter().all(|&l| l == labels[0]) {
                    continue;
                }
                let dense = gather(x, Some(&rows), &features)?;
                let tree_params = DecisionTreeClassifierParameters {
                    max_depth: params.max_depth,
                    min_samples_leaf: params.min_samples_leaf,
                    seed: Some(rng.random()),
                    ..Default::default()
                };
                let tree = Tree::fit(&dense, &labels, tree_params)
                    .map_err(|e| ModelError::Fit(format!("tree {t}: {e}")))?;
                return Ok(Member { features, tree });
            }
            Err(ModelError::Fit(format!(
                "tree {t}: every bootstrap sample held a single class; the training set is too small"
            )))
        };
        let n_threads = threads(params.n_trees);
        let mut members: Vec<Option<Result<Member, ModelError>>> =
            (0..params.n_trees).map(|_| None).collect();
        std::thread::scope(|s| {
            for (k, chunk) in members
                .chunks_mut(params.n_trees.div_ceil(n_threads))
                .enumerate()
            {
                let fit_one = &fit_one;
                let first = k * params.n_trees.div_ceil(n_threads);
                s.spawn(move || {
                    for (i, slot) in chunk.iter_mut().enumerate() {
                        *slot = Some(fit_one(first + i));
                    }
                });
            }
        });
        let members = members
            .into_iter()
            .map(|m| m.unwrap_or_else(|| Err(ModelError::Fit("a training thread died".into()))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            n_inputs: x.n_cols,
            members,
        })
    }

    pub fn n_trees(&self) -> usize {
        self.members.len()
    }

    /// Mean over the trees of each tree's probability of class 1.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>, ModelError> {
        if x.n_cols != self.n_inputs {
            return Err(ModelError::Shape {
                expected: self.n_inputs,
                found: x.n_cols,
            });
        }
        if x.n_rows == 0 {
            return Ok(Vec::new());
        }
        let n_threads = threads(self.members.len());
        let per_thread = self.members.len().div_ceil(n_threads);
        let partial: Vec<Result<Vec<f64>, ModelError>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .members
                .chunks(per_thread)
                .map(|chunk| {
                    s.spawn(move || {
                        let mut sum = vec![0.0; x.n_rows];
                        for m in chunk {
                            let dense = gather(x, None, &m.features)?;
                            let proba = m
                                .tree
                                .predict_proba(&dense)
                                .map_err(|e| ModelError::Predict(e.to_string()))?;
                            // Column 1 is class 1: the tree saw both classes, sorted.
                            for (i, s) in sum.iter_mut().enumerate() {
                                *s += *proba.get((i, 1));
                            }
                        }
                        Ok(sum)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ModelError::Predict("a scoring thread died".into()))
                    })
                })
                .collect()
        });
        // Threads cover consecutive chunks of trees; summing in chunk order keeps the result
        // independent of scheduling.
        let mut total = vec![0.0; x.n_rows];
        for p in partial {
            for (t, v) in total.iter_mut().zip(p?) {
                *t += v;
            }
        }
        let n = self.members.len() as f64;
        for t in &mut total {
            *t /= n;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two inputs; the label is 1 when x0 + x1 > 0, except every seventh row is flipped.
    fn data(n: usize) -> (Matrix, Vec<u8>) {
        let mut rng = StdRng::seed_from_u64(7);
        let a: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y = (0..n)
            .map(|i| u8::from((a[i] + b[i] > 0.0) != (i % 7 == 0)))
            .collect();
        let x = Matrix {
            n_rows: n,
            n_cols: 2,
            values: [a, b].concat(),
        };
        (x, y)
    }

    fn params() -> ForestParams {
        ForestParams {
            n_trees: 9,
            max_depth: Some(5),
            feature_fraction: 1.0,
            ..Default::default()
        }
    }

    #[test]
    fn probabilities_are_graded_and_follow_the_label() {
        let (x, y) = data(600);
        let f = Forest::fit(&x, &y, &params()).expect("fit");
        assert_eq!(f.n_trees(), 9);
        let p = f.predict_proba(&x).expect("proba");
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        // Not just 0/1 votes: averaged tree probabilities take intermediate values.
        assert!(p.iter().any(|&v| v > 0.05 && v < 0.95));
        let hits = p
            .iter()
            .zip(&y)
            .filter(|(&p, &y)| (p > 0.5) == (y == 1))
            .count();
        assert!(hits > 480, "{hits}/600");
    }

    #[test]
    fn same_seed_same_forest_other_seed_other_forest() {
        let (x, y) = data(300);
        let p1 = Forest::fit(&x, &y, &params())
            .expect("fit")
            .predict_proba(&x);
        let p2 = Forest::fit(&x, &y, &params())
            .expect("fit")
            .predict_proba(&x);
        assert_eq!(p1.expect("p1"), p2.expect("p2"));
        let other = ForestParams {
            seed: 1,
            ..params()
        };
        let p3 = Forest::fit(&x, &y, &other).expect("fit").predict_proba(&x);
        let p1 = Forest::fit(&x, &y, &params())
            .expect("fit")
            .predict_proba(&x);
        assert_ne!(p1.expect("p1"), p3.expect("p3"));
    }

    #[test]
    fn bad_hyperparameters_are_errors() {
        let (x, y) = data(50);
        for p in [
            ForestParams {
                n_trees: 0,
                ..params()
            },
            ForestParams {
                max_depth: Some(0),
                ..params()
            },
            ForestParams {
                min_samples_leaf: 0,
                ..params()
            },
            ForestParams {
                feature_fraction: 0.0,
                ..params()
            },
            ForestParams {
                feature_fraction: 1.5,
                ..params()
            },
        ] {
            assert!(
                matches!(Forest::fit(&x, &y, &p), Err(ModelError::Hyperparameter(_))),
                "{p:?}"
            );
        }
    }
}
