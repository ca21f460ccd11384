//! The prediction stage: streams `RAW_DIR/data.csv` in batches through the saved model and
//! writes `PREDICTIONS_DIR/predictions.csv` (`id,prediction,probability`, one row per input
//! row, in input order) and, next to it, `provenance.json`: which model scored which input.
//! Memory is bounded by the batch size, not the file size (but for 8 bytes a row to tell a
//! repeated id when the ids do not ascend, see `ml_data::key`); the output appears under its
//! final name only once every row is scored.
//!
//! # Keys
//!
//! `id` is the input's own `id` column when `data.csv` has one, so predictions join inputs
//! and labels by key. A `data.csv` from before ids existed is keyed by row number: `id` is
//! then the 1-based row number, and `provenance.json` says `"keyed_by": "row_number"`.
//!
//! # provenance.json
//!
//! ```json
//! {
//!   "format": 1,
//!   "model": {
//!     "uri": "models:/heart-disease-classifier@production",
//!     "registered_model": "heart-disease-classifier",
//!     "version": "3",
//!     "alias": "production",
//!     "run_id": "0a1b...",
//!     "file": "model.bin",
//!     "sha256": "..."
//!   },
//!   "input": { "file": "data.csv", "sha256": "...", "rows": 3021 },
//!   "predictions": { "file": "predictions.csv", "sha256": "...", "rows": 3021 },
//!   "keyed_by": "id"
//! }
//! ```
//!
//! `uri` is `--model` as given. For a model directory `registered_model`, `version` and
//! `alias` are null, and `run_id` is the training run's when the directory has its run record
//! (`mlflow_run.json`, written by `ml-train` when it logged to MLflow), else null. For a
//! registry model they are the version the URI resolved to; `alias` is null for
//! `models:/NAME/VERSION`. Each checksum is SHA-256 in hex, taken of the very bytes that were
//! decoded, parsed or written. No timestamps: the same model and input give the same bytes.
//!
//! # Complete or not
//!
//! Both files are written through a temporary file and a rename. A reader takes a day's
//! predictions as complete only when `provenance.json` exists and its `predictions.sha256`
//! is that of `predictions.csv`. So once every row is scored, the stage removes the old
//! `provenance.json` (if any), then renames `predictions.csv` into place, then writes
//! `provenance.json` last: if it stops anywhere in between, the day reads as incomplete,
//! never as new predictions vouched for by an old record. A run that fails before that point
//! leaves an earlier complete pair as it was.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ml_cli::Progress;
use ml_data::digest::{sha256_hex, Sha256Reader};
use ml_data::io::{FeatureBatches, PredictionWriter};
use ml_data::KeyedBy;
use ml_mlflow::{Client, ModelUri, RunRecord};
use ml_model::metrics::decide;
use ml_model::{Model, MODEL_FILE};
use serde::{Deserialize, Serialize};

/// The raw features inside the input directory.
pub const DATA_FILE: &str = "data.csv";
/// The output inside the predictions directory.
pub const PREDICTIONS_FILE: &str = "predictions.csv";
/// What scored the output, next to it; see the crate documentation.
pub const PROVENANCE_FILE: &str = "provenance.json";
/// The layout of `provenance.json`; bumped when a field changes meaning.
pub const PROVENANCE_FORMAT: u32 = 1;
/// Rows per batch: ~10 MB of parsed columns and ~25 MB of model inputs in flight.
pub const DEFAULT_BATCH_ROWS: usize = 100_000;
/// The largest batch `--batch-rows` accepts: ~350 MB in flight, already most of the
/// 512 MB the predict task may use.
pub const MAX_BATCH_ROWS: usize = 1_000_000;

/// What one prediction run needs.
#[derive(Debug, Clone)]
pub struct PredictConfig {
    pub input_dir: PathBuf,
    pub model: ResolvedModel,
    pub output_dir: PathBuf,
    pub batch_rows: usize,
}

/// Where the model came from, as `provenance.json` records it (its `model` object, less the
/// file and checksum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSource {
    /// `--model` as given.
    pub uri: String,
    pub registered_model: Option<String>,
    pub version: Option<String>,
    /// The alias the URI named (`production` for `models:/NAME@production`).
    pub alias: Option<String>,
    pub run_id: Option<String>,
}

impl ModelSource {
    /// A model directory given by path: nothing known yet but the path.
    pub fn local(uri: &str) -> Self {
        ModelSource {
            uri: uri.to_string(),
            registered_model: None,
            version: None,
            alias: None,
            run_id: None,
        }
    }
}

/// A model ready to load: its local directory and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    pub dir: PathBuf,
    pub source: ModelSource,
}

/// What a prediction run produced.
#[derive(Debug)]
pub struct Predicted {
    pub rows: usize,
    pub positives: usize,
    pub keyed_by: KeyedBy,
    pub output: PathBuf,
    pub provenance: PathBuf,
}

/// `provenance.json`; see the crate documentation. [`read_provenance`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// [`PROVENANCE_FORMAT`].
    pub format: u32,
    pub model: ModelRecord,
    /// `data.csv`, as it was read.
    pub input: FileRecord,
    /// `predictions.csv`, as it was written.
    pub predictions: FileRecord,
    /// `id` or `row_number` ([`KeyedBy::as_str`]).
    pub keyed_by: String,
}

impl Provenance {
    /// [`Provenance::keyed_by`] as a [`KeyedBy`]; `None` for any other text.
    pub fn keyed(&self) -> Option<KeyedBy> {
        [KeyedBy::Id, KeyedBy::RowNumber]
            .into_iter()
            .find(|k| k.as_str() == self.keyed_by)
    }
}

/// The `model` object of `provenance.json`: where the model came from, and the checksum of
/// the model file that scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    #[serde(flatten)]
    pub source: ModelSource,
    /// [`MODEL_FILE`].
    pub file: String,
    pub sha256: String,
}

/// A file of `provenance.json`: its name in its directory, checksum and data rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub file: String,
    pub sha256: String,
    pub rows: usize,
}

/// Reads `dir/provenance.json`, with errors that name it: missing (the predictions beside it
/// are incomplete, or were never written), not the JSON of a provenance record, or of another
/// format or key than this build knows. Each is an `ml_data::DataError` (bad input).
pub fn read_provenance(dir: &Path) -> anyhow::Result<Provenance> {
    let path = dir.join(PROVENANCE_FILE);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut ml_data::io::open_input(&path)?, &mut bytes).map_err(
        |source| ml_data::DataError::Read {
            path: path.clone(),
            source,
        },
    )?;
    let invalid = |message: String| ml_data::DataError::Invalid {
        path: path.clone(),
        message,
    };
    let provenance: Provenance = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("not a valid provenance record: {e}")))?;
    if provenance.format != PROVENANCE_FORMAT {
        return Err(invalid(format!(
            "provenance format {} is not the supported format {PROVENANCE_FORMAT}",
            provenance.format
        ))
        .into());
    }
    if provenance.keyed().is_none() {
        return Err(invalid(format!(
            "keyed_by {:?} is neither \"id\" nor \"row_number\"",
            provenance.keyed_by
        ))
        .into());
    }
    Ok(provenance)
}

/// The model for `--model`: a directory as given, or for a registry URI
/// (`models:/NAME@ALIAS`, `models:/NAME/VERSION`) the version it resolves to, downloaded
/// into `cache_dir` once per version. Says in the log which version will score the data.
pub fn resolve_model(
    spec: &str,
    client: Option<&Client>,
    cache_dir: &Path,
    progress: &Progress,
) -> anyhow::Result<ResolvedModel> {
    if !ModelUri::is_model_uri(spec) {
        return Ok(ResolvedModel {
            dir: PathBuf::from(spec),
            source: ModelSource::local(spec),
        });
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
    let alias = match &uri {
        ModelUri::Alias { alias, .. } => Some(alias.clone()),
        ModelUri::Version { .. } => None,
    };
    Ok(ResolvedModel {
        source: ModelSource {
            uri: spec.to_string(),
            registered_model: Some(v.name.clone()),
            version: Some(v.version.clone()),
            alias,
            run_id: (!v.run_id.is_empty()).then(|| v.run_id.clone()),
        },
        dir: fetched.dir,
    })
}

/// Loads the model, scores the input batch by batch and writes the predictions and their
/// provenance, in the order the crate documentation gives.
pub fn run(config: &PredictConfig, progress: &Progress) -> anyhow::Result<Predicted> {
    // The model first: a missing or damaged model is reported before reading any data. Its
    // bytes are read once, so the checksum is of the very model that scores.
    let model_path = config.model.dir.join(MODEL_FILE);
    let model_bytes = Model::read_file(&model_path)?;
    let model = Model::from_bytes(&model_bytes, &model_path)?;
    progress.log(format_args!(
        "loaded {} model from {}",
        model.kind(),
        config.model.dir.display()
    ));
    let mut source = config.model.source.clone();
    if source.registered_model.is_none() {
        let record = RunRecord::read(&config.model.dir)
            .context("cannot read the model directory's run record")?;
        source.run_id = record.map(|r| r.run_id);
    }

    let data_path = config.input_dir.join(DATA_FILE);
    // Opening reads and validates the first batch, so an empty, header-only or malformed
    // file fails here, before any output file exists.
    let input = Sha256Reader::new(ml_data::io::open_input(&data_path)?);
    let mut batches = FeatureBatches::from_reader(&data_path, input, config.batch_rows)?;
    let keyed_by = batches.keyed_by();
    let output = config.output_dir.join(PREDICTIONS_FILE);
    let provenance_path = config.output_dir.join(PROVENANCE_FILE);
    let mut writer = PredictionWriter::create(&output)?;
    let mut positives = 0;
    for batch in &mut batches {
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
    let input_rows = batches.rows();
    // The iterator has ended, so the reader has seen the whole file.
    let input_sha256 = batches.into_reader().finish();

    // Dropping the writer on any error above removes its temporary file and leaves an
    // earlier pair alone. From here on: old voucher out, new file in, new voucher last.
    ml_data::atomic::remove_if_exists(&provenance_path)?;
    let written = writer.commit()?;
    let provenance = Provenance {
        format: PROVENANCE_FORMAT,
        model: ModelRecord {
            source,
            file: MODEL_FILE.to_string(),
            sha256: sha256_hex(&model_bytes),
        },
        input: FileRecord {
            file: DATA_FILE.to_string(),
            sha256: input_sha256,
            rows: input_rows,
        },
        predictions: FileRecord {
            file: PREDICTIONS_FILE.to_string(),
            sha256: written.sha256,
            rows: written.rows,
        },
        keyed_by: keyed_by.as_str().to_string(),
    };
    let mut json =
        serde_json::to_vec_pretty(&provenance).context("cannot encode provenance.json")?;
    json.push(b'\n');
    ml_data::atomic::write_atomic(&provenance_path, &json)?;
    progress.log(format_args!(
        "scored {} rows ({} predicted positive, keyed by {}), wrote {} and {}",
        ml_cli::thousands(written.rows),
        ml_cli::thousands(positives),
        keyed_by.as_str(),
        output.display(),
        provenance_path.display()
    ));
    Ok(Predicted {
        rows: written.rows,
        positives,
        keyed_by,
        output,
        provenance: provenance_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            format: PROVENANCE_FORMAT,
            model: ModelRecord {
                source: ModelSource {
                    uri: "models:/clf@production".into(),
                    registered_model: Some("clf".into()),
                    version: Some("3".into()),
                    alias: Some("production".into()),
                    run_id: None,
                },
                file: MODEL_FILE.into(),
                sha256: "aa".into(),
            },
            input: FileRecord {
                file: DATA_FILE.into(),
                sha256: "bb".into(),
                rows: 2,
            },
            predictions: FileRecord {
                file: PREDICTIONS_FILE.into(),
                sha256: "cc".into(),
                rows: 2,
            },
            keyed_by: KeyedBy::Id.as_str().into(),
        }
    }

    #[test]
    fn provenance_reads_back_and_bad_records_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(PROVENANCE_FILE);
        let err = |text: &str| {
            std::fs::write(&path, text).expect("write");
            let err = read_provenance(dir.path()).expect_err("refused");
            assert!(
                err.downcast_ref::<ml_data::DataError>().is_some(),
                "bad input: {err:#}"
            );
            format!("{err:#}")
        };
        let missing = read_provenance(dir.path()).expect_err("missing");
        assert!(missing
            .to_string()
            .ends_with("provenance.json: no such file"));

        let text = serde_json::to_string_pretty(&provenance()).expect("json");
        // The field order of the crate documentation, flattened source first.
        assert!(
            text.starts_with("{\n  \"format\": 1,\n  \"model\": {\n    \"uri\": "),
            "{text}"
        );
        std::fs::write(&path, &text).expect("write");
        let read = read_provenance(dir.path()).expect("readable");
        assert_eq!(read, provenance());
        assert_eq!(read.keyed(), Some(KeyedBy::Id));

        assert!(err("{ nope").contains("not a valid provenance record"));
        assert!(err(&text.replacen("\"format\": 1", "\"format\": 2", 1))
            .contains("provenance format 2 is not the supported format 1"));
        assert!(
            err(&text.replace("\"keyed_by\": \"id\"", "\"keyed_by\": \"row\""))
                .contains("keyed_by \"row\" is neither")
        );
    }
}
