//! `ml-predict`: score RAW_DIR/data.csv with a saved model, batch by batch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ml_predict::PredictConfig;

/// Score RAW_DIR/data.csv with a saved model; write PREDICTIONS_DIR/predictions.csv
/// (columns id, prediction, probability; one row per input row, in input order) and
/// PREDICTIONS_DIR/provenance.json (the model, version, alias, run and the checksums and row
/// counts of model, input and output), last. id is the input's id column, or the row number
/// (from 1) for a data.csv without one. The model is a directory holding model.bin, or a
/// model of MLflow's registry (models:/NAME@ALIAS or models:/NAME/VERSION, with
/// MLFLOW_TRACKING_URI set), downloaded once per version.
#[derive(Debug, Parser)]
#[command(name = "ml-predict", bin_name = "ml-predict", version)]
struct Cli {
    /// Directory holding data.csv.
    #[arg(long, value_name = "RAW_DIR")]
    input_dir: PathBuf,
    /// Directory holding model.bin, or models:/NAME@ALIAS or models:/NAME/VERSION.
    #[arg(long, value_name = "MODEL_DIR|MODEL_URI")]
    model: String,
    /// Where registry models are downloaded, one directory per version [default: TMPDIR/ml-model-cache].
    #[arg(long, value_name = "DIR", env = ml_mlflow::MODEL_CACHE_ENV)]
    model_cache: Option<PathBuf>,
    /// Directory to write predictions.csv and provenance.json to (created if missing).
    #[arg(long, value_name = "PREDICTIONS_DIR")]
    output_dir: PathBuf,
    /// Rows read, scored and written at a time, 1 to 1000000; bounds memory (about 350
    /// bytes a row in flight).
    #[arg(long, default_value_t = ml_predict::DEFAULT_BATCH_ROWS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=ml_predict::MAX_BATCH_ROWS as u64))]
    batch_rows: usize,
    /// Print no progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = ml_cli::Progress::new("ml-predict").quiet(cli.quiet);
    let client = ml_mlflow::Client::from_env()?;
    let cache = cli
        .model_cache
        .unwrap_or_else(ml_mlflow::default_model_cache);
    let model = ml_predict::resolve_model(&cli.model, client.as_ref(), &cache, &progress)?;
    let config = PredictConfig {
        input_dir: cli.input_dir,
        model,
        output_dir: cli.output_dir,
        batch_rows: cli.batch_rows,
    };
    ml_predict::run(&config, &progress)?;
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
