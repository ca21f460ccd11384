//! A person's answer to a manual-mode promotion, recorded and acted on.
//!
//! `ml-promote` in manual mode stops at `challenger` and writes `promotion.json` with the
//! outcome `awaiting_review`. The `train_model` DAG then asks a person (Airflow's
//! human-in-the-loop page) and hands the answer to `ml-promote review`, which:
//!
//! - on **approve**, moves `production` to the challenger, but only if production is still
//!   the version the challenger was compared with (or there still is none) and the challenger
//!   cleared the ROC AUC floor: a person may accept a challenger that is not proven better,
//!   never one below the floor or one judged against a production model that has since
//!   changed;
//! - on **reject** or **timeout** (nobody answered in time), moves nothing;
//!
//! and in every case writes the answer, the person, their comment and the time as
//! `approval.*` tags on the version (and the final `promotion.outcome`), then rewrites
//! `promotion.json` with the outcome and a `review` object. A refusal changes nothing and
//! exits 65 (not retried): the comparison must be made again.

use std::fmt;
use std::path::{Path, PathBuf};

use ml_cli::Progress;
use ml_mlflow::{Client, Tag};
use serde::{Deserialize, Serialize};

use crate::{
    move_production, production_version, write_decision, Decision, Mode, Outcome, Refused,
    PRODUCTION, PROMOTION_FILE,
};

/// Prefix of the tags that record a person's answer.
pub const APPROVAL_TAG_PREFIX: &str = "approval.";

/// What the person (or the clock) answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Approve,
    Reject,
    /// Nobody answered within the approval's time: counts as a rejection.
    Timeout,
}

impl Answer {
    /// How the answer reads in tags and logs.
    pub fn verdict(self) -> &'static str {
        match self {
            Answer::Approve => "approved",
            Answer::Reject => "rejected",
            Answer::Timeout => "timed_out",
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Answer::Approve => "approve",
            Answer::Reject => "reject",
            Answer::Timeout => "timeout",
        })
    }
}

/// The answer as recorded in `promotion.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub answer: Answer,
    /// Who answered; `None` when nobody did (timeout).
    pub by: Option<String>,
    pub comment: String,
    /// When the answer was given, as Airflow reported it.
    pub responded_at: String,
    /// The production version when the answer was recorded, before an approval moved it.
    pub production_before: Option<String>,
}

/// What one `ml-promote review` needs.
#[derive(Debug, Clone)]
pub struct ReviewConfig {
    /// The model directory holding the `promotion.json` awaiting review.
    pub model_dir: PathBuf,
    pub answer: Answer,
    pub by: Option<String>,
    pub comment: String,
    pub responded_at: String,
}

impl ReviewConfig {
    /// Who answered, trimmed; `None` for nobody (empty or absent).
    fn respondent(&self) -> Option<&str> {
        self.by.as_deref().map(str::trim).filter(|b| !b.is_empty())
    }

    fn check(&self) -> Result<(), Refused> {
        match (self.answer, self.respondent()) {
            (Answer::Timeout, Some(by)) => Err(Refused(format!(
                "--answer timeout means nobody answered, yet --by names {by:?}"
            ))),
            (Answer::Approve | Answer::Reject, None) => Err(Refused(format!(
                "--answer {} needs --by: the person who answered",
                self.answer
            ))),
            _ if self.responded_at.trim().is_empty() => {
                Err(Refused("--responded-at is empty".to_string()))
            }
            _ => Ok(()),
        }
    }
}

/// Reads the decision awaiting review in `model_dir`.
pub fn read_decision(model_dir: &Path) -> anyhow::Result<Decision> {
    let path = model_dir.join(PROMOTION_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Refused(format!(
                "{}: not found; ml-promote (manual mode) writes it before a review",
                path.display()
            ))
            .into())
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!("{}: cannot read", path.display())))
        }
    };
    serde_json::from_slice(&bytes).map_err(|err| {
        Refused(format!(
            "{}: not a promotion decision: {err}",
            path.display()
        ))
        .into()
    })
}

/// Records the answer and, on approval, moves production. Returns the decision as rewritten.
pub fn review(
    client: &Client,
    config: &ReviewConfig,
    progress: &Progress,
) -> anyhow::Result<Decision> {
    config.check()?;
    let mut decision = read_decision(&config.model_dir)?;
    let name = decision.registered_model.clone();
    let version = decision.version.clone();
    if decision.mode != Mode::Manual {
        return Err(Refused(format!(
            "{name} version {version} was decided in {} mode ({}); there is nothing to review",
            decision.mode, decision.outcome
        ))
        .into());
    }
    let by = config.respondent().map(str::to_string);
    if let Some(previous) = &decision.review {
        if previous.answer == config.answer
            && previous.by == by
            && previous.responded_at == config.responded_at
        {
            // An Airflow retry after everything was recorded: promotion.json is written last.
            progress.log(format_args!(
                "{name} version {version}: this answer is already recorded (re-run)"
            ));
            decision.rerun = true;
            return Ok(decision);
        }
        return Err(Refused(format!(
            "{name} version {version} was already reviewed: {} by {} at {}",
            previous.answer.verdict(),
            previous.by.as_deref().unwrap_or("nobody"),
            previous.responded_at
        ))
        .into());
    }
    if decision.outcome != Outcome::AwaitingReview {
        return Err(Refused(format!(
            "{name} version {version} is {}, not awaiting_review",
            decision.outcome
        ))
        .into());
    }

    let registered = client.find_model_version(&name, &version)?.ok_or_else(|| {
        Refused(format!(
            "registered model {name} has no version {version} any more; nothing was changed"
        ))
    })?;
    if registered.run_id != decision.run_id {
        return Err(Refused(format!(
            "{name} version {version} comes from run {}, but the decision was made for run {}; nothing was changed",
            registered.run_id, decision.run_id
        ))
        .into());
    }
    let current = production_version(client, &name)?.map(|v| v.version);
    let compared = decision.production.as_ref().map(|p| p.version.clone());

    let outcome = if config.answer == Answer::Approve {
        approve(&decision, current.as_deref(), compared.as_deref())?;
        if current.as_deref() != Some(version.as_str()) {
            move_production(client, &name, current.as_deref(), &version)?;
            progress.log(format_args!(
                "{name} version {version} is {PRODUCTION} (was {})",
                current.as_deref().unwrap_or("none")
            ));
        }
        Outcome::Promoted
    } else {
        progress.log(format_args!(
            "{name} version {version} {}: {PRODUCTION} stays at {}",
            config.answer.verdict(),
            current.as_deref().unwrap_or("none")
        ));
        Outcome::Rejected
    };
    let review = Review {
        answer: config.answer,
        by,
        comment: config.comment.trim().to_string(),
        responded_at: config.responded_at.trim().to_string(),
        production_before: current,
    };
    for tag in review_tags(&review, outcome) {
        client.set_model_version_tag(&name, &version, &tag.key, &tag.value)?;
    }
    client.log_batch(
        &decision.run_id,
        &[],
        &[],
        &[Tag::new(format!("{}outcome", crate::TAG_PREFIX), outcome)],
    )?;
    decision.outcome = outcome;
    decision.review = Some(review);
    write_decision(&config.model_dir, &decision, progress)?;
    Ok(decision)
}

/// Why an approval cannot be carried out, if it cannot.
fn approve(
    decision: &Decision,
    current: Option<&str>,
    compared: Option<&str>,
) -> Result<(), Refused> {
    let version = &decision.version;
    match decision.challenger_roc_auc {
        Some(auc) if auc >= decision.min_roc_auc => {}
        auc => {
            return Err(Refused(format!(
                "version {version} cannot be approved: its ROC AUC {} is below the floor {:.4}; nothing was changed",
                crate::show(auc),
                decision.min_roc_auc
            )))
        }
    }
    if current == Some(version.as_str()) || current == compared {
        return Ok(());
    }
    Err(Refused(format!(
        "version {version} was compared with production version {}, but production is version {} now: the comparison is out of date and nothing was changed (train again, or set production by hand)",
        compared.unwrap_or("none"),
        current.unwrap_or("none")
    )))
}

fn review_tags(review: &Review, outcome: Outcome) -> Vec<Tag> {
    let t = |key: &str, value: String| Tag::new(format!("{APPROVAL_TAG_PREFIX}{key}"), value);
    vec![
        Tag::new(format!("{}outcome", crate::TAG_PREFIX), outcome),
        t("answer", review.answer.verdict().to_string()),
        t(
            "by",
            review.by.clone().unwrap_or_else(|| "nobody".to_string()),
        ),
        t("comment", review.comment.clone()),
        t("responded_at", review.responded_at.clone()),
        t(
            "production_before",
            review
                .production_before
                .clone()
                .unwrap_or_else(|| "none".to_string()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(auc: Option<f64>, production: Option<&str>) -> Decision {
        let text = serde_json::json!({
            "registered_model": "clf", "version": "4", "run_id": "r4", "experiment_id": "1",
            "outcome": "awaiting_review", "reason": "manual mode", "mode": "manual",
            "min_improvement": 0.0, "min_roc_auc": 0.75, "challenger_roc_auc": auc,
            "challenger_metrics": {"accuracy": 0.8, "precision": 0.8, "recall": 0.8, "f1": 0.8,
                "roc_auc": auc, "log_loss": 0.4, "n_val": 100},
            "production": production.map(|v| serde_json::json!({"version": v, "run_id": "r",
                "metrics": null})),
            "difference": null, "production_unusable": false, "n_val": 100, "rerun": false
        });
        serde_json::from_value(text).expect("a decision")
    }

    #[test]
    fn an_approval_needs_the_floor_and_the_production_it_was_compared_with() {
        let d = decision(Some(0.8), Some("3"));
        assert!(approve(&d, Some("3"), Some("3")).is_ok());
        // A retry after the alias moved.
        assert!(approve(&d, Some("4"), Some("3")).is_ok());
        let moved = approve(&d, Some("5"), Some("3")).expect_err("stale");
        assert!(
            moved.0.contains("production is version 5 now"),
            "{}",
            moved.0
        );
        let gone = approve(&d, None, Some("3")).expect_err("stale");
        assert!(
            gone.0.contains("production is version none now"),
            "{}",
            gone.0
        );
        let first = decision(Some(0.8), None);
        assert!(approve(&first, None, None).is_ok());
        assert!(approve(&first, Some("2"), None).is_err());
        let low = approve(&decision(Some(0.7), None), None, None).expect_err("floor");
        assert!(low.0.contains("below the floor 0.7500"), "{}", low.0);
        assert!(approve(&decision(None, None), None, None).is_err());
    }

    #[test]
    fn an_answer_names_its_person_unless_it_timed_out() {
        let config = |answer, by: Option<&str>| ReviewConfig {
            model_dir: PathBuf::from("m"),
            answer,
            by: by.map(str::to_string),
            comment: String::new(),
            responded_at: "2026-12-03T10:00:00+00:00".into(),
        };
        assert!(config(Answer::Approve, Some("alice")).check().is_ok());
        assert!(config(Answer::Timeout, None).check().is_ok());
        assert!(config(Answer::Timeout, Some("")).check().is_ok());
        assert!(config(Answer::Approve, None).check().is_err());
        assert!(config(Answer::Reject, Some("  ")).check().is_err());
        assert!(config(Answer::Timeout, Some("bob")).check().is_err());
    }

    #[test]
    fn older_decisions_without_links_or_review_still_read() {
        let d = decision(Some(0.8), Some("3"));
        assert_eq!(d.review, None);
        assert_eq!(
            d.production.as_ref().and_then(|p| p.experiment_id.clone()),
            None
        );
    }
}
