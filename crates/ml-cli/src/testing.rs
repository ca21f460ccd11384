//! Helpers for the stage binaries' integration tests (feature `testing`), one copy for all
//! seven: the modes of what a stage wrote under a given umask, the one-line panic report,
//! a stage pointed at an MLflow where nothing listens, and the sha256 a golden test pins.
//! They panic on failure, as test code does.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The umasks every stage's mode test runs under: the usual one and a strict one.
pub const UMASKS: [u32; 2] = [0o022, 0o077];

/// `command` run by `sh` after `umask <umask>` (its program, arguments and environment).
pub fn with_umask(umask: u32, command: &Command) -> Command {
    let mut wrapped = Command::new("sh");
    wrapped
        .arg("-c")
        .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    wrapped
}

/// Runs `command` under `umask` and checks that it succeeded and that what it wrote follows
/// the writers' rule: every file below `root` (or `root` itself, a file) is
/// `0o666 & !umask`, and every directory in `made` (those the stage created) `0o777 & !umask`.
/// Returns the files found, sorted, so the test can say which it expected.
pub fn assert_modes_under_umask(
    umask: u32,
    command: &Command,
    root: &Path,
    made: &[&Path],
) -> Vec<PathBuf> {
    let out = with_umask(umask, command).output().expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read_dir") {
                pending.push(entry.expect("entry").path());
            }
        } else {
            assert_eq!(
                mode(&path),
                0o666 & !umask,
                "{} under umask {umask:03o}",
                path.display()
            );
            files.push(path);
        }
    }
    for dir in made {
        assert_eq!(
            mode(dir),
            0o777 & !umask,
            "{} under umask {umask:03o}",
            dir.display()
        );
    }
    files.sort();
    files
}

/// Runs `command` with [`crate::PANIC_FOR_TEST_ENV`] set (and no `RUST_BACKTRACE`) and
/// checks the report: exit 1 and exactly one line on stderr,
/// `error: internal error: ... at <file>:<line>`, nothing on stdout.
pub fn assert_panic_reported(mut command: Command) {
    let out = command
        .env(crate::PANIC_FOR_TEST_ENV, "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("spawn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let line = stderr.trim_end();
    assert!(
        line.starts_with(&format!(
            "error: internal error: {} is set at ",
            crate::PANIC_FOR_TEST_ENV
        )) && line.contains(".rs:"),
        "{line}"
    );
    assert!(out.stdout.is_empty());
}

/// Points `command` at an MLflow where nothing listens (a loopback port the system just gave
/// out and that was closed again, so connecting is refused at once), with a one-second retry
/// budget; returns its URI.
pub fn unreachable_mlflow(command: &mut Command) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    command
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_HTTP_RETRY_BUDGET", "1");
    uri
}

/// Runs a `command` set up by [`unreachable_mlflow`] for `uri` and checks that it gave up
/// within seconds with exit 75 (transient: Airflow retries it with backoff) and one `error:`
/// line saying which MLflow it could not talk to.
pub fn assert_mlflow_unreachable(mut command: Command, uri: &str) {
    let started = std::time::Instant::now();
    let out = command.output().expect("spawn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let errors = error_lines(&out.stderr);
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&format!("could not talk to MLflow at {uri}")),
        "{stderr}"
    );
}

/// The lines of `stderr` that start with `error: `.
pub fn error_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string)
        .collect()
}

/// The sha256 of a file, in lower-case hex, for golden tests.
pub fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
