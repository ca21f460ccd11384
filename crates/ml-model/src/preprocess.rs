//! The feature pipeline: learned on the training split only, stored in the model file, and
//! applied unchanged by validation and prediction.
//!
//! Numeric columns: missing cells take the training median, then the column is standardised
//! with the training mean and standard deviation (of the imputed column, as scikit-learn's
//! `SimpleImputer` + `StandardScaler` do). Categorical columns: missing cells take the
//! training mode, then one indicator column per category seen in training; a category that
//! training never saw sets no indicator (all zeros) instead of failing.

use ml_data::schema::{self, Kind};
use ml_data::Frame;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// More distinct codes than this in one categorical column means the data is not what the
/// schema says; one-hot encoding it would silently blow up the model.
const MAX_CATEGORIES: usize = 256;

/// How one input column becomes one or more model inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnTransform {
    Numeric {
        median: f64,
        mean: f64,
        /// Standard deviation, or 1 when the column is constant (nothing to scale).
        scale: f64,
    },
    Categorical {
        mode: f64,
        /// Categories seen in training, ascending; one output column each.
        categories: Vec<f64>,
    },
}

impl ColumnTransform {
    fn width(&self) -> usize {
        match self {
            Self::Numeric { .. } => 1,
            Self::Categorical { categories, .. } => categories.len(),
        }
    }
}

/// A fitted feature pipeline over the input columns `names` (schema order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    names: Vec<String>,
    transforms: Vec<ColumnTransform>,
}

/// A dense matrix of model inputs, column-major: column `j` is
/// `values[j * n_rows..(j + 1) * n_rows]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub n_rows: usize,
    pub n_cols: usize,
    pub values: Vec<f64>,
}

impl Matrix {
    pub fn column(&self, j: usize) -> &[f64] {
        &self.values[j * self.n_rows..(j + 1) * self.n_rows]
    }
}

impl Preprocessor {
    /// Learns imputation values, scaling and categories from the training features.
    pub fn fit(frame: &Frame) -> Result<Self, ModelError> {
        let mut transforms = Vec::with_capacity(frame.n_cols());
        for (name, values) in frame.names.iter().zip(&frame.columns) {
            let column = schema::column(name)
                .ok_or_else(|| ModelError::UnknownFeature { name: name.clone() })?;
            let transform = match column.kind {
                Kind::Numeric => fit_numeric(name, values)?,
                Kind::Categorical => fit_categorical(name, values)?,
            };
            transforms.push(transform);
        }
        Ok(Self {
            names: frame.names.clone(),
            transforms,
        })
    }

    /// The input column names this pipeline expects, in order.
    pub fn input_names(&self) -> &[String] {
        &self.names
    }

    pub fn transforms(&self) -> &[ColumnTransform] {
        &self.transforms
    }

    /// Number of model inputs produced per row.
    pub fn n_outputs(&self) -> usize {
        self.transforms.iter().map(ColumnTransform::width).sum()
    }

    /// Names of the model inputs: `age`, ..., `cp=2`, ...
    pub fn output_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.n_outputs());
        for (name, t) in self.names.iter().zip(&self.transforms) {
            match t {
                ColumnTransform::Numeric { .. } => out.push(name.clone()),
                ColumnTransform::Categorical { categories, .. } => {
                    out.extend(categories.iter().map(|c| format!("{name}={c}")));
                }
            }
        }
        out
    }

    /// Applies the fitted pipeline. The frame must have exactly the training columns.
    pub fn transform(&self, frame: &Frame) -> Result<Matrix, ModelError> {
        if frame.names != self.names {
            return Err(ModelError::ColumnsDiffer {
                expected: self.names.join(","),
                found: frame.names.join(","),
            });
        }
        let n_rows = frame.n_rows();
        let n_cols = self.n_outputs();
        let mut values = vec![0.0; n_rows * n_cols];
        let mut out = values.chunks_mut(n_rows.max(1));
        for (t, input) in self.transforms.iter().zip(&frame.columns) {
            match t {
                ColumnTransform::Numeric {
                    median,
                    mean,
                    scale,
                } => {
                    if let Some(dst) = out.next() {
                        for (d, &x) in dst.iter_mut().zip(input) {
                            let x = if x.is_nan() { *median } else { x };
                            *d = (x - mean) / scale;
                        }
                    }
                }
                ColumnTransform::Categorical { mode, categories } => {
                    let dsts: Vec<&mut [f64]> = out.by_ref().take(categories.len()).collect();
                    for (dst, &category) in dsts.into_iter().zip(categories) {
                        for (d, &x) in dst.iter_mut().zip(input) {
                            let x = if x.is_nan() { *mode } else { x };
                            *d = f64::from(u8::from(x == category));
                        }
                    }
                }
            }
        }
        if n_rows == 0 {
            values.clear();
        }
        Ok(Matrix {
            n_rows,
            n_cols,
            values,
        })
    }
}

fn present(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| !v.is_nan()).collect()
}

fn fit_numeric(name: &str, values: &[f64]) -> Result<ColumnTransform, ModelError> {
    let mut seen = present(values);
    if seen.is_empty() {
        return Err(ModelError::NoValues { name: name.into() });
    }
    let median = median(&mut seen);
    let n = values.len() as f64;
    let imputed = || values.iter().map(|&v| if v.is_nan() { median } else { v });
    let mean = imputed().sum::<f64>() / n;
    let var = imputed().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let std = var.sqrt();
    let scale = if std > f64::EPSILON * mean.abs().max(1.0) {
        std
    } else {
        1.0
    };
    Ok(ColumnTransform::Numeric {
        median,
        mean,
        scale,
    })
}

/// The median (mean of the two middle values for an even count); `values` is non-empty.
fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    let mid = n / 2;
    let (lower, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + upper) / 2.0
    }
}

fn fit_categorical(name: &str, values: &[f64]) -> Result<ColumnTransform, ModelError> {
    // Codes are few, so a linear scan over the distinct values beats hashing or sorting.
    let mut counts: Vec<(f64, usize)> = Vec::new();
    for &v in values.iter().filter(|v| !v.is_nan()) {
        if let Some((_, n)) = counts.iter_mut().find(|(c, _)| *c == v) {
            *n += 1;
        } else if counts.len() >= MAX_CATEGORIES {
            return Err(ModelError::TooManyCategories {
                name: name.into(),
                limit: MAX_CATEGORIES,
            });
        } else {
            counts.push((v, 1));
        }
    }
    if counts.is_empty() {
        return Err(ModelError::NoValues { name: name.into() });
    }
    counts.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Most frequent; on a tie the smallest code, as scikit-learn's `most_frequent` does.
    let mut mode = counts[0];
    for &c in &counts[1..] {
        if c.1 > mode.1 {
            mode = c;
        }
    }
    Ok(ColumnTransform::Categorical {
        mode: mode.0,
        categories: counts.into_iter().map(|(c, _)| c).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAN: f64 = f64::NAN;

    fn frame(age: Vec<f64>, cp: Vec<f64>) -> Frame {
        Frame {
            names: vec!["age".into(), "cp".into()],
            columns: vec![age, cp],
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [7.0]), 7.0);
    }

    #[test]
    fn fits_median_scale_mode_and_categories_by_hand() {
        // age: median of {40, 50, 60, 70} = 55; imputed column 40, 50, 55, 60, 70:
        // mean 55, population variance (225 + 25 + 0 + 25 + 225) / 5 = 100, std 10.
        // cp: counts 0:1, 2:2, 3:2 -> mode is the smallest of the tied codes, 2.
        let f = frame(
            vec![40.0, 50.0, NAN, 60.0, 70.0],
            vec![2.0, 3.0, 2.0, 0.0, 3.0],
        );
        let p = Preprocessor::fit(&f).expect("fit");
        assert_eq!(
            p.transforms()[0],
            ColumnTransform::Numeric {
                median: 55.0,
                mean: 55.0,
                scale: 10.0
            }
        );
        assert_eq!(
            p.transforms()[1],
            ColumnTransform::Categorical {
                mode: 2.0,
                categories: vec![0.0, 2.0, 3.0]
            }
        );
        assert_eq!(p.output_names(), ["age", "cp=0", "cp=2", "cp=3"]);
    }

    #[test]
    fn transform_imputes_scales_and_zeroes_unseen_categories() {
        let train = frame(vec![40.0, 50.0, 60.0, 70.0], vec![0.0, 1.0, 1.0, 2.0]);
        let p = Preprocessor::fit(&train).expect("fit");
        // cp 3 was never seen in training: all indicators zero, no error.
        let m = p
            .transform(&frame(vec![NAN, 70.0], vec![NAN, 3.0]))
            .expect("transform");
        assert_eq!((m.n_rows, m.n_cols), (2, 4));
        let std = 125.0_f64.sqrt();
        assert_eq!(m.column(0), [0.0, 15.0 / std]);
        assert_eq!(m.column(1), [0.0, 0.0]);
        assert_eq!(m.column(2), [1.0, 0.0]); // missing -> mode 1
        assert_eq!(m.column(3), [0.0, 0.0]);
    }

    #[test]
    fn constant_column_is_not_divided_by_zero() {
        let p = Preprocessor::fit(&frame(vec![5.0; 3], vec![1.0; 3])).expect("fit");
        let m = p
            .transform(&frame(vec![5.0, 6.0], vec![1.0, 1.0]))
            .expect("t");
        assert_eq!(m.column(0), [0.0, 1.0]);
    }

    #[test]
    fn empty_column_and_wrong_columns_are_errors() {
        let err = Preprocessor::fit(&frame(vec![NAN, NAN], vec![1.0, 0.0])).expect_err("empty");
        assert!(err.to_string().contains("`age`"), "{err}");
        let p = Preprocessor::fit(&frame(vec![1.0, 2.0], vec![1.0, 0.0])).expect("fit");
        let other = Frame {
            names: vec!["cp".into(), "age".into()],
            columns: vec![vec![1.0], vec![2.0]],
        };
        assert!(matches!(
            p.transform(&other),
            Err(ModelError::ColumnsDiffer { .. })
        ));
    }
}
