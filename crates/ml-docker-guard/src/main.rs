//! `ml-docker-guard`: serve the guarded Docker API, or check that it answers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ml_docker_guard::{Config, CreatePolicy, Server};

/// The Docker API for the task launchers: passes the calls DockerOperator makes, and a
/// containers/create only for a locked-down task container of the pipeline's images
/// (non-root, read-only root, no capabilities, no-new-privileges, limits, the data
/// directory at /data, network none or the task network). Everything else gets 403.
#[derive(Debug, Parser)]
#[command(name = "ml-docker-guard", bin_name = "ml-docker-guard", version)]
struct Cli {
    /// Address to listen on for the task launchers.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:2375")]
    listen: SocketAddr,
    /// The Docker engine's unix socket.
    #[arg(long, value_name = "PATH", default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
    /// An image a task container may run, exactly as the DAGs name it (ml-train:0.1.0).
    /// Repeat the flag, or separate names with commas.
    #[arg(
        long = "image",
        value_name = "NAME",
        env = "ML_GUARD_IMAGES",
        value_delimiter = ',',
        required_unless_present = "check"
    )]
    images: Vec<String>,
    /// The data directory's path on the Docker host: the only bind source allowed, mounted
    /// at /data or below.
    #[arg(
        long,
        value_name = "HOST_PATH",
        env = "ML_HOST_DATA_DIR",
        required_unless_present = "check"
    )]
    data_dir: Option<String>,
    /// Where the guard sees the data directory (mounted read-only). With it, binds of
    /// subdirectories of --data-dir are allowed once checked for symbolic links; without
    /// it, only --data-dir itself.
    #[arg(long, value_name = "PATH")]
    data_dir_view: Option<PathBuf>,
    /// The network task containers that talk to MLflow join; the other allowed network
    /// mode is none.
    #[arg(
        long,
        value_name = "NAME",
        env = "ML_TASK_NETWORK",
        required_unless_present = "check"
    )]
    task_network: Option<String>,
    /// Log every allowed request on stderr (refusals, errors and creates always are).
    #[arg(long)]
    log_allowed: bool,
    /// Client connections served at once; more are answered 503.
    #[arg(long, value_name = "N", default_value_t = 128)]
    max_connections: usize,
    /// Seconds a client connection may sit idle before the guard closes it.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    idle_timeout: u64,
    /// Health check instead of serving: exit 0 if the guard at URL (http://HOST:PORT)
    /// answers GET /_ping with 200, 1 otherwise.
    #[arg(long, value_name = "URL")]
    check: Option<String>,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(url) = &cli.check {
        return Ok(ml_docker_guard::health::check(url, Duration::from_secs(5))?);
    }
    let (Some(data_dir), Some(task_network)) = (&cli.data_dir, &cli.task_network) else {
        anyhow::bail!("--data-dir and --task-network are required");
    };
    // A view that is not there would find no symbolic link anywhere: fail closed instead
    // (a compose file that forgot the read-only mount of the data directory).
    if let Some(view) = &cli.data_dir_view {
        if !view.is_dir() {
            anyhow::bail!("--data-dir-view {} is not a directory", view.display());
        }
    }
    let policy = CreatePolicy::new(
        cli.images.iter().map(|i| i.trim().to_string()),
        data_dir,
        cli.data_dir_view.clone(),
        task_network,
    )?;
    let config = Config {
        listen: cli.listen,
        docker_socket: cli.docker_socket.clone(),
        policy,
        log_allowed: cli.log_allowed,
        idle_timeout: Duration::from_secs(cli.idle_timeout.max(1)),
        max_connections: cli.max_connections.max(1),
    };
    let server = Server::bind(config)?;
    let addr = server
        .local_addr()
        .context("cannot read the listening address")?;
    eprintln!(
        "ml-docker-guard: listening on {addr}, engine {}, images {}, data dir {data_dir}, task network {task_network}",
        cli.docker_socket.display(),
        cli.images.join(","),
    );
    server.run()?;
    Ok(())
}

/// One line on stderr, `error: <message>: <cause>: ...`, and exit 1: the shape of every
/// binary in this workspace (ml-cli's), without depending on the stages' plumbing.
fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut line = format!("error: {err}");
            for cause in err.chain().skip(1) {
                line.push_str(&format!(": {cause}"));
            }
            eprintln!("{}", line.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
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
    fn check_mode_needs_no_policy_flags() {
        let cli = Cli::try_parse_from(["ml-docker-guard", "--check", "http://127.0.0.1:2375"]);
        assert!(cli.is_ok(), "{cli:?}");
    }

    #[test]
    fn images_may_be_repeated_or_comma_separated() {
        let cli = Cli::try_parse_from([
            "ml-docker-guard",
            "--image",
            "ml-train:1,ml-split:1",
            "--image",
            "ml-predict:1",
            "--data-dir",
            "/srv/data",
            "--task-network",
            "tasks",
        ])
        .expect("parse");
        assert_eq!(cli.images, ["ml-train:1", "ml-split:1", "ml-predict:1"]);
    }
}
