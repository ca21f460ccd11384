//! `ml-preprocess`: validates and cleans a raw day into `train_data.csv`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// Validate a day's raw data.csv and target.csv, clean them, write train_data.csv.
///
/// Any schema violation (columns, non-numbers, NaN/inf text, out-of-range values, labels
/// other than 0/1, differing row counts, empty or repeated ids, ids that differ between
/// data.csv and target.csv) fails with the file, column and row, and writes nothing. The
/// optional id column is a key, not a feature: train_data.csv does not carry it. Cleaning
/// drops all-empty rows and exact duplicates; empty cells are kept for the model's imputer.
#[derive(Debug, Parser)]
#[command(name = "ml-preprocess", bin_name = "ml-preprocess", version)]
struct Cli {
    /// Raw day directory holding data.csv and target.csv.
    #[arg(long, value_name = "RAW_DIR")]
    input_dir: PathBuf,
    /// Directory to write train_data.csv into (created if missing).
    #[arg(long, value_name = "PROCESSED_DIR")]
    output_dir: PathBuf,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = ml_cli::Progress::new("ml-preprocess").quiet(cli.quiet);
    let options = ml_preprocess::Options {
        input_dir: cli.input_dir,
        output_dir: cli.output_dir,
    };
    let stats = progress
        .step(
            format_args!("preprocess {}", options.input_dir.display()),
            |r: &Result<ml_preprocess::CleanStats, _>| r.as_ref().map_or(0, |s| s.rows_in),
            || ml_preprocess::run(&options),
        )
        .with_context(|| format!("cannot preprocess {}", options.input_dir.display()))?;
    progress.log(format_args!(
        "wrote {}: {} rows ({} all-empty and {} duplicate rows dropped)",
        ml_preprocess::output_path(&options.output_dir).display(),
        ml_cli::thousands(stats.rows_out),
        stats.all_missing,
        stats.duplicates
    ));
    Ok(())
}

fn main() -> ExitCode {
    ml_cli::main(
        || run(Cli::parse()),
        &[ml_cli::bad_input::<ml_data::DataError>],
    )
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
