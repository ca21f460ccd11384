//! The validation stage: scores `PROCESSED_DIR/val.csv` with `MODEL_DIR/model.bin` and writes
//! `MODEL_DIR/metrics.json` atomically. The validation rows go through the feature pipeline
//! stored in the model, exactly as prediction does.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ml_cli::Progress;
use ml_model::{Metrics, Model};

/// The validation split inside the input directory.
pub const VAL_FILE: &str = "val.csv";
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
    let probabilities = model
        .predict_proba(&val.features)
        .with_context(|| format!("{}: cannot score", val_path.display()))?;
    let metrics = Metrics::compute(&val.target, &probabilities)
        .with_context(|| format!("{}: cannot compute metrics", val_path.display()))?;
    let metrics_path = model_dir.join(METRICS_FILE);
    let text = serde_json::to_string_pretty(&metrics).context("cannot encode metrics.json")?;
    ml_data::atomic::write_atomic(&metrics_path, format!("{text}\n").as_bytes())?;
    progress.log(format_args!("wrote {}", metrics_path.display()));
    Ok(Validated {
        metrics,
        metrics_path,
    })
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
