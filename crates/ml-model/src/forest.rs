//! A random forest with honest probabilities, scikit-learn's `RandomForestClassifier` in
//! kind: bagged CART trees (`tree.rs`) whose probability of class 1 for a row is the
//! mean over the trees of the class-1 share of the training rows in the row's leaf. That share
//! is weighted by the bootstrap, and it is what scikit-learn's `predict_proba` reports; it
//! grades scores much more finely than the share of trees voting for class 1.
//!
//! Each tree sees a bootstrap sample of the rows (`max_samples` draws with replacement, kept
//! as a draw count per row) and examines `ceil(feature_fraction * inputs)` randomly chosen
//! model inputs at every split. The inputs are binned once for the whole forest.
//!
//! Randomness is ChaCha12 by name (`rand_chacha`), not `rand::rngs::StdRng`: rand documents
//! `StdRng` as free to change algorithm between releases, and the same data, parameters and
//! seed must keep giving the same forest. Tree `t` draws from stream `t` of the generator
//! keyed by the seed, so a forest does not depend on the number of threads that trains it;
//! scoring splits rows, not trees, across threads, and sums each row's trees in order, so
//! probabilities do not depend on it either.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use crate::preprocess::Matrix;
use crate::tree::{Binned, Tree, TreeParams};
use crate::ModelError;

/// Rows scored together: each tree walks the whole block while its nodes are in cache.
const BLOCK_ROWS: usize = 512;

/// Hyperparameters of the forest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub n_trees: usize,
    /// Maximum number of splits from the root to a leaf (`None`: grow until leaves are pure
    /// or too small).
    pub max_depth: Option<u16>,
    /// Minimum number of distinct training rows in a leaf (a row the bootstrap drew twice
    /// counts once, as in scikit-learn).
    pub min_samples_leaf: usize,
    /// Fraction of the model inputs examined at each split, in (0, 1]; at least one.
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

/// A fitted forest.
#[derive(Debug)]
pub struct Forest {
    n_inputs: usize,
    trees: Vec<Tree>,
}

/// Generator of tree `t`: stream `t` of ChaCha12 keyed by the forest seed.
fn tree_rng(seed: u64, t: usize) -> ChaCha12Rng {
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    rng.set_stream(t as u64);
    rng
}

fn threads(work: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(work)
        .max(1)
}

impl Forest {
    /// Fits on model inputs `x` (finite values) and 0/1 labels `y`.
    pub fn fit(x: &Matrix, y: &[u8], params: &ForestParams) -> Result<Self, ModelError> {
        Self::fit_with_threads(x, y, params, threads(params.n_trees))
    }

    fn fit_with_threads(
        x: &Matrix,
        y: &[u8],
        params: &ForestParams,
        n_threads: usize,
    ) -> Result<Self, ModelError> {
        params.check()?;
        if x.n_rows == 0 || x.n_cols == 0 {
            return Err(ModelError::Fit("no training rows or inputs".into()));
        }
        if y.len() != x.n_rows {
            return Err(ModelError::Shape {
                expected: x.n_rows,
                found: y.len(),
            });
        }
        if let Some(i) = y.iter().position(|&v| v > 1) {
            return Err(ModelError::Fit(format!(
                "label {} in row {i}: labels must be 0 or 1",
                y[i]
            )));
        }
        for j in 0..x.n_cols {
            if let Some(i) = x.column(j).iter().position(|v| !v.is_finite()) {
                return Err(ModelError::Fit(format!(
                    "model input {j} is {} in row {i}: the forest needs finite inputs",
                    x.column(j)[i]
                )));
            }
        }
        let n_samples = params.max_samples.unwrap_or(x.n_rows);
        // Row numbers and weighted counts are u32 inside the trees.
        let (Ok(n_rows), Ok(_), Ok(_)) = (
            u32::try_from(x.n_rows),
            u32::try_from(n_samples),
            u32::try_from(x.n_cols),
        ) else {
            return Err(ModelError::Fit(format!(
                "{} rows, {} inputs and {n_samples} samples per tree: at most {} each",
                x.n_rows,
                x.n_cols,
                u32::MAX
            )));
        };
        let tree_params = TreeParams {
            max_depth: params.max_depth,
            min_samples_leaf: params.min_samples_leaf,
            max_features: ((x.n_cols as f64 * params.feature_fraction).ceil() as usize)
                .clamp(1, x.n_cols),
        };
        let binned = Binned::new(x);
        let fit_one = |t: usize| -> Tree {
            let mut rng = tree_rng(params.seed, t);
            let mut weight = vec![0u32; x.n_rows];
            // A u32 range draws the same numbers on 32- and 64-bit targets.
            for _ in 0..n_samples {
                weight[rng.random_range(0..n_rows) as usize] += 1;
            }
            Tree::grow(&binned, y, &weight, tree_params, &mut rng)
        };
        let n_threads = n_threads.clamp(1, params.n_trees);
        let per_thread = params.n_trees.div_ceil(n_threads);
        let chunks: Vec<Vec<usize>> = (0..params.n_trees)
            .collect::<Vec<_>>()
            .chunks(per_thread)
            .map(<[usize]>::to_vec)
            .collect();
        let trees = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|ts| {
                    let fit_one = &fit_one;
                    s.spawn(move || ts.into_iter().map(fit_one).collect::<Vec<_>>())
                })
                .collect();
            // Joined in order: tree t sits at position t.
            handles
                .into_iter()
                .map(|h| h.join())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| ModelError::Fit("a training thread died".into()))
        })?;
        let trees: Vec<Tree> = trees.into_iter().flatten().collect();
        Ok(Self {
            n_inputs: x.n_cols,
            trees,
        })
    }

    /// A forest from stored trees, already checked against `n_inputs`.
    pub(crate) fn from_trees(n_inputs: usize, trees: Vec<Tree>) -> Result<Self, String> {
        if trees.is_empty() {
            return Err("the forest has no trees".into());
        }
        Ok(Self { n_inputs, trees })
    }

    pub(crate) fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    pub(crate) fn trees(&self) -> &[Tree] {
        &self.trees
    }

    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Mean over the trees of the class-1 share of the training rows in each row's leaf.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>, ModelError> {
        self.predict_with_threads(x, threads(x.n_rows.div_ceil(BLOCK_ROWS)))
    }

    fn predict_with_threads(&self, x: &Matrix, n_threads: usize) -> Result<Vec<f64>, ModelError> {
        if x.n_cols != self.n_inputs {
            return Err(ModelError::Shape {
                expected: self.n_inputs,
                found: x.n_cols,
            });
        }
        let mut out = vec![0.0; x.n_rows];
        if x.n_rows == 0 {
            return Ok(out);
        }
        let blocks = x.n_rows.div_ceil(BLOCK_ROWS);
        let per_thread = blocks.div_ceil(n_threads.clamp(1, blocks)) * BLOCK_ROWS;
        std::thread::scope(|s| {
            let handles: Vec<_> = out
                .chunks_mut(per_thread)
                .enumerate()
                .map(|(k, chunk)| s.spawn(move || self.score_rows(x, k * per_thread, chunk)))
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join())
                .map_err(|_| ModelError::Predict("a scoring thread died".into()))
        })?;
        Ok(out)
    }

    /// Scores rows `first..first + out.len()` of `x` into `out`, block by block.
    fn score_rows(&self, x: &Matrix, first: usize, out: &mut [f64]) {
        let n_cols = x.n_cols;
        // One block of rows, row-major: a row's inputs share a cache line or two.
        let mut rows = vec![0.0; BLOCK_ROWS * n_cols];
        let mut nodes = vec![0; BLOCK_ROWS];
        let n_trees = self.trees.len() as f64;
        for (b, block) in out.chunks_mut(BLOCK_ROWS).enumerate() {
            let start = first + b * BLOCK_ROWS;
            let len = block.len();
            for j in 0..n_cols {
                for (i, &v) in x.column(j)[start..start + len].iter().enumerate() {
                    rows[i * n_cols + j] = v;
                }
            }
            block.fill(0.0);
            // Trees in order for every row: the sum does not depend on blocks or threads.
            for tree in &self.trees {
                tree.add_leaf_shares(&rows[..len * n_cols], n_cols, &mut nodes[..len], block);
            }
            for p in block.iter_mut() {
                *p /= n_trees;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;
    use crate::preprocess::Preprocessor;
    use crate::testing::labeled;
    use smartcore::linalg::basic::matrix::DenseMatrix;
    use smartcore::tree::decision_tree_classifier::{
        DecisionTreeClassifier, DecisionTreeClassifierParameters,
    };

    type SmartTree = DecisionTreeClassifier<f64, u8, DenseMatrix<f64>, Vec<u8>>;

    /// Two inputs; the label is 1 when x0 + x1 > 0, except every seventh row is flipped.
    fn data(n: usize) -> (Matrix, Vec<u8>) {
        continuous(n, 7)
    }

    /// [`data`] drawn with another seed: thousands of distinct values per input.
    fn continuous(n: usize, seed: u64) -> (Matrix, Vec<u8>) {
        let mut rng = ChaCha12Rng::seed_from_u64(seed);
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

    /// The pipeline's model inputs for `labeled(n, seed)`, with the pipeline fitted on them.
    fn model_inputs(n: usize, seed: u64) -> (Matrix, Vec<u8>) {
        let data = labeled(n, seed);
        let pre = Preprocessor::fit(&data.features).expect("pipeline");
        (pre.transform(&data.features).expect("inputs"), data.target)
    }

    fn row(x: &Matrix, i: usize) -> Vec<f64> {
        (0..x.n_cols).map(|j| x.column(j)[i]).collect()
    }

    #[test]
    fn probabilities_are_mean_leaf_shares_not_votes() {
        let (x, y) = data(600);
        let f = Forest::fit(&x, &y, &params()).expect("fit");
        assert_eq!(f.n_trees(), 9);
        let p = f.predict_proba(&x).expect("proba");
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        let hits = p
            .iter()
            .zip(&y)
            .filter(|(&p, &y)| (p > 0.5) == (y == 1))
            .count();
        assert!(hits > 480, "{hits}/600");
        // Votes of 9 trees would be multiples of 1/9; leaf shares are finer than that.
        let off_grid = p
            .iter()
            .filter(|&&v| (v * 9.0 - (v * 9.0).round()).abs() > 1e-6);
        assert!(off_grid.count() > 300);
        // Each probability is the mean of the trees' leaf shares, row by row.
        for i in (0..600).step_by(37) {
            let r = row(&x, i);
            let shares: Vec<f64> = f.trees.iter().map(|t| t.predict_row(&r)).collect();
            let mean = shares.iter().sum::<f64>() / 9.0;
            assert_eq!(p[i], mean, "row {i}");
            let t = &f.trees[0];
            let leaf = t.leaf(&r);
            let (c0, c1) = (f64::from(t.count0[leaf]), f64::from(t.count1[leaf]));
            assert_eq!(shares[0], c1 / (c0 + c1));
        }
    }

    #[test]
    fn each_tree_sees_max_samples_bootstrap_draws() {
        let (x, y) = data(300);
        for (max_samples, want) in [(None, 300), (Some(50), 50), (Some(700), 700)] {
            let f = Forest::fit(
                &x,
                &y,
                &ForestParams {
                    max_samples,
                    ..params()
                },
            )
            .expect("fit");
            for t in &f.trees {
                assert_eq!(t.count0[0] + t.count1[0], want);
            }
            // Draws with replacement: some rows drawn twice, so trees differ.
            assert_ne!(f.trees[0], f.trees[1]);
        }
    }

    #[test]
    fn same_seed_same_forest_whatever_the_threads_other_seed_other_forest() {
        // 1100 rows: three blocks, the last one partial.
        let (x, y) = data(1100);
        let one = Forest::fit_with_threads(&x, &y, &params(), 1).expect("fit");
        let three = Forest::fit_with_threads(&x, &y, &params(), 3).expect("fit");
        assert_eq!(one.trees, three.trees);
        let p = one.predict_with_threads(&x, 1).expect("p1");
        for n in [2, 3, 8] {
            assert_eq!(three.predict_with_threads(&x, n).expect("pn"), p);
        }
        assert_eq!(one.predict_proba(&x).expect("p"), p);
        // Block by block scoring gives what a row by row walk gives.
        for i in [0, 511, 512, 1023, 1024, 1099] {
            let r = row(&x, i);
            let sum: f64 = one.trees.iter().map(|t| t.predict_row(&r)).sum();
            assert_eq!(p[i], sum / 9.0, "row {i}");
        }
        let other = ForestParams {
            seed: 1,
            ..params()
        };
        let p3 = Forest::fit(&x, &y, &other).expect("fit").predict_proba(&x);
        assert_ne!(p, p3.expect("p3"));
    }

    #[test]
    fn feature_fraction_rounds_up_to_whole_inputs() {
        let (x, y) = data(400);
        let fit = |feature_fraction| {
            let p = ForestParams {
                feature_fraction,
                ..params()
            };
            Forest::fit(&x, &y, &p).expect("fit").trees
        };
        // Two inputs: ceil(0.3 * 2) = ceil(0.5 * 2) = 1 and ceil(0.51 * 2) = 2 per split.
        let one = fit(0.3);
        assert_eq!(fit(0.5), one);
        assert_eq!(fit(0.51), fit(1.0));
        assert_ne!(fit(1.0), one);
    }

    #[test]
    fn empty_and_wrongly_shaped_inputs() {
        let (x, y) = data(100);
        let f = Forest::fit(&x, &y, &params()).expect("fit");
        let empty = Matrix {
            n_rows: 0,
            n_cols: 2,
            values: vec![],
        };
        assert_eq!(f.predict_proba(&empty).expect("empty"), Vec::<f64>::new());
        let wide = Matrix {
            n_rows: 1,
            n_cols: 3,
            values: vec![0.0; 3],
        };
        assert!(matches!(
            f.predict_proba(&wide),
            Err(ModelError::Shape {
                expected: 2,
                found: 3
            })
        ));
    }

    #[test]
    fn bad_hyperparameters_and_inputs_are_errors() {
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
            ForestParams {
                max_samples: Some(0),
                ..params()
            },
        ] {
            assert!(
                matches!(Forest::fit(&x, &y, &p), Err(ModelError::Hyperparameter(_))),
                "{p:?}"
            );
        }
        let mut nan = x.clone();
        nan.values[60] = f64::NAN;
        let err = Forest::fit(&nan, &y, &params()).expect_err("nan");
        assert!(
            err.to_string().contains("input 1 is NaN in row 10"),
            "{err}"
        );
        let mut three = y.clone();
        three[4] = 2;
        let err = Forest::fit(&x, &three, &params()).expect_err("label");
        assert!(err.to_string().contains("label 2 in row 4"), "{err}");
        assert!(matches!(
            Forest::fit(&x, &y[1..], &params()),
            Err(ModelError::Shape { .. })
        ));
    }

    /// smartcore's tree as a reference: `max_depth` there counts levels with the root at 1,
    /// and `min_samples_leaf` counts copies of rows.
    fn smartcore_tree(x: &Matrix, y: &[u8], weight: &[u32], max_depth: u16) -> SmartTree {
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for i in 0..x.n_rows {
            for _ in 0..weight[i] {
                values.extend((0..x.n_cols).map(|j| x.column(j)[i]));
                labels.push(y[i]);
            }
        }
        let dense = DenseMatrix::new(labels.len(), x.n_cols, values, false).expect("matrix");
        let params = DecisionTreeClassifierParameters {
            max_depth: Some(max_depth + 1),
            min_samples_leaf: 1,
            seed: Some(0),
            ..Default::default()
        };
        SmartTree::fit(&dense, &labels, params).expect("smartcore fit")
    }

    fn smartcore_votes(tree: &SmartTree, x: &Matrix) -> Vec<f64> {
        let mut values = Vec::new();
        for i in 0..x.n_rows {
            values.extend(row(x, i));
        }
        let dense = DenseMatrix::new(x.n_rows, x.n_cols, values, false).expect("matrix");
        let votes = tree.predict(&dense).expect("smartcore predict");
        votes.into_iter().map(f64::from).collect()
    }

    /// One tree, every row once, every input examined: on continuous inputs smartcore's
    /// exact splitter and our 256-bin histograms should give about the same tree. (Not on
    /// the pipeline's tied integer inputs: smartcore only tries a cut where the label changes
    /// between neighbouring sorted rows, which misses good cuts between tied values.)
    #[test]
    fn one_tree_without_bootstrap_ranks_like_smartcores_tree() {
        let (x, y) = continuous(4000, 21);
        let (val, val_y) = continuous(3000, 22);
        let weight = vec![1; x.n_rows];
        let p = TreeParams {
            max_depth: Some(6),
            min_samples_leaf: 1,
            max_features: x.n_cols,
        };
        let ours = Tree::grow(&Binned::new(&x), &y, &weight, p, &mut tree_rng(0, 0));
        let ours: Vec<f64> = (0..val.n_rows)
            .map(|i| ours.predict_row(&row(&val, i)))
            .collect();
        let reference = smartcore_votes(&smartcore_tree(&x, &y, &weight, 6), &val);
        // smartcore's leaves give 0 or 1: compare like with like.
        let hard: Vec<f64> = ours.iter().map(|&p| f64::from(u8::from(p > 0.5))).collect();
        let agree = hard.iter().zip(&reference).filter(|(a, b)| a == b).count();
        assert!(
            agree * 100 >= 95 * val.n_rows,
            "{agree} of {} agree",
            val.n_rows
        );
        let (a, b) = (
            roc_auc(&val_y, &hard).expect("auc"),
            roc_auc(&val_y, &reference).expect("auc"),
        );
        assert!((a - b).abs() < 0.02, "ours {a}, smartcore {b}");
    }

    #[test]
    fn forest_ranks_like_a_forest_of_smartcore_trees_on_the_same_bootstraps() {
        let (x, y) = model_inputs(3000, 23);
        let (val, val_y) = model_inputs(2000, 24);
        let binned = Binned::new(&x);
        let p = TreeParams {
            max_depth: Some(6),
            min_samples_leaf: 1,
            max_features: x.n_cols,
        };
        let n_trees = 25;
        let mut ours = vec![0.0; val.n_rows];
        let mut votes = vec![0.0; val.n_rows];
        for t in 0..n_trees {
            let mut rng = tree_rng(5, t);
            let mut weight = vec![0u32; x.n_rows];
            for _ in 0..x.n_rows {
                weight[rng.random_range(0..x.n_rows)] += 1;
            }
            let tree = Tree::grow(&binned, &y, &weight, p, &mut rng);
            for (i, o) in ours.iter_mut().enumerate() {
                *o += tree.predict_row(&row(&val, i)) / n_trees as f64;
            }
            let reference = smartcore_votes(&smartcore_tree(&x, &y, &weight, 6), &val);
            for (v, r) in votes.iter_mut().zip(reference) {
                *v += r / n_trees as f64;
            }
        }
        let (a, b) = (
            roc_auc(&val_y, &ours).expect("auc"),
            roc_auc(&val_y, &votes).expect("auc"),
        );
        assert!(a > 0.8, "{a}");
        assert!((a - b).abs() < 0.02, "ours {a}, smartcore {b}");
    }
}
