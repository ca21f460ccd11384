//! `ml-train`: fit a classifier on PROCESSED_DIR/train.csv and save it to MODEL_DIR.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::RangedU64ValueParser;
use clap::{CommandFactory, Parser, ValueEnum};
use ml_model::ModelKind;
use ml_train::{HyperparameterArgs, TrainConfig};

/// Train a heart-disease classifier on PROCESSED_DIR/train.csv; write MODEL_DIR/model.bin
/// (versioned model file: schema, fitted preprocessing, classifier), MODEL_DIR/params.json,
/// MODEL_DIR/reference_profile.json (the training features binned, for drift monitoring) and
/// the MLmodel descriptor. When MLFLOW_TRACKING_URI is set, also log a run to MLflow (params,
/// model files) and write MODEL_DIR/mlflow_run.json for ml-validate and ml-promote.
#[derive(Debug, Parser)]
#[command(name = "ml-train", bin_name = "ml-train", version)]
struct Cli {
    /// Directory holding train.csv (a directory named YYYY-MM-DD sets the data date).
    #[arg(long, value_name = "PROCESSED_DIR")]
    input_dir: PathBuf,
    /// Directory to write model.bin and params.json to (created if missing).
    #[arg(long, value_name = "MODEL_DIR")]
    output_dir: PathBuf,
    /// Kind of classifier.
    #[arg(long, value_enum, default_value_t = Kind::LogisticRegression)]
    model: Kind,
    /// Logistic regression: L2 penalty, a finite number >= 0 (objective: sum of log losses + alpha/2 * |w|^2) [default: 1]
    #[arg(long, conflicts_with = "c", value_parser = non_negative)]
    alpha: Option<f64>,
    /// Logistic regression: inverse penalty as in scikit-learn (alpha = 1/C), a finite number > 0 [default: 1]
    #[arg(long = "c", value_name = "C", value_parser = positive)]
    c: Option<f64>,
    /// Random forest: number of trees, 1 to 10000 [default: 100]
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_TREES))]
    n_trees: Option<usize>,
    /// Random forest: maximum tree depth, 1 to 65535 [default: 10]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    max_depth: Option<u16>,
    /// Random forest: minimum rows in a leaf, 1 to 4294967295 [default: 5]
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=u64::from(u32::MAX)))]
    min_samples_leaf: Option<usize>,
    /// Random forest: fraction of model inputs each tree may split on, in (0, 1] [default: 0.6]
    #[arg(long, value_parser = fraction)]
    feature_fraction: Option<f64>,
    /// Random forest: rows in each tree's bootstrap sample, 1 to 4294967295 [default: all training rows]
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=u64::from(u32::MAX)))]
    max_samples: Option<usize>,
    /// Random forest: seed of the bootstrap and feature sampling (ChaCha12) [default: 42]
    #[arg(long)]
    seed: Option<u64>,
    /// MLflow experiment of the run (only with MLFLOW_TRACKING_URI set).
    #[arg(long, value_name = "NAME", env = ml_mlflow::EXPERIMENT_ENV, default_value = ml_mlflow::DEFAULT_EXPERIMENT)]
    experiment: String,
    /// Print no progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Trees beyond this add time and model size, not accuracy (the forest's own counts are u32,
/// which bounds `--min-samples-leaf` and `--max-samples`).
const MAX_TREES: u64 = 10_000;

fn non_negative(text: &str) -> Result<f64, String> {
    ml_cli::parse_f64(text, |v| v >= 0.0, "a finite number >= 0")
}

fn positive(text: &str) -> Result<f64, String> {
    ml_cli::parse_f64(text, |v| v > 0.0, "a finite number > 0")
}

fn fraction(text: &str) -> Result<f64, String> {
    ml_cli::parse_f64(text, |v| v > 0.0 && v <= 1.0, "a number in (0, 1]")
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    LogisticRegression,
    RandomForest,
}

impl From<Kind> for ModelKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::LogisticRegression => ModelKind::LogisticRegression,
            Kind::RandomForest => ModelKind::RandomForest,
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let args = HyperparameterArgs {
        alpha: cli.alpha,
        c: cli.c,
        n_trees: cli.n_trees,
        max_depth: cli.max_depth,
        min_samples_leaf: cli.min_samples_leaf,
        feature_fraction: cli.feature_fraction,
        max_samples: cli.max_samples,
        seed: cli.seed,
    };
    // A flag of the other model kind is a usage error, reported the way clap reports one.
    let hyperparameters = args.resolve(cli.model.into()).unwrap_or_else(|e| {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, e)
            .exit()
    });
    let config = TrainConfig {
        hyperparameters,
        input_dir: cli.input_dir,
        output_dir: cli.output_dir,
    };
    let progress = ml_cli::Progress::new("ml-train").quiet(cli.quiet);
    // A bad MLFLOW_* setting is reported before minutes of training, not after.
    let client = ml_mlflow::Client::from_env()?;
    let trained = ml_train::run(&config, &progress)?;
    if let Some(client) = client {
        ml_train::log_to_mlflow(&client, &cli.experiment, &config, &trained, &progress)?;
    }
    Ok(())
}

/// Bad data or model: 65; MLflow down or refusing: 75 (see ml-cli).
const FAILURES: &[ml_cli::Rule] = &[
    ml_cli::bad_input::<ml_data::DataError>,
    ml_cli::bad_input::<ml_model::ModelError>,
    ml_cli::bad_input::<ml_model::ProfileError>,
    |cause| ml_cli::transient_when(cause, ml_mlflow::Error::is_transient),
];

fn main() -> ExitCode {
    ml_cli::main(|| run(Cli::parse()), FAILURES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn float_flags_are_bounded() {
        assert_eq!(fraction("1"), Ok(1.0));
        assert_eq!(non_negative("0"), Ok(0.0));
        for bad in ["0", "1.5", "NaN", "x"] {
            assert!(fraction(bad).is_err(), "{bad}");
        }
        for bad in ["0", "-1", "inf"] {
            assert!(positive(bad).is_err(), "{bad}");
        }
        assert!(non_negative("-0.1").is_err());
    }

    #[test]
    fn value_enum_names_match_model_kinds() {
        for k in Kind::value_variants() {
            let name = k.to_possible_value().map(|v| v.get_name().to_string());
            assert_eq!(name.as_deref(), Some(ModelKind::from(*k).as_str()));
        }
    }
}
