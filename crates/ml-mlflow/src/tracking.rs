//! What the training stages log, in one place: `ml-train` opens a run and logs the model
//! (files plus a descriptor), `ml-validate` adds the metrics and closes the run. Both
//! leave the run FAILED rather than half-logged and RUNNING when something goes wrong. A
//! process that is killed cannot do that; the next training of the same name marks the run
//! it left open KILLED.

use std::path::Path;

use crate::api::{Metric, Param, RunStatus, Tag};
use crate::client::Client;
use crate::error::Result;
use crate::record::{RunRecord, RUN_RECORD_FORMAT};

/// Experiment used when neither `--experiment` nor `MLFLOW_EXPERIMENT_NAME` names one.
pub const DEFAULT_EXPERIMENT: &str = "heart-disease";

/// MLflow's own variable for the experiment name.
pub const EXPERIMENT_ENV: &str = "MLFLOW_EXPERIMENT_NAME";

/// Directory below a run's artifact root that holds the model files.
pub const MODEL_ARTIFACT_PATH: &str = "model";

/// File name of the model descriptor, as MLflow names it.
pub const DESCRIPTOR_FILE: &str = "MLmodel";

/// Flavor name under which the descriptor describes our model file.
pub const FLAVOR: &str = "ml_pipeline";

/// Tag set on a run that a later training of the same name replaced: the new run's id.
pub const SUPERSEDED_BY_TAG: &str = "ml.superseded_by";

/// What [`Client::log_training`] did.
#[derive(Debug, Clone)]
pub struct LoggedTraining {
    /// The new run, as written to the model directory.
    pub record: RunRecord,
    /// Earlier runs of the same name that were still RUNNING and are now KILLED.
    pub superseded: Vec<String>,
}

/// A trained model to log: the files of its directory and what describes it.
#[derive(Debug, Clone)]
pub struct TrainingRun<'a> {
    pub experiment: &'a str,
    pub run_name: &'a str,
    pub params: &'a [Param],
    pub metrics: &'a [Metric],
    pub tags: &'a [Tag],
    /// Directory holding `files`; the run record is written here at the end.
    pub model_dir: &'a Path,
    /// File names inside `model_dir`, uploaded below `model/` (the descriptor included).
    pub files: &'a [&'a str],
}

/// The `MLmodel` descriptor: YAML naming the file format, so that a person or another tool
/// browsing the artifact knows what `model.bin` is and which code can read it.
pub fn descriptor(
    model_file: &str,
    format: &str,
    format_version: u32,
    model_kind: &str,
    code_version: &str,
) -> String {
    format!(
        "artifact_path: {MODEL_ARTIFACT_PATH}\n\
         flavors:\n  \
           {FLAVOR}:\n    \
             model_file: {model_file}\n    \
             format: {format}\n    \
             format_version: {format_version}\n    \
             model_kind: {model_kind}\n    \
             code_version: '{code_version}'\n    \
             loader: ml-predict --model DIR (Rust, crates/ml-model)\n"
    )
}

impl Client {
    /// Opens a run in `training.experiment` (created if missing), logs params, metrics and
    /// tags, uploads the model files below `model/` and writes the run record into the model
    /// directory last. The run stays RUNNING for `ml-validate` to close; if anything fails
    /// after the run exists, the run is marked FAILED and no record is written. Earlier runs
    /// of the same name still RUNNING are marked KILLED ([`Client::supersede_open_runs`]).
    pub fn log_training(&self, training: &TrainingRun<'_>) -> Result<LoggedTraining> {
        let experiment = self.ensure_experiment(training.experiment)?;
        let run = self.create_run(
            &experiment.experiment_id,
            Some(training.run_name),
            training.tags,
        )?;
        let run_id = run.info.run_id.clone();
        let logged = (|| {
            let superseded =
                self.supersede_open_runs(&experiment.experiment_id, training.run_name, &run_id)?;
            self.log_batch(&run_id, training.metrics, training.params, &[])?;
            for file in training.files {
                self.upload_file(
                    &run.info.artifact_uri,
                    &format!("{MODEL_ARTIFACT_PATH}/{file}"),
                    &training.model_dir.join(file),
                )?;
            }
            let record = RunRecord {
                format: RUN_RECORD_FORMAT,
                tracking_uri: self.base_url().to_string(),
                experiment_id: experiment.experiment_id.clone(),
                experiment_name: experiment.name.clone(),
                run_id: run_id.clone(),
                artifact_uri: run.info.artifact_uri.clone(),
                model_artifact_path: MODEL_ARTIFACT_PATH.to_string(),
            };
            record.write(training.model_dir)?;
            Ok(LoggedTraining { record, superseded })
        })();
        self.fail_run_on_error(&run_id, logged)
    }

    /// Marks KILLED the runs called `run_name` in `experiment_id` that are still RUNNING,
    /// except `keep`, and tags each with [`SUPERSEDED_BY_TAG`] = `keep`. A try of the same
    /// training that was killed (SIGKILL, a lost machine), or whose validation never ran,
    /// left them open, and nothing else would ever close them. Returns their ids. Names
    /// with quotes are not searched for (MLflow's filter syntax would need escaping).
    pub fn supersede_open_runs(
        &self,
        experiment_id: &str,
        run_name: &str,
        keep: &str,
    ) -> Result<Vec<String>> {
        if run_name.contains(['\'', '"', '`', '\\']) {
            return Ok(Vec::new());
        }
        let filter =
            format!("tags.`mlflow.runName` = '{run_name}' and attributes.status = 'RUNNING'");
        let mut superseded = Vec::new();
        for run in self.search_runs(experiment_id, &filter, 100)? {
            let id = run.info.run_id;
            if id == keep {
                continue;
            }
            self.log_batch(&id, &[], &[], &[Tag::new(SUPERSEDED_BY_TAG, keep)])?;
            self.set_run_status(&id, RunStatus::Killed)?;
            superseded.push(id);
        }
        Ok(superseded)
    }

    /// Logs `metrics` and the files `files` of `dir` (at the artifact root) to the run of
    /// `record`, then closes it with `status`. A failure on the way marks the run FAILED.
    pub fn close_run(
        &self,
        record: &RunRecord,
        metrics: &[Metric],
        dir: &Path,
        files: &[&str],
        status: RunStatus,
    ) -> Result<()> {
        let logged = (|| {
            self.log_batch(&record.run_id, metrics, &[], &[])?;
            for file in files {
                self.upload_file(&record.artifact_uri, file, &dir.join(file))?;
            }
            self.set_run_status(&record.run_id, status)?;
            Ok(())
        })();
        self.fail_run_on_error(&record.run_id, logged)
    }

    /// Marks `run_id` FAILED when `outcome` is an error (best effort: the server may be the
    /// reason of the error) and hands `outcome` back.
    pub fn fail_run_on_error<T>(&self, run_id: &str, outcome: Result<T>) -> Result<T> {
        if outcome.is_err() {
            let _ = self.set_run_status(run_id, RunStatus::Failed);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_names_the_format_and_the_file() {
        let text = descriptor("model.bin", "ml-model-bin", 1, "random-forest", "0.1.0");
        assert!(text.starts_with("artifact_path: model\nflavors:\n  ml_pipeline:\n"));
        for line in [
            "    model_file: model.bin\n",
            "    format: ml-model-bin\n",
            "    format_version: 1\n",
            "    model_kind: random-forest\n",
            "    code_version: '0.1.0'\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }
}
