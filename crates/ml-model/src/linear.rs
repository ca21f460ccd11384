//! Logistic regression. smartcore fits the model; its public coefficients and intercept are
//! kept, and probabilities are the sigmoid of the linear score (smartcore 0.7 has no
//! `predict_proba` for this model).

use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
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
    /// Fits on model inputs `x` and 0/1 labels `y` (both classes present).
    pub fn fit(x: &Matrix, y: &[u8], params: &LogisticParams) -> Result<Self, ModelError> {
        if !(params.alpha.is_finite() && params.alpha >= 0.0) {
            return Err(ModelError::Hyperparameter(format!(
                "alpha must be a finite number >= 0, got {}",
                params.alpha
            )));
        }
        // smartcore's objective walks the matrix row by row, so give it rows contiguously.
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
        // With labels {0, 1}, smartcore sorts the classes, so the score is for class 1.
        if fitted.classes().as_slice() != [0, 1] {
            return Err(ModelError::Fit(format!(
                "expected classes [0, 1], the solver saw {:?}",
                fitted.classes()
            )));
        }
        let weights: Vec<f64> = fitted.coefficients().iterator(0).copied().collect();
        let intercept = fitted
            .intercept()
            .iterator(0)
            .next()
            .copied()
            .ok_or_else(|| ModelError::Fit("solver returned no intercept".into()))?;
        if weights.len() != x.n_cols || !weights.iter().chain([&intercept]).all(|w| w.is_finite()) {
            return Err(ModelError::Fit(
                "solver returned non-finite or misshapen coefficients".into(),
            ));
        }
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
        let bad = LinearModel::fit(&m, &y, &LogisticParams { alpha: f64::NAN });
        assert!(matches!(bad, Err(ModelError::Hyperparameter(_))));
    }
}
