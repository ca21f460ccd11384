//! The prediction stage: streams `RAW_DIR/data.csv` in batches through the saved model and
//! writes `PREDICTIONS_DIR/predictions.csv` (`id,prediction,probability`, one row per input
//! row, in input order). `id` is the input's own `id` column when `data.csv` has one, so
//! predictions join inputs and labels by key; a `data.csv` from before ids existed is keyed
//! by row number (`id` is the 1-based row number). Memory is bounded by the batch size, not the file size; the output
//! appears under its final name only once every row is scored.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ml_cli::Progress;
use ml_data::io::{feature_batches, PredictionWriter};
use ml_mlflow::{Client, ModelUri};
use ml_model::metrics::decide;
use ml_model::Model;

/// The raw features inside the input directory.
pub const DATA_FILE: &str = "data.csv";
/// The output inside the predictions directory.
pub const PREDICTIONS_FILE: &str = "predictions.csv";
/// Rows per batch: ~10 MB of parsed columns and ~25 MB of model inputs in flight.
pub const DEFAULT_BATCH_ROWS: usize = 100_000;
/// The largest batch `--batch-rows` accepts: ~350 MB in flight, already most of the
/// 512 MB the predict task may use.
pub const MAX_BATCH_ROWS: usize = 1_000_000;

/// What one prediction run needs.
#[derive(Debug, Clone)]
pub struct PredictConfig {
    pub input_dir: PathBuf,
    pub model_dir: PathBuf,
    pub output_dir: PathBuf,
    pub batch_rows: usize,
}

/// What a prediction run produced.
#[derive(Debug)]
pub struct Predicted {
    pub rows: usize,
    pub positives: usize,
    pub output: PathBuf,
}

/// The local model directory for `--model`: a directory as given, or for a registry URI
/// (`models:/NAME@ALIAS`, `models:/NAME/VERSION`) the version it resolves to, downloaded
/// into `cache_dir` once per version. Says in the log which version will score the data.
pub fn resolve_model(
    spec: &str,
    client: Option<&Client>,
    cache_dir: &Path,
    progress: &Progress,
) -> anyhow::Result<PathBuf> {
    if !ModelUri::is_model_uri(spec) {
        return Ok(PathBuf::from(spec));
    }
    let uri: ModelUri = spec.parse()?;
    let client = client.with_context(|| {
        format!(
            "--model {spec}: a registry model needs MLFLOW_TRACKING_URI (the MLflow server to ask)"
        )
    })?;
    let fetched = client
        .fetch_model(&uri, cache_dir)
        .with_context(|| format!("--model {spec}: cannot fetch the model"))?;
    let v = &fetched.version;
    progress.log(format_args!(
        "{spec} is {} version {} (run {}), {} {}",
        v.name,
        v.version,
        if v.run_id.is_empty() {
            "unknown"
        } else {
            &v.run_id
        },
        if fetched.from_cache {
            "cached in"
        } else {
            "downloaded to"
        },
        fetched.dir.display()
    ));
    Ok(fetched.dir)
}

/// Loads the model and scores the input batch by batch.
pub fn run(config: &PredictConfig, progress: &Progress) -> anyhow::Result<Predicted> {
    // The model first: a missing or damaged model is reported before reading any data.
    let model = Model::load_dir(&config.model_dir)?;
    progress.log(format_args!(
        "loaded {} model from {}",
        model.kind(),
        config.model_dir.display()
    ));
    let data_path = config.input_dir.join(DATA_FILE);
    // Opening reads and validates the first batch, so an empty, header-only or malformed
    // file fails here, before any output file exists.
    let batches = feature_batches(&data_path, config.batch_rows)?;
    let output = config.output_dir.join(PREDICTIONS_FILE);
    let mut writer = PredictionWriter::create(&output)?;
    let mut positives = 0;
    for batch in batches {
        let batch = batch?;
        let frame = &batch.features;
        let probabilities = model.predict_proba(frame).with_context(|| {
            format!(
                "{}: cannot score rows {}..{}",
                data_path.display(),
                batch.start + 1,
                batch.start + frame.n_rows()
            )
        })?;
        let predictions = decide(&probabilities);
        positives += predictions.iter().filter(|&&p| p == 1).count();
        writer.write_batch(batch.keys(), &predictions, &probabilities)?;
    }
    let rows = writer.rows();
    // Dropping the writer on any error above removes its temporary file.
    writer.commit()?;
    progress.log(format_args!(
        "scored {} rows ({} predicted positive), wrote {}",
        ml_cli::thousands(rows),
        ml_cli::thousands(positives),
        output.display()
    ));
    Ok(Predicted {
        rows,
        positives,
        output,
    })
}
