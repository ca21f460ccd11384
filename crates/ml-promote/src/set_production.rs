//! Rolling back or pinning by hand: move `production` to a named version, with who and why.
//!
//! The version must exist, be `READY`, and load in this build (downloaded afresh if a cached
//! copy does not), so a person cannot point inference at a model it could not use. The alias
//! then moves and the version is tagged `production.set_by`, `production.reason`,
//! `production.set_at` and `production.previous_version`; the version it replaced gets
//! `promotion.replaced_by`, as after an automatic promotion. A version that already holds
//! production is left as it is and says so.

use std::path::PathBuf;

use ml_cli::Progress;
use ml_mlflow::{Client, ModelUri, Tag};
use serde::Serialize;

use crate::{fetch_and_load, move_production, production_version, Refused, PRODUCTION};

/// Prefix of the tags a hand-made production change writes.
pub const SET_TAG_PREFIX: &str = "production.";

/// What one `ml-promote set-production` needs.
#[derive(Debug, Clone)]
pub struct SetProductionConfig {
    pub registered_model: String,
    pub version: String,
    pub reason: String,
    pub by: String,
    /// When the person asked, as Airflow reported it.
    pub at: String,
    pub model_cache: PathBuf,
}

/// What was done, printed as the stage's last line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductionChange {
    pub registered_model: String,
    pub version: String,
    pub run_id: String,
    pub previous_version: Option<String>,
    pub reason: String,
    pub by: String,
    pub at: String,
    /// False when the version already held production (nothing moved).
    pub changed: bool,
}

impl SetProductionConfig {
    fn check(&self) -> Result<(), Refused> {
        if self.version.is_empty()
            || !self.version.bytes().all(|b| b.is_ascii_digit())
            || self.version.starts_with('0')
        {
            return Err(Refused(format!(
                "--version {:?} is not a registry version number (1, 2, ...)",
                self.version
            )));
        }
        if self.reason.trim().is_empty() {
            return Err(Refused(
                "--reason is empty: say why production changes".to_string(),
            ));
        }
        if self.by.trim().is_empty() {
            return Err(Refused(
                "--by is empty: the person who asked for the change".to_string(),
            ));
        }
        Ok(())
    }
}

pub fn set_production(
    client: &Client,
    config: &SetProductionConfig,
    progress: &Progress,
) -> anyhow::Result<ProductionChange> {
    config.check()?;
    let name = &config.registered_model;
    let version = &config.version;
    let target = client.find_model_version(name, version)?.ok_or_else(|| {
        Refused(format!(
            "registered model {name} has no version {version}; nothing was changed"
        ))
    })?;
    if target.status != "READY" {
        return Err(Refused(format!(
            "{name} version {version} is {}, not READY; nothing was changed",
            target.status
        ))
        .into());
    }
    let uri = ModelUri::Version {
        name: name.clone(),
        version: version.clone(),
    };
    if let Err(err) = fetch_and_load(client, &uri, &config.model_cache, progress)? {
        return Err(Refused(format!(
            "{uri} cannot be used by this build ({err}); nothing was changed"
        ))
        .into());
    }
    progress.log(format_args!("{uri} downloads and loads"));
    let previous = production_version(client, name)?.map(|v| v.version);
    let mut change = ProductionChange {
        registered_model: name.clone(),
        version: version.clone(),
        run_id: target.run_id.clone(),
        previous_version: previous.clone(),
        reason: config.reason.trim().to_string(),
        by: config.by.trim().to_string(),
        at: config.at.trim().to_string(),
        changed: false,
    };
    if previous.as_deref() == Some(version.as_str()) {
        progress.log(format_args!(
            "{name} version {version} already is {PRODUCTION}; nothing was changed"
        ));
        return Ok(change);
    }
    move_production(client, name, previous.as_deref(), version)?;
    change.changed = true;
    progress.log(format_args!(
        "{name} version {version} is {PRODUCTION} (was {}), set by {}: {}",
        previous.as_deref().unwrap_or("none"),
        change.by,
        change.reason
    ));
    let t = |key: &str, value: &str| Tag::new(format!("{SET_TAG_PREFIX}{key}"), value);
    let tags = [
        t("set_by", &change.by),
        t("reason", &change.reason),
        t("set_at", &change.at),
        t("previous_version", previous.as_deref().unwrap_or("none")),
    ];
    for tag in tags {
        client.set_model_version_tag(name, version, &tag.key, &tag.value)?;
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(version: &str, reason: &str, by: &str) -> SetProductionConfig {
        SetProductionConfig {
            registered_model: "clf".into(),
            version: version.into(),
            reason: reason.into(),
            by: by.into(),
            at: "2026-12-03T10:00:00+00:00".into(),
            model_cache: PathBuf::from("cache"),
        }
    }

    #[test]
    fn a_change_names_a_version_a_reason_and_a_person() {
        assert!(config("3", "roll back: v4 drifts", "alice").check().is_ok());
        for bad in ["", "0", "03", "3a", "-1", "latest"] {
            assert!(config(bad, "why", "alice").check().is_err(), "{bad:?}");
        }
        assert!(config("3", " ", "alice").check().is_err());
        assert!(config("3", "why", "").check().is_err());
    }
}
