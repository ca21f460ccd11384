//! The model side of the pipeline: a feature pipeline learned on the training split,
//! logistic regression and a random forest with honest probabilities (both written here;
//! smartcore remains the reference they are tested against), evaluation metrics, and the
//! versioned model file shared by train, validate and predict.

pub mod evaluate;
pub mod file;
pub mod forest;
pub mod linear;
pub mod metrics;
pub mod model;
pub mod preprocess;
pub mod profile;
pub mod testing;
mod tree;

use std::path::PathBuf;

pub use evaluate::{score, AucDifference, BootstrapConfig, Scored};
pub use file::{FORMAT_VERSION, MODEL_FILE, SUPPORTED_FORMAT_VERSIONS};
pub use forest::ForestParams;
pub use linear::LogisticParams;
pub use metrics::Metrics;
pub use model::{Hyperparameters, Model, ModelKind};
pub use profile::{FeatureDrift, ProfileError, ReferenceProfile, PROFILE_FILE};

/// Everything that can go wrong while fitting, scoring, saving or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("no rows to train or evaluate on")]
    NoRows,
    #[error(
        "the training set holds only class {class} ({rows} rows): a classifier needs both 0 and 1"
    )]
    SingleClass { class: u8, rows: usize },
    #[error("column `{name}` is not a feature of the schema")]
    UnknownFeature { name: String },
    #[error("column `{name}` has no values in the training data")]
    NoValues { name: String },
    #[error("column `{name}` has more than {limit} distinct categories")]
    TooManyCategories { name: String, limit: usize },
    #[error("columns differ from the model's: expected {expected}, found {found}")]
    ColumnsDiffer { expected: String, found: String },
    #[error("shape mismatch: expected {expected}, found {found}")]
    Shape { expected: usize, found: usize },
    #[error("invalid hyperparameter: {0}")]
    Hyperparameter(String),
    #[error("training failed: {0}")]
    Fit(String),
    #[error("scoring failed: {0}")]
    Predict(String),
    #[error("cannot encode the model: {0}")]
    Encode(String),
    #[error("{}: no such model directory", path.display())]
    MissingDir { path: PathBuf },
    #[error("{}: no such model file", path.display())]
    Missing { path: PathBuf },
    #[error("{}: cannot read the model file", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a model file (wrong magic bytes)", path.display())]
    NotAModel { path: PathBuf },
    #[error("{}: model file is truncated ({found} bytes, expected {expected})", path.display())]
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error("{}: model file format version {found} is not supported by this build (supported: {}); retrain the model or use a matching release", path.display(), versions(supported))]
    FormatVersion {
        path: PathBuf,
        found: u32,
        supported: &'static [u32],
    },
    #[error("{}: model file is corrupt: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("{}: unknown model kind `{kind}` (known: logistic-regression, random-forest)", path.display())]
    UnknownKind { path: PathBuf, kind: String },
    #[error("{}: model was trained on another feature schema ({detail})", path.display())]
    SchemaMismatch { path: PathBuf, detail: String },
    #[error(transparent)]
    Data(#[from] ml_data::DataError),
}

fn versions(list: &[u32]) -> String {
    let names: Vec<String> = list.iter().map(u32::to_string).collect();
    names.join(", ")
}
