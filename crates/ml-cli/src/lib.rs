//! What every stage binary shares at its edge: how an error is printed, which exit code it
//! gives, what a panic looks like, and timestamped progress lines on stderr (stdout stays
//! free for results).
//!
//! A stage's `main` looks like:
//!
//! ```no_run
//! # fn run() -> anyhow::Result<()> { Ok(()) }
//! # #[derive(Debug, thiserror::Error)] #[error("x")] struct DataError;
//! fn main() -> std::process::ExitCode {
//!     ml_cli::main(run, &[ml_cli::bad_input::<DataError>])
//! }
//! ```
//!
//! # Exit statuses
//!
//! | status | meaning | Airflow (`dags/common.py`) |
//! | --- | --- | --- |
//! | 0 | done | |
//! | 1 [`EXIT_FAILURE`] | anything else: an unwritable output, a full disk, a panic | retried as usual |
//! | 2 [`EXIT_USAGE`] | command line refused (clap, including every numeric bound) | no retry |
//! | 65 [`EXIT_BAD_INPUT`] | the input data or model is unusable | no retry: alert at once |
//! | 75 [`EXIT_TRANSIENT`] | MLflow unreachable, 5xx, 429, 401/403; nothing changed | retried with backoff |
//!
//! # How an error is classified
//!
//! ml-cli knows no library's error types (it depends on anyhow only, so a binary that uses
//! neither ml-data nor MLflow, such as ml-docker-guard, does not build them). A stage lists [`Rule`]s, one per
//! library it uses, each a plain function that looks at one cause of the error chain:
//! [`bad_input::<E>`](bad_input) for a library whose errors are about its input (ml-data's
//! `DataError`, ml-model's `ModelError`), [`transient_when`] with the library's own test for
//! the rest (`ml_mlflow::Error::is_transient`). One rule is built in: a cause that is a
//! `std::io::Error` (reading, writing or creating a file failed) says [`Failure::Other`].
//!
//! Every cause is shown to every rule, and the most retryable failure named wins:
//! [`Failure::Transient`], then [`Failure::Other`], then [`Failure::BadInput`]; none named is
//! `Other`. Exit 65 promises that no retry can help, so it is given only when nothing in the
//! chain points at the machine or a service: `DataError::Write` (a full disk) carries an
//! `io::Error` and exits 1 although it is a `DataError`, and so does a model file that could
//! not be written. See [`classify`].
//!
//! # Panics
//!
//! [`main`] installs [`install_panic_hook`]: a panic anywhere prints one line,
//! `error: internal error: <message> at <file>:<line>`, unwinds (so temporary output files
//! are removed) and exits 1, instead of Rust's multi-line report and exit 101. The
//! backtrace is printed after that line only when asked for with `RUST_BACKTRACE` (or
//! `RUST_LIB_BACKTRACE`), as Rust's own hook does. Setting [`PANIC_FOR_TEST_ENV`] makes
//! [`main`] panic before running the stage: the stages' tests use it to check their real
//! binary.
//!
//! # Tests
//!
//! The `testing` feature (module `testing`, for the stages' integration tests) holds what all
//! seven check the same way: modes under a umask, the panic line, an unreachable MLflow.

use std::error::Error;
use std::fmt::Display;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[cfg(all(unix, any(test, feature = "testing")))]
pub mod testing;

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

    /// Which failure wins when causes disagree: the one a retry is most likely to cure.
    fn retry_rank(self) -> u8 {
        match self {
            Failure::BadInput => 0,
            Failure::Other => 1,
            Failure::Transient => 2,
        }
    }
}

/// One library's say on one cause of an error chain: `Some` when the cause is that library's
/// error and means a particular [`Failure`]. See the module documentation.
pub type Rule = fn(&(dyn Error + 'static)) -> Option<Failure>;

/// [`Rule`] for a library whose errors are all about its input (the `std::io::Error` inside
/// one that is not, such as a failed write, still makes it [`Failure::Other`]).
pub fn bad_input<E: Error + 'static>(cause: &(dyn Error + 'static)) -> Option<Failure> {
    cause.is::<E>().then_some(Failure::BadInput)
}

/// For a [`Rule`]: errors of type `E` for which `is_transient` holds are
/// [`Failure::Transient`]; the others are left to the other rules.
///
/// ```
/// # #[derive(Debug, thiserror::Error)] #[error("x")] struct Error; impl Error { fn is_transient(&self) -> bool { true } }
/// const RULES: &[ml_cli::Rule] = &[|cause| ml_cli::transient_when(cause, Error::is_transient)];
/// ```
pub fn transient_when<E: Error + 'static>(
    cause: &(dyn Error + 'static),
    is_transient: fn(&E) -> bool,
) -> Option<Failure> {
    cause
        .downcast_ref::<E>()
        .filter(|e| is_transient(e))
        .map(|_| Failure::Transient)
}

/// The built-in rule: a failed read, write or directory creation is the machine's failure.
fn io_errors(cause: &(dyn Error + 'static)) -> Option<Failure> {
    cause.is::<std::io::Error>().then_some(Failure::Other)
}

/// The failure `err` means under `rules` (plus the built-in I/O rule): the most retryable
/// one any rule names for any cause, [`Failure::Other`] when none does.
pub fn classify(err: &anyhow::Error, rules: &[Rule]) -> Failure {
    err.chain()
        .flat_map(|cause| {
            std::iter::once(io_errors as Rule)
                .chain(rules.iter().copied())
                .filter_map(move |rule| rule(cause))
        })
        .max_by_key(|f| f.retry_rank())
        .unwrap_or(Failure::Other)
}

/// Set (to anything) to make [`main`] panic before it runs the stage; for tests.
pub const PANIC_FOR_TEST_ENV: &str = "ML_CLI_TEST_PANIC";

/// The whole `main` of a stage: installs the panic hook, runs `run` (which parses the
/// command line, so usage errors exit 2 through clap), prints the error if there is one and
/// exits with the status [`classify`] gives under `rules`; a panic exits 1.
pub fn main(run: impl FnOnce() -> anyhow::Result<()>, rules: &[Rule]) -> ExitCode {
    install_panic_hook();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        if std::env::var_os(PANIC_FOR_TEST_ENV).is_some() {
            panic!("{PANIC_FOR_TEST_ENV} is set");
        }
        run()
    }));
    match result {
        Ok(result) => finish_with(result, |err| classify(err, rules)),
        // The hook has printed the one line.
        Err(_) => ExitCode::from(EXIT_FAILURE),
    }
}

/// Replaces Rust's panic report with one `error: internal error: <message> at <file>:<line>`
/// line on stderr (and the backtrace after it, if `RUST_BACKTRACE` asks for one).
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic without a message");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("{}", panic_line(message, &at));
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("{backtrace}");
        }
    }));
}

fn panic_line(message: &str, at: &str) -> String {
    format!("error: internal error: {message}{at}").replace('\n', " ")
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

/// A clap value parser's core for a number: a finite `f64` for which `ok` holds, or the
/// message `must be <what>` (clap prefixes the flag and the value given).
pub fn parse_f64(text: &str, ok: impl Fn(f64) -> bool, what: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && ok(v) => Ok(v),
        _ => Err(format!("must be {what}")),
    }
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

    #[derive(Debug, thiserror::Error)]
    enum DataError {
        #[error("bad cell")]
        Cell,
        #[error("cannot write")]
        Write(#[source] std::io::Error),
    }

    #[derive(Debug, thiserror::Error)]
    enum ServiceError {
        #[error("unreachable")]
        Down,
        #[error("not found")]
        Missing,
    }

    impl ServiceError {
        fn is_transient(&self) -> bool {
            matches!(self, ServiceError::Down)
        }
    }

    const RULES: &[Rule] = &[bad_input::<DataError>, |cause| {
        transient_when(cause, ServiceError::is_transient)
    }];

    #[test]
    fn the_most_retryable_failure_named_wins() {
        let kind = |err: anyhow::Error| classify(&err, RULES);
        let data = || anyhow::Error::new(DataError::Cell).context("cannot preprocess");
        assert_eq!(kind(data()), Failure::BadInput);
        assert_eq!(kind(data().context("outer")), Failure::BadInput);
        assert_eq!(kind(anyhow::anyhow!("disk full")), Failure::Other);
        assert_eq!(
            kind(anyhow::Error::new(ServiceError::Down).context("log run")),
            Failure::Transient
        );
        // Not transient, and not about the input: left to the default.
        assert_eq!(
            kind(anyhow::Error::new(ServiceError::Missing)),
            Failure::Other
        );
        // An I/O error under a library error is the machine's failure, not the input's.
        let io = std::io::Error::other("No space left on device");
        assert_eq!(
            kind(anyhow::Error::new(DataError::Write(io))),
            Failure::Other
        );
        assert_eq!(
            classify(&anyhow::Error::new(DataError::Cell), &[]),
            Failure::Other,
            "no rules, no verdict"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Failure::Other.exit_code(), 1);
        assert_eq!(Failure::BadInput.exit_code(), 65);
        assert_eq!(Failure::Transient.exit_code(), 75);
    }

    #[test]
    fn panic_line_is_one_line() {
        assert_eq!(
            panic_line("capacity overflow\nsecond", " at src/lib.rs:3"),
            "error: internal error: capacity overflow second at src/lib.rs:3"
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
