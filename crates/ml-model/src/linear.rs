//! Logistic regression: probabilities are the sigmoid of a linear score.
//!
//! The objective is smartcore's (and scikit-learn's with `C = 1 / alpha`):
//! `sum_i log-loss_i + alpha / 2 * |w|^2`, intercept unpenalised. smartcore's L-BFGS solver
//! took 21 s on 100,000 rows of our data, so the fit uses Newton's method on the same
//! objective (about 30 parameters: the Hessian is tiny, each iteration is one pass over the
//! columns, and it converges in ~10 iterations); a test checks that both solvers agree.

use serde::{Deserialize, Serialize};
#[cfg(test)]
use smartcore::linalg::basic::arrays::Array;
#[cfg(test)]
use smartcore::linalg::basic::matrix::DenseMatrix;
#[cfg(test)]
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

use crate::preprocess::Matrix;
use crate::ModelError;

/// Hyperparameters of logistic regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogisticParams {
    /// L2 penalty: the fit minimises `sum(log loss) + alpha / 2 * |w|^2`, the objective
    /// scikit-learn minimises with `C = 1 / alpha`.
    pub alpha: f64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        // scikit-learn's default C = 1.0.
        Self { alpha: 1.0 }
    }
}

/// A fitted logistic regression: `P(y = 1 | x) = sigmoid(intercept + weights . x)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub weights: Vec<f64>,
    pub intercept: f64,
}

impl LinearModel {
    /// Fits on model inputs `x` and 0/1 labels `y` (both classes present) with Newton's
    /// method; see [`newton`].
    pub fn fit(x: &Matrix, y: &[u8], params: &LogisticParams) -> Result<Self, ModelError> {
        if !(params.alpha.is_finite() && params.alpha >= 0.0) {
            return Err(ModelError::Hyperparameter(format!(
                "alpha must be a finite number >= 0, got {}",
                params.alpha
            )));
        }
        if x.n_rows != y.len() || x.n_rows == 0 {
            return Err(ModelError::Shape {
                expected: y.len(),
                found: x.n_rows,
            });
        }
        let (weights, intercept) = newton(x, y, params.alpha)?;
        if !weights.iter().chain([&intercept]).all(|w| w.is_finite()) {
            return Err(ModelError::Fit(
                "solver returned non-finite coefficients".into(),
            ));
        }
        Ok(Self { weights, intercept })
    }

    /// The same model fitted by smartcore's L-BFGS solver. Kept as the reference the Newton
    /// solver is tested against: smartcore needed 21 s for 100,000 rows of our data (about
    /// 1,000x slower per row than Newton here), far from the 10 s budget for 1,000,000 rows.
    /// Test builds only: no stage binary links smartcore.
    #[cfg(test)]
    pub fn fit_smartcore(
        x: &Matrix,
        y: &[u8],
        params: &LogisticParams,
    ) -> Result<Self, ModelError> {
        let mut row_major = vec![0.0; x.values.len()];
        for j in 0..x.n_cols {
            for (i, &v) in x.column(j).iter().enumerate() {
                row_major[i * x.n_cols + j] = v;
            }
        }
        let dense = DenseMatrix::new(x.n_rows, x.n_cols, row_major, false)
            .map_err(|e| ModelError::Fit(e.to_string()))?;
        let labels: Vec<u8> = y.to_vec();
        let fitted = LogisticRegression::fit(
            &dense,
            &labels,
            LogisticRegressionParameters::default().with_alpha(params.alpha),
        )
        .map_err(|e| ModelError::Fit(e.to_string()))?;
        let weights: Vec<f64> = fitted.coefficients().iterator(0).copied().collect();
        let intercept = fitted
            .intercept()
            .iterator(0)
            .next()
            .copied()
            .ok_or_else(|| ModelError::Fit("solver returned no intercept".into()))?;
        Ok(Self { weights, intercept })
    }

    /// Probability of class 1 for every row of `x`.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>, ModelError> {
        if x.n_cols != self.weights.len() {
            return Err(ModelError::Shape {
                expected: self.weights.len(),
                found: x.n_cols,
            });
        }
        let mut z = vec![self.intercept; x.n_rows];
        // Column by column: contiguous reads, and the compiler vectorises the inner loop.
        for (j, &w) in self.weights.iter().enumerate() {
            for (zi, &xi) in z.iter_mut().zip(x.column(j)) {
                *zi += w * xi;
            }
        }
        for zi in &mut z {
            *zi = sigmoid(*zi);
        }
        Ok(z)
    }
}

/// `sum log(1 + e^z) - y z` over rows plus the penalty, for weights `w` and intercept `b`.
fn objective(x: &Matrix, y: &[u8], w: &[f64], b: f64, alpha: f64, z: &mut [f64]) -> f64 {
    scores(x, w, b, z);
    let loss: f64 = z
        .iter()
        .zip(y)
        .map(|(&z, &y)| softplus(z) - f64::from(y) * z)
        .sum();
    loss + 0.5 * alpha * w.iter().map(|v| v * v).sum::<f64>()
}

fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn scores(x: &Matrix, w: &[f64], b: f64, z: &mut [f64]) {
    z.fill(b);
    for (j, &wj) in w.iter().enumerate() {
        for (zi, &xi) in z.iter_mut().zip(x.column(j)) {
            *zi += wj * xi;
        }
    }
}

/// Newton's method with backtracking line search. Returns `(weights, intercept)`.
fn newton(x: &Matrix, y: &[u8], alpha: f64) -> Result<(Vec<f64>, f64), ModelError> {
    let (n, p) = (x.n_rows, x.n_cols);
    let d = p + 1; // last parameter: intercept
    let mut theta = vec![0.0; d];
    let mut z = vec![0.0; n];
    let mut trial = vec![0.0; n];
    let mut f = objective(x, y, &theta[..p], theta[p], alpha, &mut z);
    let mut r = vec![0.0; n];
    let mut h = vec![0.0; n];
    for _ in 0..100 {
        // z holds the scores of theta.
        for i in 0..n {
            let pi = sigmoid(z[i]);
            r[i] = pi - f64::from(y[i]);
            h[i] = pi * (1.0 - pi);
        }
        let mut grad = vec![0.0; d];
        let mut hess = vec![0.0; d * d];
        for j in 0..p {
            let cj = x.column(j);
            grad[j] = dot(&r, cj) + alpha * theta[j];
            let hc: Vec<f64> = h.iter().zip(cj).map(|(a, b)| a * b).collect();
            for k in j..p {
                let v = dot(&hc, x.column(k));
                hess[j * d + k] = v;
                hess[k * d + j] = v;
            }
            let v: f64 = hc.iter().sum();
            hess[j * d + p] = v;
            hess[p * d + j] = v;
            hess[j * d + j] += alpha;
        }
        grad[p] = r.iter().sum();
        hess[p * d + p] = h.iter().sum();
        let gmax = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        if gmax <= 1e-9 * (n as f64).max(1.0) {
            break;
        }
        let step = solve_spd(&mut hess, &grad, d)?;
        let mut t = 1.0;
        let mut improved = false;
        for _ in 0..40 {
            let cand: Vec<f64> = theta.iter().zip(&step).map(|(a, s)| a - t * s).collect();
            let fc = objective(x, y, &cand[..p], cand[p], alpha, &mut trial);
            if fc <= f {
                let done = f - fc <= 1e-14 * f.abs().max(1.0);
                theta = cand;
                f = fc;
                std::mem::swap(&mut z, &mut trial);
                improved = !done;
                break;
            }
            t *= 0.5;
        }
        if !improved {
            break;
        }
    }
    let intercept = theta[p];
    theta.truncate(p);
    Ok((theta, intercept))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four accumulators let the compiler vectorise without reassociating one long sum.
    let mut acc = [0.0; 4];
    let chunks = a.len() / 4 * 4;
    for (ca, cb) in a[..chunks].chunks_exact(4).zip(b[..chunks].chunks_exact(4)) {
        for k in 0..4 {
            acc[k] += ca[k] * cb[k];
        }
    }
    let tail: f64 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Solves `H s = g` for a symmetric positive semi-definite `H` (row-major, `d x d`) by
/// Cholesky; one-hot columns plus an intercept make `H` singular without a penalty, so a
/// growing ridge is added until the factorisation succeeds.
fn solve_spd(hess: &mut [f64], grad: &[f64], d: usize) -> Result<Vec<f64>, ModelError> {
    let scale = (0..d)
        .map(|i| hess[i * d + i])
        .fold(0.0f64, f64::max)
        .max(1e-300);
    let mut jitter = 0.0;
    for _ in 0..20 {
        let mut l = vec![0.0; d * d];
        let mut ok = true;
        'rows: for i in 0..d {
            for j in 0..=i {
                let mut s = hess[i * d + j] + if i == j { jitter } else { 0.0 };
                for k in 0..j {
                    s -= l[i * d + k] * l[j * d + k];
                }
                if i == j {
                    if s <= 1e-12 * scale {
                        ok = false;
                        break 'rows;
                    }
                    l[i * d + i] = s.sqrt();
                } else {
                    l[i * d + j] = s / l[j * d + j];
                }
            }
        }
        if ok {
            let mut v = grad.to_vec();
            for i in 0..d {
                let s: f64 = (0..i).map(|k| l[i * d + k] * v[k]).sum();
                v[i] = (v[i] - s) / l[i * d + i];
            }
            for i in (0..d).rev() {
                let s: f64 = (i + 1..d).map(|k| l[k * d + i] * v[k]).sum();
                v[i] = (v[i] - s) / l[i * d + i];
            }
            return Ok(v);
        }
        jitter = if jitter == 0.0 {
            1e-10 * scale
        } else {
            jitter * 10.0
        };
    }
    Err(ModelError::Fit(
        "Newton system could not be factorised".into(),
    ))
}

/// The logistic function, written so that neither tail overflows.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(cols: &[&[f64]]) -> Matrix {
        Matrix {
            n_rows: cols[0].len(),
            n_cols: cols.len(),
            values: cols.concat(),
        }
    }

    #[test]
    fn newton_matches_smartcore_on_one_hot_inputs() {
        let data = crate::testing::labeled(1500, 4);
        let pre = crate::preprocess::Preprocessor::fit(&data.features).expect("pre");
        let x = pre.transform(&data.features).expect("x");
        let params = LogisticParams { alpha: 1.0 };
        let ours = LinearModel::fit(&x, &data.target, &params).expect("newton");
        let reference = LinearModel::fit_smartcore(&x, &data.target, &params).expect("lbfgs");
        let mut z = vec![0.0; x.n_rows];
        let f_ours = objective(&x, &data.target, &ours.weights, ours.intercept, 1.0, &mut z);
        let f_ref = objective(
            &x,
            &data.target,
            &reference.weights,
            reference.intercept,
            1.0,
            &mut z,
        );
        assert!(f_ours <= f_ref + 1e-6 * f_ref, "{f_ours} vs {f_ref}");
        let p_ours = ours.predict_proba(&x).expect("p");
        let p_ref = reference.predict_proba(&x).expect("p");
        let worst = p_ours
            .iter()
            .zip(&p_ref)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "{worst}");
    }

    #[test]
    fn sigmoid_values_and_tails() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(2.0) - 0.880_797_077_977_882_3).abs() < 1e-15);
        assert!((sigmoid(-2.0) + sigmoid(2.0) - 1.0).abs() < 1e-15);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn probabilities_come_from_weights_and_intercept() {
        let m = LinearModel {
            weights: vec![1.0, -2.0],
            intercept: 0.5,
        };
        let x = matrix(&[&[0.0, 1.0], &[0.0, 1.0]]);
        let p = m.predict_proba(&x).expect("proba");
        assert_eq!(p[0], sigmoid(0.5));
        assert_eq!(p[1], sigmoid(-0.5));
        assert!(matches!(
            m.predict_proba(&matrix(&[&[1.0]])),
            Err(ModelError::Shape { .. })
        ));
    }

    #[test]
    fn fit_separates_a_noisy_line_and_regularisation_shrinks() {
        // y = 1 mostly when x > 0, with two flipped labels so the optimum is finite.
        let x: Vec<f64> = (0..40).map(|i| f64::from(i) / 10.0 - 2.0).collect();
        let mut y: Vec<u8> = x.iter().map(|&v| u8::from(v > 0.0)).collect();
        y[5] = 1;
        y[35] = 0;
        let m = matrix(&[&x]);
        let weak = LinearModel::fit(&m, &y, &LogisticParams { alpha: 0.0 }).expect("fit");
        let strong = LinearModel::fit(&m, &y, &LogisticParams { alpha: 50.0 }).expect("fit");
        assert!(weak.weights[0] > 0.5, "{weak:?}");
        assert!(strong.weights[0] > 0.0 && strong.weights[0] < weak.weights[0]);
        let p = weak.predict_proba(&m).expect("proba");
        assert!(p[0] < 0.2 && p[39] > 0.8, "{p:?}");
        // The Newton solver reaches smartcore's optimum of the same objective.
        let reference =
            LinearModel::fit_smartcore(&m, &y, &LogisticParams { alpha: 0.0 }).expect("smartcore");
        assert!(
            (reference.weights[0] - weak.weights[0]).abs() < 1e-3 * weak.weights[0].abs(),
            "{reference:?} vs {weak:?}"
        );
        assert!((reference.intercept - weak.intercept).abs() < 1e-3 * weak.weights[0].abs());
        let bad = LinearModel::fit(&m, &y, &LogisticParams { alpha: f64::NAN });
        assert!(matches!(bad, Err(ModelError::Hyperparameter(_))));
    }
}
