//! `ml-split`: stratified train/validation split of `train_data.csv`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// Split PROCESSED_DIR/train_data.csv into train.csv and val.csv, stratified by target.
///
/// The same input and seed always give the same split; rows keep their input order.
#[derive(Debug, Parser)]
#[command(name = "ml-split", bin_name = "ml-split", version)]
struct Cli {
    /// Directory holding train_data.csv.
    #[arg(long, value_name = "PROCESSED_DIR")]
    input_dir: PathBuf,
    /// Directory to write train.csv and val.csv into (created if missing).
    #[arg(long, value_name = "PROCESSED_DIR")]
    output_dir: PathBuf,
    /// Share of rows held out for validation, strictly between 0 and 1.
    #[arg(long, value_name = "FRACTION", default_value_t = ml_split::DEFAULT_VAL_SIZE, value_parser = parse_fraction)]
    val_size: f64,
    /// Random seed of the stratified shuffle.
    #[arg(long, value_name = "N", default_value_t = ml_split::DEFAULT_SEED)]
    seed: u64,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!(
            "{text:?} is not a fraction strictly between 0 and 1"
        )),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = ml_cli::Progress::new("ml-split").quiet(cli.quiet);
    let options = ml_split::Options {
        input_dir: cli.input_dir,
        output_dir: cli.output_dir,
        val_size: cli.val_size,
        seed: cli.seed,
    };
    let summary = progress
        .step(
            format_args!("split {}", options.input_dir.display()),
            |r: &Result<ml_split::Summary, _>| r.as_ref().map_or(0, |s| s.train_rows + s.val_rows),
            || ml_split::run(&options),
        )
        .with_context(|| format!("cannot split {}", options.input_dir.display()))?;
    progress.log(format_args!(
        "wrote {} ({} rows, {} positive) and {} ({} rows, {} positive)",
        ml_split::train_path(&options.output_dir).display(),
        summary.train_rows,
        summary.train_positives,
        ml_split::val_path(&options.output_dir).display(),
        summary.val_rows,
        summary.val_positives
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

    #[test]
    fn val_size_must_be_a_proper_fraction() {
        assert!(parse_fraction("0.2").is_ok());
        for bad in ["0", "1", "-0.1", "1.5", "abc", "NaN"] {
            assert!(parse_fraction(bad).is_err(), "{bad}");
        }
    }
}
