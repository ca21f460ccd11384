//! `resolve-probe HOST:PORT...`: resolves each address and opens a TCP connection to it.
//! Prints one line per address; exits 1 if any of them fails.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

fn probe(target: &str) -> Result<String, String> {
    let addrs: Vec<_> = target
        .to_socket_addrs()
        .map_err(|err| format!("resolve: {err}"))?
        .collect();
    let first = addrs.first().ok_or("resolve: no address")?;
    TcpStream::connect_timeout(first, Duration::from_secs(5))
        .map_err(|err| format!("connect {first}: {err}"))?;
    Ok(format!("connected to {first}"))
}

fn main() -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for target in std::env::args().skip(1) {
        match probe(&target) {
            Ok(msg) => println!("{target}: {msg}"),
            Err(msg) => {
                eprintln!("error: {target}: {msg}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}
