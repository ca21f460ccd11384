//! The promotion stage: champion/challenger through MLflow registry aliases, failing closed.
//!
//! The model that `ml-train` logged to MLflow (found through `MODEL_DIR/mlflow_run.json`)
//! becomes a new version of a registered model and takes the `challenger` alias. Both it and
//! the current `production` version are scored on the same `PROCESSED_DIR/val.csv`, and
//! `production` moves to the challenger only when
//!
//! - the challenger's ROC AUC clears an absolute floor (`--min-roc-auc`), and
//! - there is positively no production alias yet, or production was downloaded, loaded and
//!   scored on the same rows and the lower end of the 95% paired-bootstrap interval of the
//!   ROC AUC difference (challenger minus production) is above `--min-improvement`.
//!
//! Anything that stops production from being judged (MLflow unreachable, a 5xx, a timeout, a
//! refused password) fails the stage with exit status 75 (retry later) and moves nothing. The
//! one exception is a production model that this build can positively not use (another model
//! format version, a checksum mismatch, not a model file at all), checked on a fresh download
//! and not only on a cached copy: then the challenger replaces it if it clears the floor, and
//! the decision says so (`production_unusable`), which the DAG turns into an alert.
//!
//! Manual mode stops at `challenger` for a person to look first. The decision, both scores
//! and the interval are recorded as tags on the new version, as tags on the training run, and
//! in `MODEL_DIR/promotion.json`.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ml_cli::Progress;
use ml_data::Labeled;
use ml_mlflow::{Client, FetchedModel, ModelUri, ModelVersion, RunRecord, Tag, RUN_RECORD_FILE};
use ml_model::evaluate::{paired_auc_difference, score, Scored};
use ml_model::{AucDifference, BootstrapConfig, Metrics, Model, ModelError};
use serde::{Deserialize, Serialize};

pub mod review;
pub mod set_production;

pub use review::{review, Answer, Review, ReviewConfig};
pub use set_production::{set_production, ProductionChange, SetProductionConfig};

/// Registered model the pipeline's versions go to unless told otherwise.
pub const DEFAULT_REGISTERED_MODEL: &str = "heart-disease-classifier";
/// Alias of the newest candidate.
pub const CHALLENGER: &str = "challenger";
/// Alias of the version inference uses.
pub const PRODUCTION: &str = "production";
/// The validation split inside the input directory, the same file `ml-validate` scores.
pub use ml_data::split::VAL_FILE;
/// The decision, written next to the model.
pub const PROMOTION_FILE: &str = "promotion.json";
/// Prefix of the tags this stage writes on model versions and runs.
pub const TAG_PREFIX: &str = "promotion.";
/// The floor every model must clear, the first one included (the Variable
/// `promotion_min_roc_auc` defaults to the same value).
pub const DEFAULT_MIN_ROC_AUC: f64 = 0.75;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The thresholds a challenger must clear.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rule {
    /// The lower end of the interval of `challenger - production` ROC AUC must be above this.
    pub min_improvement: f64,
    /// The challenger's own ROC AUC must be at least this.
    pub min_roc_auc: f64,
}

impl Rule {
    fn check(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.min_improvement) {
            bail!(
                "--min-improvement must be between 0 and 1 (a ROC AUC margin), got {}",
                self.min_improvement
            );
        }
        if !(0.0..=1.0).contains(&self.min_roc_auc) {
            bail!(
                "--min-roc-auc must be between 0 and 1, got {}",
                self.min_roc_auc
            );
        }
        Ok(())
    }
}

/// What one promotion run needs.
#[derive(Debug, Clone)]
pub struct PromoteConfig {
    pub input_dir: PathBuf,
    pub model_dir: PathBuf,
    pub registered_model: String,
    pub mode: Mode,
    pub rule: Rule,
    pub bootstrap: BootstrapConfig,
    /// Where production's files are downloaded to (cached per version).
    pub model_cache: PathBuf,
}

/// The production version the challenger was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incumbent {
    pub version: String,
    pub run_id: String,
    /// The MLflow experiment of its training run (for links to the run's page).
    #[serde(default)]
    pub experiment_id: Option<String>,
    /// Its metrics on the same rows; `None` when it is unusable.
    pub metrics: Option<Metrics>,
    /// Why this build cannot use it at all (set only after a fresh download).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unusable: Option<String>,
}

impl Incumbent {
    fn roc_auc(&self) -> Option<f64> {
        self.metrics.as_ref().and_then(|m| m.roc_auc)
    }
}

/// Everything decided, as written to `promotion.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub registered_model: String,
    pub version: String,
    pub run_id: String,
    /// The MLflow experiment of the challenger's training run.
    #[serde(default)]
    pub experiment_id: Option<String>,
    pub outcome: Outcome,
    pub reason: String,
    pub mode: Mode,
    pub min_improvement: f64,
    pub min_roc_auc: f64,
    pub challenger_roc_auc: Option<f64>,
    pub challenger_metrics: Metrics,
    pub production: Option<Incumbent>,
    /// The paired-bootstrap interval of `challenger - production` ROC AUC, when both scored.
    pub difference: Option<AucDifference>,
    /// True when production was replaced because this build cannot use it: an alert goes out.
    pub production_unusable: bool,
    pub n_val: usize,
    /// True when this run found the decision already made (an Airflow retry).
    pub rerun: bool,
    /// Manual mode: the person's answer, once `ml-promote review` has recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

/// The rule, apart from any I/O.
///
/// The challenger wins only if its ROC AUC is defined and at least `rule.min_roc_auc`, and
/// either there is no production model, production is unusable by this build, or the lower
/// end of the interval of the difference is above `rule.min_improvement`. Everything else,
/// an undefined difference included, keeps production.
pub fn decide(
    mode: Mode,
    challenger: Option<f64>,
    production: Option<&Incumbent>,
    difference: Option<&AucDifference>,
    rule: &Rule,
) -> (Outcome, String) {
    let verdict = verdict(challenger, production, difference, rule);
    match (mode, verdict) {
        (Mode::Manual, (_, reason)) => (
            Outcome::AwaitingReview,
            format!("manual mode: {reason}; a person decides whether {PRODUCTION} moves"),
        ),
        (Mode::Auto, verdict) => verdict,
    }
}

fn verdict(
    challenger: Option<f64>,
    production: Option<&Incumbent>,
    difference: Option<&AucDifference>,
    rule: &Rule,
) -> (Outcome, String) {
    let Some(challenger) = challenger else {
        return (
            Outcome::Rejected,
            "the challenger's ROC AUC is undefined (val.csv holds one class)".to_string(),
        );
    };
    if challenger < rule.min_roc_auc {
        return (
            Outcome::Rejected,
            format!(
                "challenger ROC AUC {challenger:.4} is below the floor {:.4}",
                rule.min_roc_auc
            ),
        );
    }
    let Some(production) = production else {
        return (
            Outcome::Promoted,
            format!(
                "there is no production model yet; challenger ROC AUC {challenger:.4} clears the floor {:.4}",
                rule.min_roc_auc
            ),
        );
    };
    let version = &production.version;
    if let Some(why) = &production.unusable {
        return (
            Outcome::Promoted,
            format!(
                "production version {version} is unusable by this build ({why}); challenger ROC AUC {challenger:.4} clears the floor {:.4}",
                rule.min_roc_auc
            ),
        );
    }
    let (Some(current), Some(d)) = (production.roc_auc(), difference) else {
        return (
            Outcome::Rejected,
            format!("the ROC AUC difference to production version {version} is undefined on these rows; production stays"),
        );
    };
    let comparison = format!(
        "challenger ROC AUC {challenger:.4} vs production version {version} {current:.4}: difference {:+.4}, {:.0}% interval [{:+.4}, {:+.4}], lower end must be above {:+.4}",
        d.estimate,
        d.confidence * 100.0,
        d.lower,
        d.upper,
        rule.min_improvement
    );
    if d.lower > rule.min_improvement {
        (Outcome::Promoted, comparison)
    } else {
        (Outcome::Rejected, comparison)
    }
}

/// A request this stage will not carry out as asked (a review of a decision that is not
/// awaiting one, an approval whose comparison is out of date, an unknown version): nothing
/// was changed, and a retry would not change the answer (exit status 65).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// How an error of this stage maps to its exit status (ml-cli): MLflow unreachable or
/// failing is transient, 75 (nothing moved, retry later); a bad val.csv or an unreadable
/// challenger is bad input, 65, as is a refused review or production change.
pub const FAILURES: &[ml_cli::Rule] = &[
    ml_cli::bad_input::<Refused>,
    ml_cli::bad_input::<ml_data::DataError>,
    ml_cli::bad_input::<ModelError>,
    |cause| ml_cli::transient_when(cause, ml_mlflow::Error::is_transient),
];

/// Registers, scores, decides and records. Needs the model directory of a run that
/// `ml-train` logged to MLflow.
pub fn run(
    client: &Client,
    config: &PromoteConfig,
    progress: &Progress,
) -> anyhow::Result<Decision> {
    config.rule.check()?;
    if config.bootstrap.resamples < BootstrapConfig::MIN_RESAMPLES {
        bail!(
            "--bootstrap-resamples must be at least {}, got {}",
            BootstrapConfig::MIN_RESAMPLES,
            config.bootstrap.resamples
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
    let challenger = scored(&challenger_model, &val, &val_path)?;
    progress.log(format_args!(
        "challenger (run {}) ROC AUC on {}: {}",
        record.run_id,
        val_path.display(),
        show(challenger.metrics.roc_auc)
    ));

    let name = &config.registered_model;
    client.ensure_registered_model(
        name,
        "Heart disease classifier trained by the weekly train_model DAG",
    )?;
    let (version, rerun) = register(client, name, &record, progress)?;

    let current = production_version(client, name)?;
    let base = Decision {
        registered_model: name.clone(),
        version: version.version.clone(),
        run_id: record.run_id.clone(),
        experiment_id: Some(record.experiment_id.clone()),
        outcome: Outcome::Rejected,
        reason: String::new(),
        mode: config.mode,
        min_improvement: config.rule.min_improvement,
        min_roc_auc: config.rule.min_roc_auc,
        challenger_roc_auc: challenger.metrics.roc_auc,
        challenger_metrics: challenger.metrics.clone(),
        production: None,
        difference: None,
        production_unusable: false,
        n_val: val.n_rows(),
        rerun: false,
        review: None,
    };
    let decision = match current {
        // An Airflow retry after the alias already moved: keep what was decided.
        Some(current) if current.version == version.version => Decision {
            outcome: Outcome::Promoted,
            reason: version
                .tag(&format!("{TAG_PREFIX}reason"))
                .unwrap_or("this version already holds production")
                .to_string(),
            rerun: true,
            ..base
        },
        current => {
            let incumbent = match current {
                Some(current) => Some(judge_incumbent(
                    client, name, &current, &val, &val_path, config, progress,
                )?),
                None => None,
            };
            let difference = match &incumbent {
                Some((_, Some(probabilities))) => paired_auc_difference(
                    &val.target,
                    &challenger.probabilities,
                    probabilities,
                    &config.bootstrap,
                )?,
                _ => None,
            };
            let incumbent = incumbent.map(|(incumbent, _)| incumbent);
            let (outcome, reason) = decide(
                config.mode,
                challenger.metrics.roc_auc,
                incumbent.as_ref(),
                difference.as_ref(),
                &config.rule,
            );
            Decision {
                outcome,
                reason,
                production_unusable: outcome == Outcome::Promoted
                    && incumbent.as_ref().is_some_and(|i| i.unusable.is_some()),
                production: incumbent,
                difference,
                rerun: rerun && version.tag(&format!("{TAG_PREFIX}outcome")).is_some(),
                ..base
            }
        }
    };
    if let Some(d) = &decision.difference {
        progress.log(format_args!(
            "ROC AUC difference (challenger - production): {:+.4}, {:.0}% interval [{:+.4}, {:+.4}] from {} paired resamples (seed {})",
            d.estimate,
            d.confidence * 100.0,
            d.lower,
            d.upper,
            d.valid_resamples,
            d.seed
        ));
    }

    // Aliases move only once the decision is made: a failure above leaves the registry's
    // aliases as they were (the registered version is found again by the retry).
    client.set_alias(name, CHALLENGER, &decision.version)?;
    progress.log(format_args!(
        "{name} version {} is {CHALLENGER}",
        decision.version
    ));
    if decision.outcome == Outcome::Promoted && !decision.rerun {
        let old = decision.production.as_ref().map(|p| p.version.as_str());
        move_production(client, name, old, &decision.version)?;
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
    write_decision(&config.model_dir, &decision, progress)?;
    Ok(decision)
}

/// Points `production` at `version` and tags the version it replaced (if any) with
/// `promotion.replaced_by`: every move of production, automatic or by hand, leaves that trail.
pub(crate) fn move_production(
    client: &Client,
    name: &str,
    replaced: Option<&str>,
    version: &str,
) -> anyhow::Result<()> {
    client.set_alias(name, PRODUCTION, version)?;
    if let Some(old) = replaced {
        client.set_model_version_tag(name, old, &format!("{TAG_PREFIX}replaced_by"), version)?;
    }
    Ok(())
}

/// Writes `MODEL_DIR/promotion.json` (by rename: a reader sees the old decision or the new).
pub(crate) fn write_decision(
    model_dir: &Path,
    decision: &Decision,
    progress: &Progress,
) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(decision).context("cannot encode promotion.json")?;
    let path = model_dir.join(PROMOTION_FILE);
    ml_data::atomic::write_atomic(&path, format!("{text}\n").as_bytes())?;
    progress.log(format_args!("wrote {}", path.display()));
    Ok(())
}

fn scored(model: &Model, val: &Labeled, val_path: &Path) -> anyhow::Result<Scored> {
    score(model, val).with_context(|| format!("{}: cannot score", val_path.display()))
}

/// The current production version, or `None` only when the registered model positively has
/// no production alias: a lookup that says "not found" is checked against the model's own
/// alias list, so an odd answer cannot pass for "no production yet".
pub(crate) fn production_version(
    client: &Client,
    name: &str,
) -> anyhow::Result<Option<ModelVersion>> {
    if let Some(version) = client.find_model_version_by_alias(name, PRODUCTION)? {
        return Ok(Some(version));
    }
    let model = client.get_registered_model(name)?.with_context(|| {
        format!("registered model {name} vanished while checking its {PRODUCTION} alias")
    })?;
    if let Some(entry) = model.aliases.iter().find(|a| a.alias == PRODUCTION) {
        bail!(
            "registered model {name} lists alias {PRODUCTION} -> version {} but the alias lookup found nothing; not deciding",
            entry.version
        );
    }
    Ok(None)
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

/// A model error that says this build can never use the file, however often it is fetched.
fn is_unusable(err: &ModelError) -> bool {
    matches!(
        err,
        ModelError::FormatVersion { .. }
            | ModelError::Corrupt { .. }
            | ModelError::NotAModel { .. }
            | ModelError::Truncated { .. }
            | ModelError::UnknownKind { .. }
            | ModelError::SchemaMismatch { .. }
    )
}

/// Downloads a registry version and loads it. The outer error says it could not be reached;
/// the inner one that it was reached and this build cannot use it. A cached copy that does
/// not load is removed and downloaded again, so only the registry's own bytes are judged.
pub(crate) fn fetch_and_load(
    client: &Client,
    uri: &ModelUri,
    cache: &Path,
    progress: &Progress,
) -> anyhow::Result<Result<Model, ModelError>> {
    let fetch = || -> anyhow::Result<FetchedModel> {
        client
            .fetch_model(uri, cache)
            .with_context(|| format!("cannot fetch {uri}; nothing was changed"))
    };
    let mut fetched = fetch()?;
    let mut loaded = Model::load_dir(&fetched.dir);
    if fetched.from_cache && matches!(&loaded, Err(e) if is_unusable(e)) {
        // A cached copy may have been damaged on this disk: judge the registry's own bytes.
        progress.log(format_args!(
            "cached copy of {uri} is unusable; downloading it again"
        ));
        std::fs::remove_dir_all(&fetched.dir)
            .with_context(|| format!("{}: cannot remove the cached copy", fetched.dir.display()))?;
        fetched = fetch()?;
        loaded = Model::load_dir(&fetched.dir);
    }
    match loaded {
        Ok(model) => Ok(Ok(model)),
        Err(err) if is_unusable(&err) => Ok(Err(err)),
        Err(err) => {
            Err(anyhow::Error::new(err).context(format!("cannot load {uri}; nothing was changed")))
        }
    }
}

/// Downloads, loads and scores production on the same rows. Any failure to reach it is an
/// error (the caller fails the stage); only a model this build positively cannot use, as
/// downloaded afresh from the registry, comes back as `unusable`.
fn judge_incumbent(
    client: &Client,
    name: &str,
    current: &ModelVersion,
    val: &Labeled,
    val_path: &Path,
    config: &PromoteConfig,
    progress: &Progress,
) -> anyhow::Result<(Incumbent, Option<Vec<f64>>)> {
    let uri = ModelUri::Version {
        name: name.to_string(),
        version: current.version.clone(),
    };
    let experiment_id = Some(client.get_run(&current.run_id)?.info.experiment_id);
    let model = match fetch_and_load(client, &uri, &config.model_cache, progress)
        .with_context(|| format!("production ({uri}) cannot be judged"))?
    {
        Ok(model) => model,
        Err(err) => {
            let why = err.to_string();
            progress.log(format_args!("production ({uri}) is unusable: {why}"));
            return Ok((
                Incumbent {
                    version: current.version.clone(),
                    run_id: current.run_id.clone(),
                    experiment_id,
                    metrics: None,
                    unusable: Some(why),
                },
                None,
            ));
        }
    };
    let production = scored(&model, val, val_path)
        .with_context(|| format!("cannot score production ({uri}); nothing was changed"))?;
    progress.log(format_args!(
        "production ({uri}) ROC AUC on the same data: {}",
        show(production.metrics.roc_auc)
    ));
    Ok((
        Incumbent {
            version: current.version.clone(),
            run_id: current.run_id.clone(),
            experiment_id,
            metrics: Some(production.metrics),
            unusable: None,
        },
        Some(production.probabilities),
    ))
}

pub(crate) fn show(roc_auc: Option<f64>) -> String {
    roc_auc.map_or_else(|| "undefined".to_string(), |v| format!("{v:.4}"))
}

/// The tags recording a decision on the model version.
fn decision_tags(decision: &Decision, val_path: &Path) -> Vec<Tag> {
    let t = |key: &str, value: String| Tag::new(format!("{TAG_PREFIX}{key}"), value);
    let production = decision.production.as_ref();
    let none = || "none".to_string();
    let d = decision.difference.as_ref();
    vec![
        t("outcome", decision.outcome.to_string()),
        t("reason", decision.reason.clone()),
        t("mode", decision.mode.to_string()),
        t("min_improvement", decision.min_improvement.to_string()),
        t("min_roc_auc", decision.min_roc_auc.to_string()),
        t("challenger_roc_auc", show(decision.challenger_roc_auc)),
        t(
            "production_version",
            production.map_or_else(none, |p| p.version.clone()),
        ),
        t(
            "production_roc_auc",
            production.map_or_else(none, |p| show(p.roc_auc())),
        ),
        t(
            "auc_difference",
            d.map_or_else(none, |d| format!("{:.4}", d.estimate)),
        ),
        t(
            "auc_difference_interval",
            d.map_or_else(none, |d| format!("[{:.4}, {:.4}]", d.lower, d.upper)),
        ),
        t(
            "bootstrap",
            d.map_or_else(none, |d| {
                format!(
                    "{} paired resamples, seed {}, {:.0}% percentile interval",
                    d.resamples,
                    d.seed,
                    d.confidence * 100.0
                )
            }),
        ),
        t(
            "production_unusable",
            decision.production_unusable.to_string(),
        ),
        t("val_file", val_path.display().to_string()),
        t("n_val", decision.n_val.to_string()),
    ]
}

/// The decision as a few lines for a person reading the task log.
pub fn render(decision: &Decision) -> String {
    let production = decision.production.as_ref().map_or_else(
        || "none".to_string(),
        |p| match &p.unusable {
            Some(why) => format!("version {} (unusable: {why})", p.version),
            None => format!("version {} (ROC AUC {})", p.version, show(p.roc_auc())),
        },
    );
    let difference = decision.difference.as_ref().map_or_else(
        || "none".to_string(),
        |d| {
            format!(
                "{:+.4}, {:.0}% interval [{:+.4}, {:+.4}]",
                d.estimate,
                d.confidence * 100.0,
                d.lower,
                d.upper
            )
        },
    );
    let review = decision.review.as_ref().map_or_else(String::new, |r| {
        format!(
            "review      {} by {} at {}{}\n",
            r.answer.verdict(),
            r.by.as_deref().unwrap_or("nobody"),
            r.responded_at,
            if r.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", r.comment)
            }
        )
    });
    format!(
        "model       {} version {}\noutcome     {}{}\nchallenger  ROC AUC {} (floor {:.4})\nproduction  {production}\ndifference  {difference} (lower end must be above {:+.4})\nreason      {}\n{review}",
        decision.registered_model,
        decision.version,
        decision.outcome,
        if decision.rerun { " (re-run, unchanged)" } else { "" },
        show(decision.challenger_roc_auc),
        decision.min_roc_auc,
        decision.min_improvement,
        decision.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule {
        min_improvement: 0.0,
        min_roc_auc: 0.75,
    };

    fn incumbent(roc_auc: Option<f64>) -> Incumbent {
        Incumbent {
            version: "3".into(),
            run_id: "r3".into(),
            experiment_id: Some("1".into()),
            metrics: roc_auc.map(|auc| Metrics {
                accuracy: 0.8,
                precision: 0.8,
                recall: 0.8,
                f1: 0.8,
                roc_auc: Some(auc),
                log_loss: 0.4,
                n_val: 500,
            }),
            unusable: None,
        }
    }

    fn diff(lower: f64, upper: f64) -> AucDifference {
        AucDifference {
            estimate: (lower + upper) / 2.0,
            lower,
            upper,
            confidence: 0.95,
            resamples: 2000,
            valid_resamples: 2000,
            seed: 1,
        }
    }

    #[test]
    fn the_first_model_must_clear_the_floor() {
        let (outcome, reason) = decide(Mode::Auto, Some(0.8), None, None, &RULE);
        assert_eq!(outcome, Outcome::Promoted);
        assert_eq!(
            reason,
            "there is no production model yet; challenger ROC AUC 0.8000 clears the floor 0.7500"
        );
        let (outcome, reason) = decide(Mode::Auto, Some(0.7), None, None, &RULE);
        assert_eq!(outcome, Outcome::Rejected);
        assert_eq!(
            reason,
            "challenger ROC AUC 0.7000 is below the floor 0.7500"
        );
    }

    #[test]
    fn the_lower_end_of_the_interval_must_be_above_the_margin() {
        let prod = incumbent(Some(0.85));
        let outcome = |d: AucDifference, margin: f64| {
            let rule = Rule {
                min_improvement: margin,
                ..RULE
            };
            decide(Mode::Auto, Some(0.88), Some(&prod), Some(&d), &rule).0
        };
        assert_eq!(outcome(diff(0.001, 0.05), 0.0), Outcome::Promoted);
        // A better point estimate is not enough while the interval still holds zero.
        assert_eq!(outcome(diff(-0.01, 0.07), 0.0), Outcome::Rejected);
        // "Above", not "at": a lower end of exactly the margin keeps production.
        assert_eq!(outcome(diff(0.0, 0.04), 0.0), Outcome::Rejected);
        assert_eq!(outcome(diff(0.01, 0.05), 0.02), Outcome::Rejected);
        assert_eq!(outcome(diff(0.03, 0.05), 0.02), Outcome::Promoted);
        let (_, reason) = decide(
            Mode::Auto,
            Some(0.88),
            Some(&prod),
            Some(&diff(0.01, 0.05)),
            &RULE,
        );
        assert_eq!(
            reason,
            "challenger ROC AUC 0.8800 vs production version 3 0.8500: difference +0.0300, 95% interval [+0.0100, +0.0500], lower end must be above +0.0000"
        );
    }

    #[test]
    fn a_better_challenger_below_the_floor_is_rejected() {
        let prod = incumbent(Some(0.6));
        let (outcome, reason) = decide(
            Mode::Auto,
            Some(0.7),
            Some(&prod),
            Some(&diff(0.05, 0.15)),
            &RULE,
        );
        assert_eq!(outcome, Outcome::Rejected);
        assert!(reason.contains("below the floor"), "{reason}");
    }

    #[test]
    fn only_an_unusable_production_model_is_replaced_without_a_comparison() {
        let mut prod = incumbent(None);
        prod.unusable = Some("model file format version 1 is not supported".into());
        let (outcome, reason) = decide(Mode::Auto, Some(0.8), Some(&prod), None, &RULE);
        assert_eq!(outcome, Outcome::Promoted);
        assert!(
            reason.starts_with(
                "production version 3 is unusable by this build (model file format version 1"
            ),
            "{reason}"
        );
        // ... and still only by a challenger that clears the floor.
        assert_eq!(
            decide(Mode::Auto, Some(0.7), Some(&prod), None, &RULE).0,
            Outcome::Rejected
        );
        // A production model that was scored but whose difference is undefined stays.
        assert_eq!(
            decide(
                Mode::Auto,
                Some(0.9),
                Some(&incumbent(Some(0.8))),
                None,
                &RULE
            )
            .0,
            Outcome::Rejected
        );
    }

    #[test]
    fn an_undefined_challenger_score_never_wins() {
        assert_eq!(
            decide(Mode::Auto, None, None, None, &RULE).0,
            Outcome::Rejected
        );
    }

    #[test]
    fn manual_mode_stops_at_challenger_but_says_what_auto_would_do() {
        let (outcome, reason) = decide(
            Mode::Manual,
            Some(0.95),
            Some(&incumbent(Some(0.9))),
            Some(&diff(0.02, 0.08)),
            &RULE,
        );
        assert_eq!(outcome, Outcome::AwaitingReview);
        assert!(
            reason.starts_with("manual mode: challenger ROC AUC 0.9500"),
            "{reason}"
        );
        assert_eq!(
            decide(Mode::Manual, Some(0.95), None, None, &RULE).0,
            Outcome::AwaitingReview
        );
    }

    #[test]
    fn errors_map_to_exit_statuses() {
        use ml_cli::{classify, Failure};
        let data = anyhow::Error::new(ml_data::DataError::NoRows {
            path: "val.csv".into(),
        });
        assert_eq!(classify(&data, FAILURES), Failure::BadInput);
        let model = anyhow::Error::new(ModelError::NoRows).context("cannot score");
        assert_eq!(classify(&model, FAILURES), Failure::BadInput);
        assert_eq!(
            classify(&anyhow::anyhow!("disk full"), FAILURES),
            Failure::Other
        );
    }
}
