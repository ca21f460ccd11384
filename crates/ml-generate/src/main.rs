//! `ml-generate`: writes one day of synthetic records to `DIR/data.csv` and `DIR/target.csv`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ml_data::Date;

/// Emulate one day of arriving heart-disease records.
///
/// Writes DIR/data.csv (an id column, then 13 feature columns) and DIR/target.csv (id, then
/// the 0/1 label). A row's id is YYYY-MM-DD-NNNNNN, the date and its row number from 1, the
/// same in both files. The same date and seed always give byte-identical files.
#[derive(Debug, Parser)]
#[command(name = "ml-generate", bin_name = "ml-generate", version)]
struct Cli {
    /// Directory to write data.csv and target.csv into (created if missing).
    #[arg(long, value_name = "DIR")]
    output_dir: PathBuf,
    /// The day to emulate (YYYY-MM-DD); drives volume, drift and the random stream.
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: Date,
    /// Number of rows instead of the day's natural volume (a few thousand); 1 to 10,000,000,
    /// as the day is built in memory (about 250 bytes a row).
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=ml_generate::MAX_ROWS as u64))]
    rows: Option<usize>,
    /// Random seed, mixed with the date.
    #[arg(long, value_name = "N", default_value_t = ml_generate::DEFAULT_SEED)]
    seed: u64,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = ml_cli::Progress::new("ml-generate").quiet(cli.quiet);
    let options = ml_generate::Options {
        output_dir: cli.output_dir,
        date: cli.date,
        rows: cli.rows,
        seed: cli.seed,
    };
    let summary = progress.step(
        format_args!("generate {} (seed {})", options.date, options.seed),
        |r: &Result<ml_generate::Summary, _>| r.as_ref().map_or(0, |s| s.rows),
        || ml_generate::run(&options),
    );
    let summary = summary.with_context(|| format!("cannot generate data for {}", options.date))?;
    progress.log(format_args!(
        "wrote {} and {} ({} positives)",
        summary.data.display(),
        summary.target.display(),
        ml_cli::thousands(summary.positives)
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
