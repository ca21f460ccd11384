//! `ml-validate`: score PROCESSED_DIR/val.csv with a saved model and write its metrics.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Evaluate MODEL_DIR/model.bin on PROCESSED_DIR/val.csv; write MODEL_DIR/metrics.json
/// (accuracy, precision, recall, f1, roc_auc, log_loss, n_val) and print the metrics. When
/// MLFLOW_TRACKING_URI is set and MODEL_DIR has mlflow_run.json (ml-train logged the model),
/// the metrics are logged to that run, which is then marked FINISHED (FAILED on error).
#[derive(Debug, Parser)]
#[command(name = "ml-validate", bin_name = "ml-validate", version)]
struct Cli {
    /// Directory holding val.csv.
    #[arg(long, value_name = "PROCESSED_DIR")]
    input_dir: PathBuf,
    /// Directory holding model.bin; metrics.json is written next to it.
    #[arg(long, value_name = "MODEL_DIR")]
    model_dir: PathBuf,
    /// Print no progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = ml_cli::Progress::new("ml-validate").quiet(cli.quiet);
    let client = ml_mlflow::Client::from_env()?;
    let done =
        ml_validate::run_tracked(&cli.input_dir, &cli.model_dir, client.as_ref(), &progress)?;
    print!("{}", ml_validate::render(&done.metrics));
    Ok(())
}

/// Bad data or model: 65; MLflow down or refusing: 75 (see ml-cli).
const FAILURES: &[ml_cli::Rule] = &[
    ml_cli::bad_input::<ml_data::DataError>,
    ml_cli::bad_input::<ml_model::ModelError>,
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
}
