//! `report.json`, as the crate documentation lists its fields.

use serde::{Deserialize, Serialize};

use crate::join::RowCounts;
use crate::quality::Quality;
use crate::verdict::{Thresholds, Verdict};

/// `report.json`; see the crate documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: u32,
    pub date: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub model: ModelReport,
    pub thresholds: Thresholds,
    pub rows: RowCounts,
    pub keyed_by: String,
    pub quality: Quality,
    pub drift: DriftReport,
    pub inputs: Inputs,
}

/// The model evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    pub uri: String,
    pub registered_model: Option<String>,
    pub version: Option<String>,
    pub run_id: Option<String>,
    pub kind: String,
    pub validation_roc_auc: f64,
}

/// Feature drift of `data.csv` against the model's reference profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub max_psi: f64,
    pub drifted: Vec<String>,
    pub features: Vec<FeatureReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureReport {
    pub name: String,
    pub psi: f64,
    pub missing_share_reference: f64,
    pub missing_share_live: f64,
    pub drifted: bool,
}

/// Checksums of the files the report was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    pub predictions_sha256: String,
    pub labels_sha256: String,
    pub data_sha256: String,
}
