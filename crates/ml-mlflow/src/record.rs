//! The hand-over between stages: `ml-train` writes which MLflow run holds the model, later
//! stages (`ml-validate`, `ml-promote`) read it from the model directory instead of
//! guessing from names.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::write_atomically;
use crate::error::{Error, Result};

/// File name of the run record inside a model directory.
pub const RUN_RECORD_FILE: &str = "mlflow_run.json";

/// Current layout of [`RunRecord`]; bumped when a field changes meaning.
pub const RUN_RECORD_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: u32,
    /// Base URL of the tracking server the run lives on (never with credentials).
    pub tracking_uri: String,
    pub experiment_id: String,
    pub experiment_name: String,
    pub run_id: String,
    /// The run's artifact root, for example `mlflow-artifacts:/1/<run id>/artifacts`.
    pub artifact_uri: String,
    /// Directory below the artifact root that holds the model files.
    pub model_artifact_path: String,
}

impl RunRecord {
    pub fn path(model_dir: &Path) -> PathBuf {
        model_dir.join(RUN_RECORD_FILE)
    }

    /// Artifact URI of the model directory, the `source` of a registered model version.
    pub fn model_source(&self) -> String {
        format!(
            "{}/{}",
            self.artifact_uri.trim_end_matches('/'),
            self.model_artifact_path.trim_matches('/')
        )
    }

    /// The record in `model_dir`, or `None` when training did not log to MLflow.
    pub fn read(model_dir: &Path) -> Result<Option<RunRecord>> {
        let path = Self::path(model_dir);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let record: RunRecord =
            serde_json::from_slice(&text).map_err(|source| Error::BadRecord {
                path: path.clone(),
                source,
            })?;
        if record.format != RUN_RECORD_FORMAT {
            return Err(Error::BadRecord {
                path,
                source: serde::de::Error::custom(format!(
                    "format {} is not the supported format {RUN_RECORD_FORMAT}",
                    record.format
                )),
            });
        }
        Ok(Some(record))
    }

    /// Writes the record into `model_dir` atomically.
    pub fn write(&self, model_dir: &Path) -> Result<()> {
        let path = Self::path(model_dir);
        let mut text = serde_json::to_vec_pretty(self).map_err(|source| Error::BadRecord {
            path: path.clone(),
            source,
        })?;
        text.push(b'\n');
        write_atomically(&path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        RunRecord {
            format: RUN_RECORD_FORMAT,
            tracking_uri: "http://mlflow:5000".into(),
            experiment_id: "1".into(),
            experiment_name: "heart-disease".into(),
            run_id: "abc".into(),
            artifact_uri: "mlflow-artifacts:/1/abc/artifacts".into(),
            model_artifact_path: "model".into(),
        }
    }

    #[test]
    fn round_trips_and_is_absent_when_not_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(RunRecord::read(dir.path()).expect("readable"), None);
        record().write(dir.path()).expect("written");
        assert_eq!(
            RunRecord::read(dir.path()).expect("readable"),
            Some(record())
        );
        assert_eq!(
            record().model_source(),
            "mlflow-artifacts:/1/abc/artifacts/model"
        );
    }

    #[test]
    fn a_corrupt_or_foreign_record_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(RunRecord::path(dir.path()), b"{\"run_id\": ").expect("write");
        let err = RunRecord::read(dir.path()).expect_err("corrupt");
        assert!(
            err.to_string()
                .contains("mlflow_run.json: not a valid MLflow run record"),
            "{err}"
        );

        let mut future = serde_json::to_value(record()).expect("json");
        future["format"] = 2.into();
        fs::write(RunRecord::path(dir.path()), future.to_string()).expect("write");
        let err = RunRecord::read(dir.path()).expect_err("other format");
        let chain = format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(|s| s.to_string())
                .unwrap_or_default()
        );
        assert!(
            chain.contains("format 2 is not the supported format 1"),
            "{chain}"
        );
    }
}
