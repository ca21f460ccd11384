//! The monitoring stage: scores the model that made a day's predictions on the labels that
//! have arrived since, measures how far the day's features moved from the model's training
//! data, and writes `OUT/report.html` (for people) and `OUT/report.json` (for the pipeline),
//! with a verdict: `ok`, `drift` or `decay`.
//!
//! # Inputs, and what is checked before anything is written
//!
//! - `PRED/predictions.csv` and `PRED/provenance.json`, written by `ml-predict`. The
//!   predictions count only if `provenance.json` vouches for them: the SHA-256 of
//!   `predictions.csv` must be `provenance.predictions.sha256`.
//! - `RAW/data.csv`, the features that were scored: its SHA-256 must be
//!   `provenance.input.sha256`. `RAW/target.csv`, the labels (`[id,]target`).
//! - The model: `--model` when given, else the one `provenance.json` names, by version
//!   (`models:/NAME/VERSION`, never the alias, which may have moved since) or by its
//!   directory. Resolved as `ml-predict` resolves it. The SHA-256 of its `model.bin` must be
//!   `provenance.model.sha256`: the model evaluated is the one that scored. Its validation
//!   ROC AUC comes from `MODEL_DIR/metrics.json` (`ml-validate`) when the directory has one
//!   (a registry download does not), else from the `roc_auc` metric of its MLflow run. Its
//!   reference profile is `MODEL_DIR/reference_profile.json` (`ml-train`, see
//!   `ml_model::profile`).
//!
//! Predictions and labels are joined by id, or by row number when neither side has ids
//! ([`join`]). Labels may be fewer than predictions; fewer than `--min-labeled-rows` joined
//! rows, or labels of one class only, give no verdict. Every failure above is one `error:`
//! line and exit 65, and writes nothing.
//!
//! # Verdict
//!
//! See [`verdict`]: `decay` when the live ROC AUC is below the validation ROC AUC less
//! `--auc-margin`, or below `--min-roc-auc`; else `drift` when a feature's PSI is at least
//! `--psi-threshold`; else `ok`.
//!
//! # Outputs
//!
//! `report.html` first, then `report.json`, each through a temporary file and a rename; an
//! earlier `report.json` is removed before either is written, so a `report.json` is always
//! the complete report of the `report.html` beside it. No clock in either: the same inputs
//! give the same bytes. The HTML page is self-contained (inline CSS and SVG, no script, no
//! external address) and shows the last 30 days from `HISTORY_DIR/<date>/report.json`.
//!
//! # report.json (format 1)
//!
//! | field | meaning |
//! | --- | --- |
//! | `format` | 1; bumped when a field changes meaning |
//! | `date` | the data date, `YYYY-MM-DD` |
//! | `verdict` | `ok`, `drift` or `decay` |
//! | `reasons` | every rule that fired, one sentence each with its numbers; empty when `ok` |
//! | `model.uri` | the model evaluated: `models:/NAME/VERSION` or a model directory |
//! | `model.registered_model`, `model.version` | its registry name and version; for a directory, those `provenance.json` recorded for the same `model.bin`; else null |
//! | `model.run_id` | its MLflow training run, or null |
//! | `model.kind` | `logistic-regression` or `random-forest` |
//! | `model.validation_roc_auc` | its ROC AUC on the validation split when it was trained |
//! | `thresholds.psi`, `.auc_margin`, `.min_roc_auc`, `.min_labeled_rows` | the limits the verdict used |
//! | `rows.predictions` | rows of `predictions.csv` |
//! | `rows.labels` | rows of `target.csv` |
//! | `rows.joined` | predictions with a label: the rows the quality is measured on |
//! | `rows.unlabeled` | predictions without a label yet |
//! | `rows.unpredicted` | labels without a prediction |
//! | `keyed_by` | `id` or `row_number`: how predictions and labels were joined |
//! | `quality.roc_auc` | live ROC AUC on the joined rows |
//! | `quality.log_loss` | mean log loss (probabilities clipped to `[1e-15, 1 - 1e-15]`) |
//! | `quality.accuracy` | share of joined rows right at the 0.5 threshold |
//! | `quality.predicted_positive_rate` | share of joined rows predicted 1 |
//! | `quality.observed_positive_rate` | share of joined rows labelled 1 |
//! | `quality.ece` | expected calibration error: sum over the bins of `count / joined * abs(observed_rate - mean_predicted)` |
//! | `quality.calibration` | ten bins `[lower, upper)` of width 0.1 (the last holds 1.0): `lower`, `upper`, `count`, `mean_predicted` and `observed_rate` (both null when the bin is empty) |
//! | `drift.max_psi` | the largest PSI of any feature |
//! | `drift.drifted` | names of the features with PSI at or above `thresholds.psi`, in schema order |
//! | `drift.features` | per feature, in schema order: `name`, `psi`, `missing_share_reference` and `missing_share_live` (shares of empty cells), `drifted` |
//! | `inputs.predictions_sha256`, `.labels_sha256`, `.data_sha256` | SHA-256 of `predictions.csv`, `target.csv` and `data.csv` as read |
//!
//! # MLflow
//!
//! With a client, [`log_to_mlflow`] logs the report as a run `monitor-<date>` (see
//! [`tracking`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ml_cli::Progress;
use ml_data::digest::{sha256_hex, Sha256Reader};
use ml_data::io::FeatureBatches;
use ml_data::{DataError, Date, Frame};
use ml_mlflow::{Client, ModelUri, RunRecord};
use ml_model::{Metrics, Model, ReferenceProfile, MODEL_FILE, PROFILE_FILE};
use ml_predict::{ModelSource, Provenance, DATA_FILE, PREDICTIONS_FILE, PROVENANCE_FILE};

pub mod history;
pub mod html;
pub mod join;
pub mod predictions;
pub mod quality;
pub mod report;
mod svg;
pub mod tracking;
pub mod verdict;

pub use report::Report;
pub use tracking::log_to_mlflow;
pub use verdict::{Thresholds, Verdict};

/// The labels inside the raw directory.
pub const TARGET_FILE: &str = "target.csv";
/// The report for people, written first.
pub const REPORT_HTML: &str = "report.html";
/// The report for the pipeline, written last.
pub const REPORT_JSON: &str = "report.json";
/// The layout of `report.json`; bumped when a field changes meaning.
pub const REPORT_FORMAT: u32 = 1;
/// `ml-validate`'s metrics inside a model directory.
pub const METRICS_FILE: &str = "metrics.json";
/// The MLflow metric of the training run that holds the validation ROC AUC.
pub const VALIDATION_AUC_METRIC: &str = "roc_auc";
/// Experiment the monitoring runs go to unless told otherwise.
pub const DEFAULT_EXPERIMENT: &str = "heart-disease-monitoring";
/// Default `--psi-threshold`: 0.2 and above is commonly read as a shift that matters.
pub const DEFAULT_PSI_THRESHOLD: f64 = 0.2;
/// Default `--auc-margin`.
pub const DEFAULT_AUC_MARGIN: f64 = 0.03;
/// Default `--min-roc-auc`: the floor `ml-promote` holds every model to.
pub const DEFAULT_MIN_ROC_AUC: f64 = 0.75;
/// Default `--min-labeled-rows`.
pub const DEFAULT_MIN_LABELED_ROWS: usize = 200;

/// Why no report can be given for these inputs. Each is about the inputs (exit 65).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{}: predictions are incomplete or changed since they were written (sha256 {found}, {} vouches for {expected})", path.display(), provenance.display())]
    PredictionsChanged {
        path: PathBuf,
        provenance: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{}: not the input that was scored (sha256 {found}, {} records {expected})", path.display(), provenance.display())]
    InputChanged {
        path: PathBuf,
        provenance: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{}: not the model that scored the predictions (sha256 {found}, {} records {expected})", path.display(), provenance.display())]
    ModelChanged {
        path: PathBuf,
        provenance: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{}: no such file: the model was trained before reference profiles; retrain it", path.display())]
    NoProfile { path: PathBuf },
    #[error("{}: not a valid reference profile: {detail}", path.display())]
    BadProfile { path: PathBuf, detail: String },
    #[error("{}: not valid metrics: {detail}", path.display())]
    BadMetrics { path: PathBuf, detail: String },
    #[error("cannot tell the model's validation ROC AUC: {reason}")]
    NoValidationAuc { reason: String },
    #[error("predictions are keyed by {predictions} ({}) but {} is keyed by {labels}: they cannot be joined", provenance.display(), labels_path.display())]
    MixedKeys {
        provenance: PathBuf,
        predictions: &'static str,
        labels_path: PathBuf,
        labels: &'static str,
    },
    #[error("{}: id {id:?} appears more than once", path.display())]
    DuplicateId { path: PathBuf, id: String },
    #[error("only {joined} predictions have a label, fewer than --min-labeled-rows {min}: no verdict can be given yet")]
    TooFewLabeled { joined: usize, min: usize },
    #[error("the {joined} labelled predictions are all of class {class}: ROC AUC is undefined, no verdict can be given")]
    SingleClass { class: u8, joined: usize },
    #[error("cannot compute the metrics: {0}")]
    Metrics(String),
}

/// What one monitoring run needs.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Holds `predictions.csv` and `provenance.json`.
    pub predictions_dir: PathBuf,
    /// Holds `target.csv` and `data.csv`.
    pub labels_dir: PathBuf,
    pub output_dir: PathBuf,
    /// `--model`; `None`: the model `provenance.json` names.
    pub model: Option<String>,
    /// Where registry models are downloaded.
    pub model_cache: PathBuf,
    /// Holds the earlier reports, as `<date>/report.json`.
    pub history_dir: PathBuf,
    pub date: Date,
    pub thresholds: Thresholds,
}

/// What a monitoring run produced.
#[derive(Debug, Clone)]
pub struct Monitored {
    pub report: Report,
    pub html_path: PathBuf,
    pub json_path: PathBuf,
    /// The earlier days the chart shows, oldest first.
    pub history: Vec<history::Point>,
}

/// The date a predictions directory is named after (`predictions/2026-01-05`), if it is.
pub fn date_of_dir(dir: &Path) -> Option<Date> {
    dir.file_name()?.to_str()?.parse().ok()
}

/// The history directory when none is given: the output directory's parent (so
/// `monitoring/2026-01-05` reads `monitoring/<date>/report.json`).
pub fn default_history_dir(output_dir: &Path) -> PathBuf {
    match output_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The model `provenance.json` names, as `--model` would name it: a registered version by
/// number, else the directory it was given as.
pub fn model_of(provenance: &Provenance) -> String {
    let source = &provenance.model.source;
    match (&source.registered_model, &source.version) {
        (Some(name), Some(version)) => ModelUri::Version {
            name: name.clone(),
            version: version.clone(),
        }
        .to_string(),
        _ => source.uri.clone(),
    }
}

/// Checks the inputs, computes the report and writes it; see the crate documentation.
pub fn run(
    config: &MonitorConfig,
    client: Option<&Client>,
    progress: &Progress,
) -> anyhow::Result<Monitored> {
    let provenance_path = config.predictions_dir.join(PROVENANCE_FILE);
    let provenance = ml_predict::read_provenance(&config.predictions_dir)?;
    let keyed_by = provenance
        .keyed()
        .with_context(|| format!("{}: unknown keyed_by", provenance_path.display()))?;

    // The predictions: only as provenance.json vouches for them.
    let predictions_path = config.predictions_dir.join(PREDICTIONS_FILE);
    let bytes = read_file(&predictions_path)?;
    let predictions_sha256 = vouched(
        sha256_hex(&bytes),
        &provenance.predictions.sha256,
        |found, expected| MonitorError::PredictionsChanged {
            path: predictions_path.clone(),
            provenance: provenance_path.clone(),
            found,
            expected,
        },
    )?;
    let predictions = predictions::parse(&predictions_path, &bytes)?;
    drop(bytes);
    progress.log(format_args!(
        "read {} predictions (keyed by {}) from {}",
        ml_cli::thousands(predictions.len()),
        keyed_by.as_str(),
        predictions_path.display()
    ));

    // The model: the very one that scored.
    let spec = config
        .model
        .clone()
        .unwrap_or_else(|| model_of(&provenance));
    let resolved = ml_predict::resolve_model(&spec, client, &config.model_cache, progress)?;
    let model_path = resolved.dir.join(MODEL_FILE);
    let model_bytes = Model::read_file(&model_path)?;
    vouched(
        sha256_hex(&model_bytes),
        &provenance.model.sha256,
        |found, expected| MonitorError::ModelChanged {
            path: model_path.clone(),
            provenance: provenance_path.clone(),
            found,
            expected,
        },
    )?;
    let model = Model::from_bytes(&model_bytes, &model_path)?;
    let source = model_source(resolved.source, &resolved.dir, &provenance)?;
    let profile = read_profile(&resolved.dir)?;
    let validation_roc_auc =
        validation_roc_auc(&resolved.dir, source.run_id.as_deref(), client, progress)?;
    progress.log(format_args!(
        "evaluating {} model {} (validation ROC AUC {validation_roc_auc:.4})",
        model.kind(),
        source.uri
    ));

    // The features that were scored, and the labels.
    let data_path = config.labels_dir.join(DATA_FILE);
    let (live, data_sha256) = read_features(&data_path)?;
    let data_sha256 = vouched(data_sha256, &provenance.input.sha256, |found, expected| {
        MonitorError::InputChanged {
            path: data_path.clone(),
            provenance: provenance_path.clone(),
            found,
            expected,
        }
    })?;
    let target_path = config.labels_dir.join(TARGET_FILE);
    let labels = ml_data::io::read_keyed_target(&target_path)?;
    let labels_sha256 = sha256_hex(&read_file(&target_path)?);

    let (joined, rows) = join::join(
        &predictions,
        keyed_by,
        &provenance_path,
        &labels,
        &target_path,
    )?;
    progress.log(format_args!(
        "{} of {} predictions have a label ({} unlabeled; {} labels without a prediction)",
        ml_cli::thousands(rows.joined),
        ml_cli::thousands(rows.predictions),
        ml_cli::thousands(rows.unlabeled),
        ml_cli::thousands(rows.unpredicted)
    ));
    let quality = quality::quality(&joined, config.thresholds.min_labeled_rows)?;
    let drift = profile.psi(&live).with_context(|| {
        format!(
            "{}: cannot compare with the reference profile",
            data_path.display()
        )
    })?;
    let judged = verdict::judge(
        quality.roc_auc,
        validation_roc_auc,
        &drift
            .iter()
            .map(|d| verdict::FeaturePsi {
                name: &d.name,
                psi: d.psi,
            })
            .collect::<Vec<_>>(),
        &config.thresholds,
    );
    let features: Vec<report::FeatureReport> = drift
        .iter()
        .map(|d| report::FeatureReport {
            name: d.name.clone(),
            psi: d.psi,
            missing_share_reference: d.missing_share_reference,
            missing_share_live: d.missing_share_live,
            drifted: verdict::drifted(d.psi, &config.thresholds),
        })
        .collect();
    let report = Report {
        format: REPORT_FORMAT,
        date: config.date.to_string(),
        verdict: judged.verdict,
        reasons: judged.reasons,
        model: report::ModelReport {
            uri: source.uri,
            registered_model: source.registered_model,
            version: source.version,
            run_id: source.run_id,
            kind: model.kind().as_str().to_string(),
            validation_roc_auc,
        },
        thresholds: config.thresholds,
        rows,
        keyed_by: keyed_by.as_str().to_string(),
        drift: report::DriftReport {
            max_psi: features.iter().map(|f| f.psi).fold(0.0, f64::max),
            drifted: features
                .iter()
                .filter(|f| f.drifted)
                .map(|f| f.name.clone())
                .collect(),
            features,
        },
        quality,
        inputs: report::Inputs {
            predictions_sha256,
            labels_sha256,
            data_sha256,
        },
    };
    progress.log(format_args!(
        "live ROC AUC {:.4} on {} rows, max PSI {:.4}: {}{}",
        report.quality.roc_auc,
        ml_cli::thousands(report.rows.joined),
        report.drift.max_psi,
        report.verdict.as_str(),
        if report.reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", report.reasons.join("; "))
        }
    ));

    let history = history::read(&config.history_dir, config.date, progress);
    let html = html::render(&report, config.date, &history);
    let mut json = serde_json::to_vec_pretty(&report).context("cannot encode report.json")?;
    json.push(b'\n');
    let html_path = config.output_dir.join(REPORT_HTML);
    let json_path = config.output_dir.join(REPORT_JSON);
    // An old report.json must not stand beside a new report.html.
    ml_data::atomic::remove_if_exists(&json_path)?;
    ml_data::atomic::write_atomic(&html_path, html.as_bytes())?;
    ml_data::atomic::write_atomic(&json_path, &json)?;
    progress.log(format_args!(
        "wrote {} and {}",
        html_path.display(),
        json_path.display()
    ));
    Ok(Monitored {
        report,
        html_path,
        json_path,
        history,
    })
}

/// Where the model evaluated came from. A directory's run id is its run record's; what the
/// resolution left unknown is taken from `provenance.json`, which describes the same
/// `model.bin` (the checksums matched).
fn model_source(
    mut source: ModelSource,
    dir: &Path,
    provenance: &Provenance,
) -> anyhow::Result<ModelSource> {
    if source.registered_model.is_none() {
        let record =
            RunRecord::read(dir).context("cannot read the model directory's run record")?;
        source.run_id = record.map(|r| r.run_id);
    }
    let recorded = &provenance.model.source;
    if source.registered_model.is_none() && source.version.is_none() {
        source
            .registered_model
            .clone_from(&recorded.registered_model);
        source.version.clone_from(&recorded.version);
    }
    if source.run_id.is_none() {
        source.run_id.clone_from(&recorded.run_id);
    }
    Ok(source)
}

/// `dir/reference_profile.json`, parsed and checked.
fn read_profile(dir: &Path) -> anyhow::Result<ReferenceProfile> {
    let path = dir.join(PROFILE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MonitorError::NoProfile { path }.into())
        }
        Err(source) => return Err(DataError::Read { path, source }.into()),
    };
    let bad = |detail: String| MonitorError::BadProfile {
        path: path.clone(),
        detail,
    };
    let profile: ReferenceProfile =
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    profile.check().map_err(|e| bad(e.to_string()))?;
    Ok(profile)
}

/// The model's validation ROC AUC: `dir/metrics.json` when there is one, else the metric
/// of its MLflow run.
fn validation_roc_auc(
    dir: &Path,
    run_id: Option<&str>,
    client: Option<&Client>,
    progress: &Progress,
) -> anyhow::Result<f64> {
    let path = dir.join(METRICS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let metrics: Metrics =
                serde_json::from_slice(&bytes).map_err(|e| MonitorError::BadMetrics {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
            return metrics.roc_auc.ok_or_else(|| {
                MonitorError::NoValidationAuc {
                    reason: format!(
                        "{}: roc_auc is null (the validation split held one class)",
                        path.display()
                    ),
                }
                .into()
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(DataError::Read { path, source }.into()),
    }
    let no_metrics = format!("{} has no {METRICS_FILE}", dir.display());
    let (run_id, client) = match (run_id, client) {
        (Some(run_id), Some(client)) => (run_id, client),
        (None, _) => {
            return Err(MonitorError::NoValidationAuc {
                reason: format!("{no_metrics} and the model has no MLflow run"),
            }
            .into())
        }
        (Some(run_id), None) => {
            return Err(MonitorError::NoValidationAuc {
                reason: format!(
                    "{no_metrics}, and MLFLOW_TRACKING_URI is not set to ask run {run_id}"
                ),
            }
            .into())
        }
    };
    let run = client
        .get_run(run_id)
        .with_context(|| format!("cannot read the validation ROC AUC of run {run_id}"))?;
    let auc = run
        .metric(VALIDATION_AUC_METRIC)
        .ok_or_else(|| MonitorError::NoValidationAuc {
            reason: format!(
                "{no_metrics} and MLflow run {run_id} has no metric {VALIDATION_AUC_METRIC} (was the model validated?)"
            ),
        })?;
    progress.log(format_args!(
        "validation ROC AUC {auc:.4} from MLflow run {run_id}"
    ));
    Ok(auc)
}

/// The whole file, with the errors of the data readers.
/// `found`, when it is the checksum `provenance.json` records (`expected`); otherwise the
/// error `changed(found, expected)` makes.
fn vouched(
    found: String,
    expected: &str,
    changed: impl FnOnce(String, String) -> MonitorError,
) -> Result<String, MonitorError> {
    if found == expected {
        Ok(found)
    } else {
        Err(changed(found, expected.to_string()))
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut bytes = Vec::new();
    ml_data::io::open_input(path)?
        .read_to_end(&mut bytes)
        .map_err(|source| DataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

/// The features of `data.csv` and the SHA-256 of the very bytes parsed.
fn read_features(path: &Path) -> Result<(Frame, String), DataError> {
    let input = Sha256Reader::new(ml_data::io::open_input(path)?);
    let mut batches = FeatureBatches::from_reader(path, input, ml_data::io::DEFAULT_BATCH_ROWS)?;
    let mut frame = Frame::default();
    for batch in &mut batches {
        let batch = batch?.features;
        if frame.columns.is_empty() {
            frame = batch;
        } else {
            for (column, more) in frame.columns.iter_mut().zip(batch.columns) {
                column.extend(more);
            }
        }
    }
    // The iterator has ended: the reader has seen every byte.
    Ok((frame, batches.into_reader().finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_history_dirs_come_from_the_paths() {
        assert_eq!(
            date_of_dir(Path::new("/data/predictions/2026-01-05")),
            "2026-01-05".parse().ok()
        );
        assert_eq!(date_of_dir(Path::new("/data/predictions/latest")), None);
        assert_eq!(
            default_history_dir(Path::new("/data/monitoring/2026-01-05")),
            Path::new("/data/monitoring")
        );
        assert_eq!(default_history_dir(Path::new("out")), Path::new("."));
    }

    fn provenance(registered: Option<(&str, &str)>, alias: Option<&str>) -> Provenance {
        let text = serde_json::json!({
            "format": 1,
            "model": {
                "uri": "/models/2026-01-04",
                "registered_model": registered.map(|r| r.0),
                "version": registered.map(|r| r.1),
                "alias": alias,
                "run_id": null,
                "file": "model.bin",
                "sha256": "00",
            },
            "input": { "file": "data.csv", "sha256": "11", "rows": 1 },
            "predictions": { "file": "predictions.csv", "sha256": "22", "rows": 1 },
            "keyed_by": "id",
        });
        serde_json::from_value(text).expect("provenance")
    }

    #[test]
    fn the_default_model_is_the_version_that_scored_never_the_alias() {
        assert_eq!(
            model_of(&provenance(Some(("clf", "7")), Some("production"))),
            "models:/clf/7"
        );
        assert_eq!(model_of(&provenance(None, None)), "/models/2026-01-04");
    }
}
