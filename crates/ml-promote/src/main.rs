//! `ml-promote`: register a trained model in MLflow and decide whether it becomes production.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use ml_promote::{Mode, PromoteConfig};

/// Register MODEL_DIR's model (logged to MLflow by ml-train) as a new version with alias
/// `challenger`, score it and the current `production` version on PROCESSED_DIR/val.csv, and
/// move `production` to it if there is none yet or it is better by --min-improvement ROC AUC.
/// The decision is tagged on the version and written to MODEL_DIR/promotion.json.
#[derive(Debug, Parser)]
#[command(name = "ml-promote", bin_name = "ml-promote", version)]
struct Cli {
    /// Directory holding val.csv, the data both models are judged on.
    #[arg(long, value_name = "PROCESSED_DIR")]
    input_dir: PathBuf,
    /// Model directory written by ml-train, with mlflow_run.json.
    #[arg(long, value_name = "MODEL_DIR")]
    model_dir: PathBuf,
    /// Registered model to add the version to.
    #[arg(long, value_name = "NAME", default_value = ml_promote::DEFAULT_REGISTERED_MODEL)]
    registered_model: String,
    /// auto: promote when the challenger wins; manual: stop at the challenger alias.
    #[arg(long, value_enum, default_value_t = CliMode::Auto)]
    mode: CliMode,
    /// ROC AUC margin by which the challenger must beat production (0 to 1).
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    min_improvement: f64,
    /// MLflow tracking server (basic auth from MLFLOW_TRACKING_USERNAME/PASSWORD).
    #[arg(long, value_name = "URL", env = ml_mlflow::TRACKING_URI_ENV)]
    tracking_uri: String,
    /// Where registry models are downloaded, one directory per version [default: TMPDIR/ml-model-cache].
    #[arg(long, value_name = "DIR", env = ml_mlflow::MODEL_CACHE_ENV)]
    model_cache: Option<PathBuf>,
    /// Print no progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliMode {
    Auto,
    Manual,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = ml_cli::Progress::new("ml-promote").quiet(cli.quiet);
    let uri = cli.tracking_uri;
    let client = ml_mlflow::Client::from_lookup(|name| {
        if name == ml_mlflow::TRACKING_URI_ENV {
            Some(uri.clone())
        } else {
            std::env::var(name).ok()
        }
    })?
    .ok_or_else(|| anyhow::anyhow!("--tracking-uri (or MLFLOW_TRACKING_URI) is empty"))?;
    let config = PromoteConfig {
        input_dir: cli.input_dir,
        model_dir: cli.model_dir,
        registered_model: cli.registered_model,
        mode: match cli.mode {
            CliMode::Auto => Mode::Auto,
            CliMode::Manual => Mode::Manual,
        },
        min_improvement: cli.min_improvement,
        model_cache: cli
            .model_cache
            .unwrap_or_else(ml_mlflow::default_model_cache),
    };
    let decision = ml_promote::run(&client, &config, &progress)?;
    print!("{}", ml_promote::render(&decision));
    Ok(())
}

fn main() -> ExitCode {
    ml_cli::finish(run(Cli::parse()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
