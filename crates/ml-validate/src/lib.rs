//! The validation stage: scores `PROCESSED_DIR/val.csv` with `MODEL_DIR/model.bin` and writes
//! `MODEL_DIR/metrics.json` atomically. The validation rows go through the feature pipeline
//! stored in the model, exactly as prediction does.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ml_cli::Progress;
use ml_mlflow::{Client, Metric, RunRecord, RunStatus};
use ml_model::{Metrics, Model};

/// The validation split inside the input directory.
pub use ml_data::split::VAL_FILE;
/// Metrics next to the model.
pub const METRICS_FILE: &str = "metrics.json";

/// What a validation run produced.
#[derive(Debug)]
pub struct Validated {
    pub metrics: Metrics,
    pub metrics_path: PathBuf,
}

/// Loads the model, scores the validation split and writes the metrics.
pub fn run(input_dir: &Path, model_dir: &Path, progress: &Progress) -> anyhow::Result<Validated> {
    // The model first: a missing or damaged model is reported before reading any data.
    let model = Model::load_dir(model_dir)?;
    progress.log(format_args!(
        "loaded {} model from {}",
        model.kind(),
        model_dir.display()
    ));
    let val_path = input_dir.join(VAL_FILE);
    let val = progress.step(
        format_args!("read {}", val_path.display()),
        |r: &Result<ml_data::Labeled, _>| r.as_ref().map_or(0, ml_data::Labeled::n_rows),
        || ml_data::io::read_labeled(&val_path),
    )?;
    let metrics = score(&model, &val, &val_path)?;
    let metrics_path = model_dir.join(METRICS_FILE);
    let text = serde_json::to_string_pretty(&metrics).context("cannot encode metrics.json")?;
    ml_data::atomic::write_atomic(&metrics_path, format!("{text}\n").as_bytes())?;
    progress.log(format_args!("wrote {}", metrics_path.display()));
    Ok(Validated {
        metrics,
        metrics_path,
    })
}

/// The metrics of `model` on `val` (read from `val_path`, which errors name); the scoring
/// itself is `ml_model::evaluate::score`, the same function `ml-promote` judges with.
pub fn score(model: &Model, val: &ml_data::Labeled, val_path: &Path) -> anyhow::Result<Metrics> {
    ml_model::score(model, val)
        .map(|scored| scored.metrics)
        .with_context(|| format!("{}: cannot score", val_path.display()))
}

/// Validation with the MLflow side: when the model directory has a run record (ml-train logged
/// it) and `client` is set, the metrics and metrics.json go to that run and it is closed
/// FINISHED; if validation fails, the run is marked FAILED and the error is returned.
pub fn run_tracked(
    input_dir: &Path,
    model_dir: &Path,
    client: Option<&Client>,
    progress: &Progress,
) -> anyhow::Result<Validated> {
    let record = RunRecord::read(model_dir)?;
    let tracked = match (client, record) {
        (Some(client), Some(record)) => Some((client, record)),
        (Some(_), None) => {
            progress.log(format_args!(
                "{} has no {}: the model was not logged to MLflow, metrics stay local",
                model_dir.display(),
                ml_mlflow::RUN_RECORD_FILE
            ));
            None
        }
        (None, Some(record)) => {
            progress.log(format_args!(
                "MLFLOW_TRACKING_URI is not set: run {} is left open",
                record.run_id
            ));
            None
        }
        (None, None) => None,
    };
    let validated = run(input_dir, model_dir, progress);
    let Some((client, record)) = tracked else {
        return validated;
    };
    match validated {
        Ok(validated) => {
            client.close_run(
                &record,
                &mlflow_metrics(&validated.metrics),
                model_dir,
                &[METRICS_FILE],
                RunStatus::Finished,
            )?;
            progress.log(format_args!(
                "logged the metrics to MLflow run {} and marked it FINISHED",
                record.run_id
            ));
            Ok(validated)
        }
        Err(err) => {
            match client.set_run_status(&record.run_id, RunStatus::Failed) {
                Ok(_) => progress.log(format_args!("marked MLflow run {} FAILED", record.run_id)),
                Err(e) => progress.log(format_args!(
                    "could not mark MLflow run {} FAILED: {e}",
                    record.run_id
                )),
            }
            Err(err)
        }
    }
}

/// The metrics as MLflow metrics; an undefined ROC AUC (one class) is left out.
pub fn mlflow_metrics(metrics: &Metrics) -> Vec<Metric> {
    let mut out = vec![
        Metric::now("accuracy", metrics.accuracy),
        Metric::now("precision", metrics.precision),
        Metric::now("recall", metrics.recall),
        Metric::now("f1", metrics.f1),
        Metric::now("log_loss", metrics.log_loss),
        Metric::now("n_val", metrics.n_val as f64),
    ];
    if let Some(auc) = metrics.roc_auc {
        out.push(Metric::now("roc_auc", auc));
    }
    out
}

/// The metrics as aligned `name value` lines, for people reading a log.
pub fn render(metrics: &Metrics) -> String {
    let auc = metrics.roc_auc.map_or_else(
        || "undefined (one class)".to_string(),
        |v| format!("{v:.4}"),
    );
    format!(
        "accuracy  {:.4}\nprecision {:.4}\nrecall    {:.4}\nf1        {:.4}\nroc_auc   {auc}\nlog_loss  {:.4}\nn_val     {}\n",
        metrics.accuracy, metrics.precision, metrics.recall, metrics.f1, metrics.log_loss, metrics.n_val
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_aligned_and_handles_undefined_auc() {
        let mut m = Metrics {
            accuracy: 0.5,
            precision: 0.25,
            recall: 1.0,
            f1: 0.4,
            roc_auc: Some(0.75),
            log_loss: 0.69,
            n_val: 4,
        };
        assert_eq!(
            render(&m),
            "accuracy  0.5000\nprecision 0.2500\nrecall    1.0000\nf1        0.4000\nroc_auc   0.7500\nlog_loss  0.6900\nn_val     4\n"
        );
        m.roc_auc = None;
        assert!(render(&m).contains("roc_auc   undefined (one class)"));
    }
}
