//! `ml-promote`: register a trained model in MLflow and decide whether it becomes production.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ml_model::BootstrapConfig;
use ml_promote::{Answer, Mode, PromoteConfig, ReviewConfig, Rule, SetProductionConfig};

/// Register MODEL_DIR's model (logged to MLflow by ml-train) as a new version with alias
/// `challenger`, score it and the current `production` version on PROCESSED_DIR/val.csv, and
/// move `production` to it only if its ROC AUC clears --min-roc-auc and either there is no
/// production alias yet or the lower end of the 95% paired-bootstrap interval of the ROC AUC
/// difference is above --min-improvement. If MLflow cannot be reached or production cannot be
/// fetched, nothing moves and the exit status is 75 (retry later). The decision is tagged on
/// the version and written to MODEL_DIR/promotion.json.
#[derive(Debug, Parser)]
#[command(
    name = "ml-promote",
    bin_name = "ml-promote",
    version,
    after_help = "Subcommands, each with its own --help:\n  ml-promote review          record a person's answer to a manual-mode decision\n  ml-promote set-production  move production to a version by hand (roll back or pin)"
)]
struct Cli {
    #[command(flatten)]
    compare: Compare,
}

/// `ml-promote review ...` and `ml-promote set-production ...`: parsed apart from the
/// comparison's flags, so that neither set's required flags (or their environment
/// variables) get in the way of the other.
#[derive(Debug, Parser)]
#[command(name = "ml-promote", bin_name = "ml-promote", version)]
struct SubCli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands' names, as the first argument.
const SUBCOMMANDS: [&str; 2] = ["review", "set-production"];

#[derive(Debug, Subcommand)]
enum Command {
    /// Record a person's answer to a manual-mode decision (MODEL_DIR/promotion.json awaiting
    /// review): approve moves production to the challenger, but only if production is still
    /// the version it was compared with and the challenger cleared the floor; reject and
    /// timeout move nothing. The answer goes to the version's approval.* tags and to
    /// promotion.json. A refusal changes nothing and exits 65.
    Review(ReviewArgs),
    /// Move production to VERSION by hand (a rollback or a pin), after checking that it
    /// exists, is READY and loads in this build; the version is tagged with who, why and when.
    SetProduction(SetProductionArgs),
}

#[derive(Debug, Args)]
struct Service {
    /// MLflow tracking server (basic auth from MLFLOW_TRACKING_USERNAME/PASSWORD).
    #[arg(long, value_name = "URL", env = ml_mlflow::TRACKING_URI_ENV)]
    tracking_uri: String,
    /// Print no progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct Compare {
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
    /// The lower end of the interval of (challenger - production) ROC AUC must be above this (0 to 1).
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = unit_interval)]
    min_improvement: f64,
    /// Floor: the challenger's own ROC AUC must be at least this, the first model's too (0 to 1).
    #[arg(long, value_name = "F", default_value_t = ml_promote::DEFAULT_MIN_ROC_AUC, value_parser = unit_interval)]
    min_roc_auc: f64,
    /// Paired bootstrap resamples of the validation rows (at least 1000).
    #[arg(long, value_name = "N", default_value_t = BootstrapConfig::default().resamples, value_parser = resamples)]
    bootstrap_resamples: usize,
    /// Seed of the bootstrap's generator (ChaCha12): same data and seed, same interval.
    #[arg(long, value_name = "N", default_value_t = BootstrapConfig::default().seed)]
    bootstrap_seed: u64,
    /// Where registry models are downloaded, one directory per version [default: TMPDIR/ml-model-cache].
    #[arg(long, value_name = "DIR", env = ml_mlflow::MODEL_CACHE_ENV)]
    model_cache: Option<PathBuf>,
    #[command(flatten)]
    service: Service,
}

#[derive(Debug, Args)]
struct ReviewArgs {
    /// Model directory whose promotion.json awaits review.
    #[arg(long, value_name = "MODEL_DIR")]
    model_dir: PathBuf,
    /// The answer: approve, reject, or timeout (nobody answered in time; counts as reject).
    #[arg(long, value_enum)]
    answer: CliAnswer,
    /// Who answered (required for approve and reject, empty for timeout).
    #[arg(long, value_name = "NAME", default_value = "")]
    by: String,
    /// The person's comment.
    #[arg(long, value_name = "TEXT", default_value = "")]
    comment: String,
    /// When the answer was given (as Airflow reports it, ISO 8601).
    #[arg(long, value_name = "TIME")]
    responded_at: String,
    #[command(flatten)]
    service: Service,
}

#[derive(Debug, Args)]
struct SetProductionArgs {
    /// Registered model whose production alias moves.
    #[arg(long, value_name = "NAME", default_value = ml_promote::DEFAULT_REGISTERED_MODEL)]
    registered_model: String,
    /// The version that becomes production.
    #[arg(long, value_name = "N")]
    version: String,
    /// Why (recorded on the version).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Who asked (recorded on the version).
    #[arg(long, value_name = "NAME")]
    by: String,
    /// When they asked (as Airflow reports it, ISO 8601).
    #[arg(long, value_name = "TIME")]
    at: String,
    /// Where registry models are downloaded, one directory per version [default: TMPDIR/ml-model-cache].
    #[arg(long, value_name = "DIR", env = ml_mlflow::MODEL_CACHE_ENV)]
    model_cache: Option<PathBuf>,
    #[command(flatten)]
    service: Service,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliAnswer {
    Approve,
    Reject,
    Timeout,
}

/// A ROC AUC or a margin of one: a number in [0, 1].
fn unit_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("must be between 0 and 1".to_string()),
    }
}

fn resamples(text: &str) -> Result<usize, String> {
    let min = BootstrapConfig::MIN_RESAMPLES;
    match text.parse::<usize>() {
        Ok(n) if (min..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from {min} to 1000000")),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliMode {
    Auto,
    Manual,
}

impl Service {
    fn client(&self) -> anyhow::Result<ml_mlflow::Client> {
        let uri = self.tracking_uri.clone();
        ml_mlflow::Client::from_lookup(|name| {
            if name == ml_mlflow::TRACKING_URI_ENV {
                Some(uri.clone())
            } else {
                std::env::var(name).ok()
            }
        })?
        .ok_or_else(|| anyhow::anyhow!("--tracking-uri (or MLFLOW_TRACKING_URI) is empty"))
    }

    fn progress(&self) -> ml_cli::Progress {
        ml_cli::Progress::new("ml-promote").quiet(self.quiet)
    }
}

fn run(args: Vec<std::ffi::OsString>) -> anyhow::Result<()> {
    let is_subcommand = args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| SUBCOMMANDS.contains(&a));
    if !is_subcommand {
        return compare(Cli::parse_from(args).compare);
    }
    match SubCli::parse_from(args).command {
        Command::Review(args) => review(args),
        Command::SetProduction(args) => set_production(args),
    }
}

fn compare(cli: Compare) -> anyhow::Result<()> {
    let progress = cli.service.progress();
    let client = cli.service.client()?;
    let config = PromoteConfig {
        input_dir: cli.input_dir,
        model_dir: cli.model_dir,
        registered_model: cli.registered_model,
        mode: match cli.mode {
            CliMode::Auto => Mode::Auto,
            CliMode::Manual => Mode::Manual,
        },
        rule: Rule {
            min_improvement: cli.min_improvement,
            min_roc_auc: cli.min_roc_auc,
        },
        bootstrap: BootstrapConfig {
            resamples: cli.bootstrap_resamples,
            seed: cli.bootstrap_seed,
            ..BootstrapConfig::default()
        },
        model_cache: cli
            .model_cache
            .unwrap_or_else(ml_mlflow::default_model_cache),
    };
    let decision = ml_promote::run(&client, &config, &progress)?;
    print!("{}", ml_promote::render(&decision));
    Ok(())
}

fn review(cli: ReviewArgs) -> anyhow::Result<()> {
    let progress = cli.service.progress();
    let client = cli.service.client()?;
    let config = ReviewConfig {
        model_dir: cli.model_dir,
        answer: match cli.answer {
            CliAnswer::Approve => Answer::Approve,
            CliAnswer::Reject => Answer::Reject,
            CliAnswer::Timeout => Answer::Timeout,
        },
        by: Some(cli.by),
        comment: cli.comment,
        responded_at: cli.responded_at,
    };
    let decision = ml_promote::review(&client, &config, &progress)?;
    print!("{}", ml_promote::render(&decision));
    Ok(())
}

fn set_production(cli: SetProductionArgs) -> anyhow::Result<()> {
    let progress = cli.service.progress();
    let client = cli.service.client()?;
    let config = SetProductionConfig {
        registered_model: cli.registered_model,
        version: cli.version,
        reason: cli.reason,
        by: cli.by,
        at: cli.at,
        model_cache: cli
            .model_cache
            .unwrap_or_else(ml_mlflow::default_model_cache),
    };
    let change = ml_promote::set_production(&client, &config, &progress)?;
    println!(
        "{}",
        serde_json::to_string(&change).map_err(anyhow::Error::new)?
    );
    Ok(())
}

fn main() -> ExitCode {
    ml_cli::main(|| run(std::env::args_os().collect()), ml_promote::FAILURES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
        SubCli::command().debug_assert();
    }
}
