//! `ml-monitor`: judge the production model on the labels that arrived for a day.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::RangedU64ValueParser;
use clap::{CommandFactory, Parser};
use ml_data::Date;
use ml_monitor::{MonitorConfig, Thresholds};

/// Score the model that made a day's predictions on the labels that have arrived, measure
/// the drift of the day's features from the model's training data, and write
/// OUT/report.html and, last, OUT/report.json with a verdict: ok, drift (a feature's PSI at
/// or above --psi-threshold) or decay (live ROC AUC more than --auc-margin below the
/// validation ROC AUC, or below --min-roc-auc). The predictions, data.csv and the model
/// must be those provenance.json records (SHA-256); fewer than --min-labeled-rows labelled
/// predictions, or one class only, give no verdict (exit 65). With MLFLOW_TRACKING_URI set,
/// the report is also logged as the MLflow run monitor-<date>.
#[derive(Debug, Parser)]
#[command(name = "ml-monitor", bin_name = "ml-monitor", version)]
struct Cli {
    /// Directory holding predictions.csv and provenance.json, as ml-predict wrote them.
    #[arg(long, value_name = "PRED")]
    predictions_dir: PathBuf,
    /// Directory holding the day's target.csv (the labels) and data.csv (the scored features).
    #[arg(long, value_name = "RAW")]
    labels_dir: PathBuf,
    /// Directory to write report.html and report.json to (created if missing).
    #[arg(long, value_name = "OUT")]
    output_dir: PathBuf,
    /// The model to evaluate: a directory holding model.bin, or models:/NAME/VERSION or models:/NAME@ALIAS [default: the model provenance.json records, by version]
    #[arg(long, value_name = "MODEL_DIR|MODEL_URI")]
    model: Option<String>,
    /// Where registry models are downloaded, one directory per version [default: TMPDIR/ml-model-cache].
    #[arg(long, value_name = "DIR", env = ml_mlflow::MODEL_CACHE_ENV)]
    model_cache: Option<PathBuf>,
    /// Directory of earlier reports, DIR/YYYY-MM-DD/report.json, for the 30-day chart [default: OUT's parent]
    #[arg(long, value_name = "DIR")]
    history_dir: Option<PathBuf>,
    /// The data date [default: PRED's directory name, when it is YYYY-MM-DD]
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = date)]
    date: Option<Date>,
    /// A feature drifted when its PSI is at least this (a number > 0).
    #[arg(long, default_value_t = ml_monitor::DEFAULT_PSI_THRESHOLD, value_parser = positive)]
    psi_threshold: f64,
    /// Decay when the live ROC AUC is more than this below the validation ROC AUC (0 to 1).
    #[arg(long, default_value_t = ml_monitor::DEFAULT_AUC_MARGIN, value_parser = unit)]
    auc_margin: f64,
    /// Decay when the live ROC AUC is below this: the promotion floor (0 to 1).
    #[arg(long, default_value_t = ml_monitor::DEFAULT_MIN_ROC_AUC, value_parser = unit)]
    min_roc_auc: f64,
    /// No verdict with fewer labelled predictions than this (1 to 4294967295).
    #[arg(long, default_value_t = ml_monitor::DEFAULT_MIN_LABELED_ROWS, value_parser = RangedU64ValueParser::<usize>::new().range(1..=u64::from(u32::MAX)))]
    min_labeled_rows: usize,
    /// MLflow experiment of the monitoring runs (only with MLFLOW_TRACKING_URI set).
    #[arg(long, value_name = "NAME", default_value = ml_monitor::DEFAULT_EXPERIMENT)]
    experiment: String,
    /// Print no progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn date(text: &str) -> Result<Date, String> {
    text.parse::<Date>().map_err(|e| e.to_string())
}

fn positive(text: &str) -> Result<f64, String> {
    ml_cli::parse_f64(text, |v| v > 0.0, "a finite number > 0")
}

fn unit(text: &str) -> Result<f64, String> {
    ml_cli::parse_f64(text, |v| (0.0..=1.0).contains(&v), "a number in [0, 1]")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // No date given and none in the directory name: a usage error, as clap reports one.
    let Some(date) = cli
        .date
        .or_else(|| ml_monitor::date_of_dir(&cli.predictions_dir))
    else {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!(
                    "--date is required: {} is not named YYYY-MM-DD",
                    cli.predictions_dir.display()
                ),
            )
            .exit()
    };
    let progress = ml_cli::Progress::new("ml-monitor").quiet(cli.quiet);
    let client = ml_mlflow::Client::from_env()?;
    let config = MonitorConfig {
        history_dir: cli
            .history_dir
            .unwrap_or_else(|| ml_monitor::default_history_dir(&cli.output_dir)),
        predictions_dir: cli.predictions_dir,
        labels_dir: cli.labels_dir,
        output_dir: cli.output_dir,
        model: cli.model,
        model_cache: cli
            .model_cache
            .unwrap_or_else(ml_mlflow::default_model_cache),
        date,
        thresholds: Thresholds {
            psi: cli.psi_threshold,
            auc_margin: cli.auc_margin,
            min_roc_auc: cli.min_roc_auc,
            min_labeled_rows: cli.min_labeled_rows,
        },
    };
    let monitored = ml_monitor::run(&config, client.as_ref(), &progress)?;
    match &client {
        Some(client) => {
            ml_monitor::log_to_mlflow(
                client,
                &cli.experiment,
                &monitored.report,
                date,
                &config.output_dir,
                &progress,
            )?;
        }
        None => progress.log("MLFLOW_TRACKING_URI is not set: the report is not logged to MLflow"),
    }
    Ok(())
}

/// Bad data, model or report inputs: 65; MLflow down or refusing: 75 (see ml-cli).
const FAILURES: &[ml_cli::Rule] = &[
    ml_cli::bad_input::<ml_data::DataError>,
    ml_cli::bad_input::<ml_model::ModelError>,
    ml_cli::bad_input::<ml_model::ProfileError>,
    ml_cli::bad_input::<ml_monitor::MonitorError>,
    |cause| ml_cli::transient_when(cause, ml_mlflow::Error::is_transient),
];

fn main() -> ExitCode {
    ml_cli::main(|| run(Cli::parse()), FAILURES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn number_flags_are_bounded() {
        assert_eq!(positive("0.2"), Ok(0.2));
        assert_eq!(unit("0"), Ok(0.0));
        assert_eq!(unit("1"), Ok(1.0));
        for bad in ["0", "-1", "NaN", "inf", "x"] {
            assert!(positive(bad).is_err(), "{bad}");
        }
        for bad in ["-0.01", "1.5", "NaN"] {
            assert!(unit(bad).is_err(), "{bad}");
        }
        assert!(date("2026-02-30").is_err());
    }
}
