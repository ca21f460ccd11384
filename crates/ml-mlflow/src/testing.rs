//! Helpers for the tests that run against a real MLflow server (`mlflow_*` test targets of
//! this crate and of the stages that use it), so they share one way to find the server and
//! to name what they create; with the `testing` feature, also [`FaultProxy`] to break the
//! way to that server on purpose.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Client, RunRecord, TrainingRun};

// The proxy is behind the feature, unlike the helpers below: those are still used by the
// stage crates' tests without it (their Cargo.toml would have to ask for the feature first).
#[cfg(any(test, feature = "testing"))]
mod fault;
#[cfg(any(test, feature = "testing"))]
pub use fault::{Exchange, Fault, FaultProxy};

/// The address of the test server that `scripts/mlflow-test-server.sh` exports as
/// `MLFLOW_TEST_URI`. Panics with how to run the tests when it is not set: these tests never
/// pass without a real server.
pub fn server_uri() -> String {
    match std::env::var("MLFLOW_TEST_URI") {
        Ok(uri) if !uri.is_empty() => uri,
        _ => panic!(
            "MLFLOW_TEST_URI is not set: these tests need a real MLflow server. Run them with \
             `scripts/mlflow-test-server.sh cargo test --release --workspace --test 'mlflow_*'`"
        ),
    }
}

/// A name that does not collide between tests running in parallel on one server.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Logs the model directory `dir` (its `model.bin`) the way ml-train does, in `experiment`,
/// and returns the run record it wrote into `dir`: the starting point of ml-validate,
/// ml-promote and registry tests.
pub fn log_model_dir(client: &Client, experiment: &str, dir: &Path) -> RunRecord {
    client
        .log_training(&TrainingRun {
            experiment,
            // Unique, so that logging one test model never supersedes another.
            run_name: &unique_name("train"),
            params: &[],
            metrics: &[],
            tags: &[],
            model_dir: dir,
            files: &["model.bin"],
        })
        .expect("the test model is logged to MLflow")
        .record
}
