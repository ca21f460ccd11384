//! The promotion stage: champion/challenger through MLflow registry aliases.
//!
//! The model that `ml-train` logged to MLflow (found through `MODEL_DIR/mlflow_run.json`)
//! becomes a new version of a registered model and takes the `challenger` alias. Both it and
//! the current `production` version are scored on the same `PROCESSED_DIR/val.csv`; the
//! challenger takes `production` only if there is none yet or it beats production's ROC AUC
//! by at least the configured margin. Manual mode stops at `challenger` for a person to look
//! first. The decision and both scores are recorded as tags on the new version, as tags on
//! the training run, and in `MODEL_DIR/promotion.json`.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ml_cli::Progress;
use ml_data::Labeled;
use ml_mlflow::{Client, ModelUri, ModelVersion, RunRecord, Tag, RUN_RECORD_FILE};
use ml_model::Model;
use ml_validate::score;
use serde::Serialize;

/// Registered model the pipeline's versions go to unless told otherwise.
pub const DEFAULT_REGISTERED_MODEL: &str = "heart-disease-classifier";
/// Alias of the newest candidate.
pub const CHALLENGER: &str = "challenger";
/// Alias of the version inference uses.
pub const PRODUCTION: &str = "production";
/// The validation split inside the input directory, the same file `ml-validate` scores.
pub use ml_validate::VAL_FILE;
/// The decision, written next to the model.
pub const PROMOTION_FILE: &str = "promotion.json";
/// Prefix of the tags this stage writes on model versions and runs.
pub const TAG_PREFIX: &str = "promotion.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Promote when the challenger wins.
    Auto,
    /// Register and alias `challenger`, never touch `production`.
    Manual,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::Manual => "manual",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The challenger now holds `production`.
    Promoted,
    /// Production stays where it was.
    Rejected,
    /// Manual mode: the challenger waits for a person.
    AwaitingReview,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Promoted => "promoted",
            Outcome::Rejected => "rejected",
            Outcome::AwaitingReview => "awaiting_review",
        })
    }
}

/// What one promotion run needs.
#[derive(Debug, Clone)]
pub struct PromoteConfig {
    pub input_dir: PathBuf,
    pub model_dir: PathBuf,
    pub registered_model: String,
    pub mode: Mode,
    /// ROC AUC margin by which the challenger must beat production, in `[0, 1]`.
    pub min_improvement: f64,
    /// Where production's files are downloaded to (cached per version).
    pub model_cache: PathBuf,
}

/// The incumbent the challenger was compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incumbent {
    pub version: String,
    /// `None` when it could not be scored (say, a model file of an older format).
    pub roc_auc: Option<f64>,
    /// Why it could not be scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything decided, as written to `promotion.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub registered_model: String,
    pub version: String,
    pub run_id: String,
    pub outcome: Outcome,
    pub reason: String,
    pub mode: Mode,
    pub min_improvement: f64,
    pub challenger_roc_auc: Option<f64>,
    pub production: Option<Incumbent>,
    pub n_val: usize,
    /// True when this run found the decision already made (an Airflow retry).
    pub rerun: bool,
}

/// The rule, apart from any I/O: the challenger wins if there is no production model, if
/// production cannot be scored, or if it is better by at least `min_improvement` (and
/// strictly better at all). An undefined challenger ROC AUC (one class in val.csv) never wins.
pub fn decide(
    mode: Mode,
    challenger: Option<f64>,
    production: Option<&Incumbent>,
    min_improvement: f64,
) -> (Outcome, String) {
    let fmt = |v: f64| format!("{v:.4}");
    let Some(challenger) = challenger else {
        return (
            Outcome::Rejected,
            "the challenger's ROC AUC is undefined (val.csv holds one class)".to_string(),
        );
    };
    let verdict = match production {
        None => (
            Outcome::Promoted,
            "there is no production model yet".to_string(),
        ),
        Some(Incumbent {
            version,
            roc_auc: None,
            error,
        }) => (
            Outcome::Promoted,
            format!(
                "production version {version} cannot be scored ({})",
                error.as_deref().unwrap_or("ROC AUC undefined")
            ),
        ),
        Some(Incumbent {
            version,
            roc_auc: Some(current),
            ..
        }) => {
            let gain = challenger - current;
            let beats = gain > 0.0 && gain >= min_improvement;
            let comparison = format!(
                "challenger ROC AUC {} vs production version {version} {} (gain {:+.4}, required {})",
                fmt(challenger),
                fmt(*current),
                gain,
                fmt(min_improvement)
            );
            if beats {
                (Outcome::Promoted, comparison)
            } else {
                (Outcome::Rejected, comparison)
            }
        }
    };
    match (mode, verdict) {
        (Mode::Manual, (_, reason)) => (
            Outcome::AwaitingReview,
            format!("manual mode: {reason}; set alias {PRODUCTION} by hand to roll out"),
        ),
        (Mode::Auto, verdict) => verdict,
    }
}

/// Registers, scores, decides and records. Needs the model directory of a run that
/// `ml-train` logged to MLflow.
pub fn run(
    client: &Client,
    config: &PromoteConfig,
    progress: &Progress,
) -> anyhow::Result<Decision> {
    if !(0.0..=1.0).contains(&config.min_improvement) {
        bail!(
            "--min-improvement must be between 0 and 1 (a ROC AUC margin), got {}",
            config.min_improvement
        );
    }
    let record = RunRecord::read(&config.model_dir)?.with_context(|| {
        format!(
            "{}: no {RUN_RECORD_FILE}; train this model with MLFLOW_TRACKING_URI set so it is logged to MLflow",
            config.model_dir.display()
        )
    })?;
    let challenger_model = Model::load_dir(&config.model_dir)?;
    let val_path = config.input_dir.join(VAL_FILE);
    let val = progress.step(
        format_args!("read {}", val_path.display()),
        |r: &Result<Labeled, _>| r.as_ref().map_or(0, Labeled::n_rows),
        || ml_data::io::read_labeled(&val_path),
    )?;
    let challenger = score(&challenger_model, &val, &val_path)?;
    progress.log(format_args!(
        "challenger (run {}) ROC AUC on {}: {}",
        record.run_id,
        val_path.display(),
        show(challenger.roc_auc)
    ));

    let name = &config.registered_model;
    client.ensure_registered_model(
        name,
        "Heart disease classifier trained by the weekly train_model DAG",
    )?;
    let (version, rerun) = register(client, name, &record, progress)?;
    client.set_alias(name, CHALLENGER, &version.version)?;
    progress.log(format_args!(
        "{name} version {} is {CHALLENGER}",
        version.version
    ));

    let current = client.find_model_version_by_alias(name, PRODUCTION)?;
    let decision = match current {
        // An Airflow retry after the alias already moved: keep what was decided.
        Some(current) if current.version == version.version => Decision {
            registered_model: name.clone(),
            version: version.version.clone(),
            run_id: record.run_id.clone(),
            outcome: Outcome::Promoted,
            reason: version
                .tag(&format!("{TAG_PREFIX}reason"))
                .unwrap_or("this version already holds production")
                .to_string(),
            mode: config.mode,
            min_improvement: config.min_improvement,
            challenger_roc_auc: challenger.roc_auc,
            production: None,
            n_val: val.n_rows(),
            rerun: true,
        },
        current => {
            let incumbent = current.map(|current| {
                score_incumbent(client, name, &current, &val, &val_path, config, progress)
            });
            let (outcome, reason) = decide(
                config.mode,
                challenger.roc_auc,
                incumbent.as_ref(),
                config.min_improvement,
            );
            Decision {
                registered_model: name.clone(),
                version: version.version.clone(),
                run_id: record.run_id.clone(),
                outcome,
                reason,
                mode: config.mode,
                min_improvement: config.min_improvement,
                challenger_roc_auc: challenger.roc_auc,
                production: incumbent,
                n_val: val.n_rows(),
                rerun: rerun && version.tag(&format!("{TAG_PREFIX}outcome")).is_some(),
            }
        }
    };

    if decision.outcome == Outcome::Promoted && !decision.rerun {
        client.set_alias(name, PRODUCTION, &decision.version)?;
        if let Some(old) = &decision.production {
            client.set_model_version_tag(
                name,
                &old.version,
                &format!("{TAG_PREFIX}replaced_by"),
                &decision.version,
            )?;
        }
    }
    if !decision.rerun {
        for tag in decision_tags(&decision, &val_path) {
            client.set_model_version_tag(name, &decision.version, &tag.key, &tag.value)?;
        }
        let run_tags = [
            Tag::new("registered_model_name", name),
            Tag::new("registered_model_version", &decision.version),
            Tag::new(format!("{TAG_PREFIX}outcome"), decision.outcome),
        ];
        client.log_batch(&record.run_id, &[], &[], &run_tags)?;
    }
    let text = serde_json::to_string_pretty(&decision).context("cannot encode promotion.json")?;
    let path = config.model_dir.join(PROMOTION_FILE);
    ml_data::atomic::write_atomic(&path, format!("{text}\n").as_bytes())?;
    progress.log(format_args!("wrote {}", path.display()));
    Ok(decision)
}

/// The version registered for this run: found again on a re-run, created otherwise.
fn register(
    client: &Client,
    name: &str,
    record: &RunRecord,
    progress: &Progress,
) -> anyhow::Result<(ModelVersion, bool)> {
    // Names and run ids are quoted in MLflow's filter language; a quote inside would need
    // escaping rules MLflow does not document, so such names simply skip the lookup.
    if !name.contains('\'') && !record.run_id.contains('\'') {
        let filter = format!("name='{name}' and run_id='{}'", record.run_id);
        let mut existing = client.search_model_versions(&filter, 100)?;
        existing.sort_by_key(|v| v.version.parse::<u64>().unwrap_or(0));
        if let Some(found) = existing.into_iter().next() {
            progress.log(format_args!(
                "run {} is already {name} version {} (re-run)",
                record.run_id, found.version
            ));
            return Ok((found, true));
        }
    }
    let tags = [
        Tag::new("run_id", &record.run_id),
        Tag::new("experiment", &record.experiment_name),
    ];
    let version =
        client.create_model_version(name, &record.model_source(), &record.run_id, &tags)?;
    if version.status != "READY" {
        bail!(
            "{name} version {} is {} instead of READY after registration",
            version.version,
            version.status
        );
    }
    progress.log(format_args!(
        "registered {} as {name} version {}",
        record.model_source(),
        version.version
    ));
    Ok((version, false))
}

fn score_incumbent(
    client: &Client,
    name: &str,
    current: &ModelVersion,
    val: &Labeled,
    val_path: &Path,
    config: &PromoteConfig,
    progress: &Progress,
) -> Incumbent {
    let uri = ModelUri::Version {
        name: name.to_string(),
        version: current.version.clone(),
    };
    let scored = (|| -> anyhow::Result<Option<f64>> {
        let fetched = client.fetch_model(&uri, &config.model_cache)?;
        let model = Model::load_dir(&fetched.dir)?;
        Ok(score(&model, val, val_path)?.roc_auc)
    })();
    match scored {
        Ok(roc_auc) => {
            progress.log(format_args!(
                "production ({uri}) ROC AUC on the same data: {}",
                show(roc_auc)
            ));
            Incumbent {
                version: current.version.clone(),
                roc_auc,
                error: None,
            }
        }
        Err(err) => {
            let message = format!("{err:#}");
            progress.log(format_args!(
                "production ({uri}) cannot be scored: {message}"
            ));
            Incumbent {
                version: current.version.clone(),
                roc_auc: None,
                error: Some(message),
            }
        }
    }
}

fn show(roc_auc: Option<f64>) -> String {
    roc_auc.map_or_else(|| "undefined".to_string(), |v| format!("{v:.4}"))
}

/// The tags recording a decision on the model version.
fn decision_tags(decision: &Decision, val_path: &Path) -> Vec<Tag> {
    let t = |key: &str, value: String| Tag::new(format!("{TAG_PREFIX}{key}"), value);
    let production = decision.production.as_ref();
    vec![
        t("outcome", decision.outcome.to_string()),
        t("reason", decision.reason.clone()),
        t("mode", decision.mode.to_string()),
        t("min_improvement", decision.min_improvement.to_string()),
        t("challenger_roc_auc", show(decision.challenger_roc_auc)),
        t(
            "production_version",
            production.map_or_else(|| "none".to_string(), |p| p.version.clone()),
        ),
        t(
            "production_roc_auc",
            production.map_or_else(|| "none".to_string(), |p| show(p.roc_auc)),
        ),
        t("val_file", val_path.display().to_string()),
        t("n_val", decision.n_val.to_string()),
    ]
}

/// The decision as a few lines for a person reading the task log.
pub fn render(decision: &Decision) -> String {
    let production = decision.production.as_ref().map_or_else(
        || "none".to_string(),
        |p| format!("version {} (ROC AUC {})", p.version, show(p.roc_auc)),
    );
    format!(
        "model       {} version {}\noutcome     {}{}\nchallenger  ROC AUC {}\nproduction  {production}\nreason      {}\n",
        decision.registered_model,
        decision.version,
        decision.outcome,
        if decision.rerun { " (re-run, unchanged)" } else { "" },
        show(decision.challenger_roc_auc),
        decision.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incumbent(roc_auc: Option<f64>) -> Incumbent {
        Incumbent {
            version: "3".into(),
            roc_auc,
            error: roc_auc
                .is_none()
                .then(|| "model file of format 0".to_string()),
        }
    }

    #[test]
    fn first_model_is_promoted() {
        let (outcome, reason) = decide(Mode::Auto, Some(0.8), None, 0.01);
        assert_eq!(outcome, Outcome::Promoted);
        assert_eq!(reason, "there is no production model yet");
    }

    #[test]
    fn challenger_must_beat_production_by_the_margin() {
        let prod = incumbent(Some(0.90));
        assert_eq!(
            decide(Mode::Auto, Some(0.92), Some(&prod), 0.01).0,
            Outcome::Promoted
        );
        assert_eq!(
            decide(Mode::Auto, Some(0.905), Some(&prod), 0.01).0,
            Outcome::Rejected
        );
        assert_eq!(
            decide(Mode::Auto, Some(0.89), Some(&prod), 0.0).0,
            Outcome::Rejected
        );
        // A zero margin still needs a strict improvement: a tie keeps production.
        assert_eq!(
            decide(Mode::Auto, Some(0.90), Some(&prod), 0.0).0,
            Outcome::Rejected
        );
        let (_, reason) = decide(Mode::Auto, Some(0.92), Some(&prod), 0.01);
        assert_eq!(
            reason,
            "challenger ROC AUC 0.9200 vs production version 3 0.9000 (gain +0.0200, required 0.0100)"
        );
    }

    #[test]
    fn an_unscorable_production_model_is_replaced() {
        let (outcome, reason) = decide(Mode::Auto, Some(0.7), Some(&incumbent(None)), 0.05);
        assert_eq!(outcome, Outcome::Promoted);
        assert!(reason.contains("model file of format 0"), "{reason}");
    }

    #[test]
    fn an_undefined_challenger_score_never_wins() {
        assert_eq!(decide(Mode::Auto, None, None, 0.0).0, Outcome::Rejected);
    }

    #[test]
    fn manual_mode_stops_at_challenger_but_says_what_auto_would_do() {
        let (outcome, reason) = decide(Mode::Manual, Some(0.95), Some(&incumbent(Some(0.9))), 0.0);
        assert_eq!(outcome, Outcome::AwaitingReview);
        assert!(
            reason.starts_with("manual mode: challenger ROC AUC 0.9500"),
            "{reason}"
        );
        assert_eq!(
            decide(Mode::Manual, Some(0.95), None, 0.0).0,
            Outcome::AwaitingReview
        );
    }
}
