//! `ml-predict`: score RAW_DIR/data.csv with a saved model, batch by batch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ml_predict::PredictConfig;

/// Score RAW_DIR/data.csv with MODEL_DIR/model.bin; write PREDICTIONS_DIR/predictions.csv
/// (columns prediction, probability; one row per input row, in input order).
#[derive(Debug, Parser)]
#[command(name = "ml-predict", bin_name = "ml-predict", version)]
struct Cli {
    /// Directory holding data.csv.
    #[arg(long, value_name = "RAW_DIR")]
    input_dir: PathBuf,
    /// Directory holding model.bin.
    #[arg(long, value_name = "MODEL_DIR")]
    model: PathBuf,
    /// Directory to write predictions.csv to (created if missing).
    #[arg(long, value_name = "PREDICTIONS_DIR")]
    output_dir: PathBuf,
    /// Rows read, scored and written at a time; bounds memory.
    #[arg(long, default_value_t = ml_predict::DEFAULT_BATCH_ROWS, value_parser = clap::value_parser!(usize))]
    batch_rows: usize,
    /// Print no progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = ml_cli::Progress::new("ml-predict").quiet(cli.quiet);
    if cli.batch_rows == 0 {
        anyhow::bail!("--batch-rows must be at least 1");
    }
    let config = PredictConfig {
        input_dir: cli.input_dir,
        model_dir: cli.model,
        output_dir: cli.output_dir,
        batch_rows: cli.batch_rows,
    };
    ml_predict::run(&config, &progress)?;
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
