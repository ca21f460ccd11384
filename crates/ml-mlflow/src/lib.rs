//! A small, typed, blocking client for the parts of MLflow 3's REST API the pipeline uses:
//! experiments, runs (params, metrics, tags, status), artifacts through the tracking
//! server's artifact proxy, and the model registry (registered models, versions, tags,
//! aliases). This is the only crate of the workspace that talks to the network.
//!
//! Everything is configured the way MLflow's own client is: `MLFLOW_TRACKING_URI`, optional
//! `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` for basic auth. Calls retry
//! connection failures and 5xx/429 answers with exponential backoff inside a time budget,
//! then fail with an error naming the endpoint, the HTTP status and MLflow's `error_code`
//! ([`Error::is_transient`] tells a caller whether trying again later may help). A retried
//! create never makes a second object: runs and model versions carry a
//! [`CLIENT_REQUEST_ID_TAG`] unique to the call, and when an attempt's answer is lost the
//! client looks for the object by that tag before it sends the create again.
//!
//! ```no_run
//! # fn main() -> Result<(), ml_mlflow::Error> {
//! use ml_mlflow::{Client, Metric, Param};
//! let client = Client::new("http://127.0.0.1:5000")?;
//! let experiment = client.ensure_experiment("heart-disease")?;
//! let run = client.create_run(&experiment.experiment_id, Some("train"), &[])?;
//! client.log_batch(&run.info.run_id, &[Metric::now("roc_auc", 0.91)], &[Param::new("model", "lr")], &[])?;
//! client.upload_artifact(&run.info.artifact_uri, "model/model.bin", b"...")?;
//! # Ok(()) }
//! ```

mod api;
mod cache;
mod client;
mod encode;
mod error;
mod record;
mod request_id;
pub mod testing;
mod tracking;
mod uri;

pub use api::{
    now_millis, AliasEntry, Experiment, FileInfo, Metric, ModelVersion, Param, RegisteredModel,
    Run, RunData, RunInfo, RunStatus, Tag, EXPERIMENT_KIND_MODEL_TRAINING, EXPERIMENT_KIND_TAG,
};
pub use cache::{default_model_cache, FetchedModel, MODEL_CACHE_ENV};
pub use client::{
    Client, RetryPolicy, PASSWORD_ENV, REQUEST_TIMEOUT_ENV, RETRY_BUDGET_ENV, TRACKING_URI_ENV,
    USERNAME_ENV,
};
pub use error::{Error, Result};
pub use record::{RunRecord, RUN_RECORD_FILE, RUN_RECORD_FORMAT};
pub use request_id::CLIENT_REQUEST_ID_TAG;
pub use tracking::{
    descriptor, LoggedTraining, TrainingRun, DEFAULT_EXPERIMENT, DESCRIPTOR_FILE, EXPERIMENT_ENV,
    FLAVOR, MODEL_ARTIFACT_PATH, SUPERSEDED_BY_TAG,
};
pub use uri::ModelUri;
