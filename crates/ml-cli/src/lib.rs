//! What every stage binary shares at its edge: how an error is printed, which exit code it
//! gives, and timestamped progress lines on stderr (stdout stays free for results).
//!
//! A stage's `main` looks like:
//!
//! ```no_run
//! # fn run() -> anyhow::Result<()> { Ok(()) }
//! fn main() -> std::process::ExitCode {
//!     ml_cli::finish(run())
//! }
//! ```

use std::fmt::Display;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Exit status of a stage that failed for a reason not classified below (an unwritable
/// output, a bug): Airflow retries it as usual.
pub const EXIT_FAILURE: u8 = 1;
/// Command-line usage error, as clap exits: no retry can fix it.
pub const EXIT_USAGE: u8 = 2;
/// Bad input data or model (sysexits' `EX_DATAERR`): permanent, no retry can fix it.
pub const EXIT_BAD_INPUT: u8 = 65;
/// A service the stage needs did not answer, or answered with a server or authentication
/// error (sysexits' `EX_TEMPFAIL`): nothing was changed, and a later retry may succeed.
pub const EXIT_TRANSIENT: u8 = 75;

/// Why a stage failed, which decides its exit status (and so whether Airflow retries it:
/// `airflow_ml_dags/dags/common.py` maps the same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Anything not classified: [`EXIT_FAILURE`].
    Other,
    /// The data or the model given is unusable: [`EXIT_BAD_INPUT`].
    BadInput,
    /// A service was unreachable or failing; nothing was changed: [`EXIT_TRANSIENT`].
    Transient,
}

impl Failure {
    pub fn exit_code(self) -> u8 {
        match self {
            Failure::Other => EXIT_FAILURE,
            Failure::BadInput => EXIT_BAD_INPUT,
            Failure::Transient => EXIT_TRANSIENT,
        }
    }
}

/// Maps a stage's result to its exit code, reporting the error if there is one.
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    finish_with(result, |_| Failure::Other)
}

/// [`finish`] with the exit status chosen by `classify` from the error.
pub fn finish_with(
    result: anyhow::Result<()>,
    classify: impl Fn(&anyhow::Error) -> Failure,
) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", render_error(&err));
            ExitCode::from(classify(&err).exit_code())
        }
    }
}

/// Prints one line, `error: <outermost message>: <cause>: <cause> ...`, to stderr and returns
/// the failure exit code. One line on purpose: task logs, alerts and `grep error:` keep the
/// whole story (which file, row and column) together.
pub fn report_error(err: &anyhow::Error) -> ExitCode {
    eprintln!("{}", render_error(err));
    ExitCode::from(EXIT_FAILURE)
}

/// The text [`report_error`] prints, without the trailing newline.
pub fn render_error(err: &anyhow::Error) -> String {
    let mut text = format!("error: {err}");
    for cause in err.chain().skip(1) {
        text.push_str(&format!(": {cause}"));
    }
    // A message with a line break of its own (rare: an HTTP body) stays on the line too.
    text.replace('\n', " ")
}

/// Progress lines on stderr, each prefixed with the stage name and the seconds since start:
/// `[ml-generate   0.412s] wrote 3,021 rows`.
#[derive(Debug, Clone)]
pub struct Progress {
    stage: &'static str,
    start: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(stage: &'static str) -> Self {
        Self {
            stage,
            start: Instant::now(),
            quiet: false,
        }
    }

    /// A progress log that prints nothing (for `--quiet`).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Prints one progress line.
    pub fn log(&self, message: impl Display) {
        if !self.quiet {
            eprintln!(
                "[{} {:>8.3}s] {message}",
                self.stage,
                self.elapsed().as_secs_f64()
            );
        }
    }

    /// Runs `f`, then logs `what` with its duration and, given a row count, the rows per second.
    pub fn step<T>(
        &self,
        what: impl Display,
        rows: impl Fn(&T) -> usize,
        f: impl FnOnce() -> T,
    ) -> T {
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        let n = rows(&out);
        self.log(format_args!(
            "{what}: {} rows in {:.3}s ({}/s)",
            thousands(n),
            took.as_secs_f64(),
            thousands(rate(n, took))
        ));
        out
    }
}

/// Rows per second, 0 when no time was measured.
pub fn rate(rows: usize, took: Duration) -> usize {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        (rows as f64 / secs) as usize
    } else {
        0
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn error_report_lists_every_cause() {
        let err = Err::<(), _>(std::io::Error::other("disk full"))
            .context("data/raw/data.csv: cannot write")
            .context("generate failed")
            .expect_err("is an error");
        assert_eq!(
            render_error(&err),
            "error: generate failed: data/raw/data.csv: cannot write: disk full"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
