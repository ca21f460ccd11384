//! The report as an MLflow run, logged after both files are written: one run
//! `monitor-<date>` per day in the monitoring experiment, with the day's metrics stamped at
//! that day (timestamp its midnight UTC, step its day number since 1970-01-01), so MLflow's
//! charts plot them by data date whenever a day was monitored. An earlier try of the same day
//! left RUNNING is marked KILLED; a run that fails on the way is marked FAILED.

use std::path::Path;

use ml_cli::Progress;
use ml_data::Date;
use ml_mlflow::{Client, Metric, RunRecord, RunStatus, Tag, RUN_RECORD_FORMAT};

use crate::{Report, REPORT_HTML, REPORT_JSON};

const DAY_MS: i64 = 86_400_000;

/// The run's name for `date`.
pub fn run_name(date: Date) -> String {
    format!("monitor-{date}")
}

/// The metrics of `report`, each stamped at `date`.
pub fn metrics(report: &Report, date: Date) -> Vec<Metric> {
    let step = date.days_since_epoch();
    let q = &report.quality;
    let mut values = vec![
        ("roc_auc".to_string(), q.roc_auc),
        ("log_loss".to_string(), q.log_loss),
        ("accuracy".to_string(), q.accuracy),
        ("ece".to_string(), q.ece),
        (
            "predicted_positive_rate".to_string(),
            q.predicted_positive_rate,
        ),
        (
            "observed_positive_rate".to_string(),
            q.observed_positive_rate,
        ),
        (
            "validation_roc_auc".to_string(),
            report.model.validation_roc_auc,
        ),
        ("max_psi".to_string(), report.drift.max_psi),
        ("joined_rows".to_string(), report.rows.joined as f64),
    ];
    values.extend(
        report
            .drift
            .features
            .iter()
            .map(|f| (format!("psi.{}", f.name), f.psi)),
    );
    values
        .into_iter()
        .map(|(key, value)| Metric {
            key,
            value,
            timestamp: step * DAY_MS,
            step,
        })
        .collect()
}

/// The run's tags: the model (as far as it is known), the date and the verdict.
pub fn tags(report: &Report) -> Vec<Tag> {
    let model = &report.model;
    let mut tags = vec![
        Tag::new("mlflow.source.name", "ml-monitor"),
        Tag::new("mlflow.source.type", "JOB"),
        Tag::new("data_date", &report.date),
        Tag::new("verdict", report.verdict.as_str()),
        Tag::new("model.uri", &model.uri),
    ];
    for (key, value) in [
        ("model.name", &model.registered_model),
        ("model.version", &model.version),
        ("model.run_id", &model.run_id),
    ] {
        if let Some(value) = value {
            tags.push(Tag::new(key, value));
        }
    }
    tags
}

/// Logs `report` (whose files are in `dir`) as the run of its date in `experiment`, closes it
/// FINISHED, and returns its id.
pub fn log_to_mlflow(
    client: &Client,
    experiment: &str,
    report: &Report,
    date: Date,
    dir: &Path,
    progress: &Progress,
) -> anyhow::Result<String> {
    let name = run_name(date);
    progress.log(format_args!(
        "logging run {name} to MLflow at {}",
        client.base_url()
    ));
    let experiment = client.ensure_experiment(experiment)?;
    let run = client.create_run(&experiment.experiment_id, Some(&name), &tags(report))?;
    let run_id = run.info.run_id.clone();
    let superseded = client.fail_run_on_error(
        &run_id,
        client.supersede_open_runs(&experiment.experiment_id, &name, &run_id),
    )?;
    if !superseded.is_empty() {
        progress.log(format_args!(
            "marked KILLED {} earlier run(s) of {name} left RUNNING by a try that never \
             finished: {}",
            superseded.len(),
            superseded.join(", ")
        ));
    }
    // In memory only: close_run needs the run's ids, and no later stage reads this one.
    let record = RunRecord {
        format: RUN_RECORD_FORMAT,
        tracking_uri: client.base_url().to_string(),
        experiment_id: experiment.experiment_id.clone(),
        experiment_name: experiment.name.clone(),
        run_id: run_id.clone(),
        artifact_uri: run.info.artifact_uri.clone(),
        model_artifact_path: String::new(),
    };
    client.close_run(
        &record,
        &metrics(report, date),
        dir,
        &[REPORT_JSON, REPORT_HTML],
        RunStatus::Finished,
    )?;
    progress.log(format_args!(
        "MLflow run {run_id} in experiment {:?} (id {}): verdict {}, FINISHED",
        experiment.name,
        experiment.experiment_id,
        report.verdict.as_str()
    ));
    Ok(run_id)
}
