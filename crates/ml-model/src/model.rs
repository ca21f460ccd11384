//! A trained model: the fitted feature pipeline plus one classifier.

use std::fmt;

use ml_data::{Frame, Labeled};
use serde::{Deserialize, Serialize};

use crate::forest::{Forest, ForestParams};
use crate::linear::{LinearModel, LogisticParams};
use crate::preprocess::Preprocessor;
use crate::ModelError;

/// The kinds of classifier a model can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    LogisticRegression,
    RandomForest,
}

impl ModelKind {
    pub const ALL: [ModelKind; 2] = [Self::LogisticRegression, Self::RandomForest];

    /// The name used on the command line, in `params.json` and inside the model file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LogisticRegression => "logistic-regression",
            Self::RandomForest => "random-forest",
        }
    }

    /// What the model's probability of class 1 is, in words, for `params.json`.
    pub fn probabilities(self) -> &'static str {
        match self {
            Self::LogisticRegression => "logistic function of the fitted linear score",
            Self::RandomForest => {
                "mean over the trees of the class-1 frequency of the training rows in the leaf \
                 a row falls into (as scikit-learn's predict_proba), not the share of votes"
            }
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to train, with its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Hyperparameters {
    LogisticRegression(LogisticParams),
    RandomForest(ForestParams),
}

impl Hyperparameters {
    pub fn kind(&self) -> ModelKind {
        match self {
            Self::LogisticRegression(_) => ModelKind::LogisticRegression,
            Self::RandomForest(_) => ModelKind::RandomForest,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Classifier {
    Linear(LinearModel),
    Forest(Forest),
}

impl Classifier {
    pub(crate) fn kind(&self) -> ModelKind {
        match self {
            Self::Linear(_) => ModelKind::LogisticRegression,
            Self::Forest(_) => ModelKind::RandomForest,
        }
    }
}

/// A fitted feature pipeline and classifier; see [`crate::file`] for how it is stored.
#[derive(Debug)]
pub struct Model {
    pub(crate) preprocessor: Preprocessor,
    pub(crate) classifier: Classifier,
}

impl Model {
    /// Learns the feature pipeline and the classifier from the training split.
    pub fn fit(train: &Labeled, hyperparameters: &Hyperparameters) -> Result<Self, ModelError> {
        let n = train.target.len();
        if n == 0 {
            return Err(ModelError::NoRows);
        }
        if train.features.n_rows() != n {
            return Err(ModelError::Shape {
                expected: n,
                found: train.features.n_rows(),
            });
        }
        if let Some(&class) = train.target.first() {
            if train.target.iter().all(|&y| y == class) {
                return Err(ModelError::SingleClass { class, rows: n });
            }
        }
        let preprocessor = Preprocessor::fit(&train.features)?;
        let x = preprocessor.transform(&train.features)?;
        let classifier = match hyperparameters {
            Hyperparameters::LogisticRegression(p) => {
                Classifier::Linear(LinearModel::fit(&x, &train.target, p)?)
            }
            Hyperparameters::RandomForest(p) => {
                Classifier::Forest(Forest::fit(&x, &train.target, p)?)
            }
        };
        Ok(Self {
            preprocessor,
            classifier,
        })
    }

    pub fn kind(&self) -> ModelKind {
        self.classifier.kind()
    }

    pub fn preprocessor(&self) -> &Preprocessor {
        &self.preprocessor
    }

    /// The fitted logistic regression, if this is one (for reports).
    pub fn linear(&self) -> Option<&LinearModel> {
        match &self.classifier {
            Classifier::Linear(m) => Some(m),
            Classifier::Forest(_) => None,
        }
    }

    /// Probability of class 1 for each row of `features`, which must have the training columns.
    pub fn predict_proba(&self, features: &Frame) -> Result<Vec<f64>, ModelError> {
        let x = self.preprocessor.transform(features)?;
        match &self.classifier {
            Classifier::Linear(m) => m.predict_proba(&x),
            Classifier::Forest(f) => f.predict_proba(&x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::labeled;

    #[test]
    fn one_class_and_empty_training_sets_are_errors() {
        let mut data = labeled(20, 1);
        data.target = vec![1; 20];
        let err = Model::fit(
            &data,
            &Hyperparameters::LogisticRegression(Default::default()),
        )
        .expect_err("one class");
        assert!(err.to_string().contains("only class 1"), "{err}");
        let empty = Labeled::default();
        assert!(matches!(
            Model::fit(
                &empty,
                &Hyperparameters::LogisticRegression(Default::default())
            ),
            Err(ModelError::NoRows)
        ));
    }

    #[test]
    fn both_kinds_learn_the_signal() {
        let train = labeled(2000, 2);
        let val = labeled(1000, 3);
        for hp in [
            Hyperparameters::LogisticRegression(LogisticParams::default()),
            Hyperparameters::RandomForest(ForestParams {
                n_trees: 20,
                ..Default::default()
            }),
        ] {
            let model = Model::fit(&train, &hp).expect("fit");
            assert_eq!(model.kind(), hp.kind());
            let p = model.predict_proba(&val.features).expect("proba");
            let auc = crate::metrics::roc_auc(&val.target, &p).expect("auc");
            assert!(auc > 0.8, "{}: auc {auc}", hp.kind());
        }
    }

    #[test]
    fn kind_names_round_trip() {
        for k in ModelKind::ALL {
            assert_eq!(ModelKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(ModelKind::from_name("svm"), None);
    }
}
