//! Retry behaviour on loopback only, no MLflow needed: a closed port, and a bare socket that
//! answers like an overloaded server. (What MLflow itself answers is checked against the
//! real server in `mlflow_server.rs`.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use ml_mlflow::{Client, Error, RetryPolicy};

fn quick_retry(budget_ms: u64) -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        budget: Duration::from_millis(budget_ms),
        request_timeout: Duration::from_secs(5),
    }
}

#[test]
fn a_closed_port_ends_in_a_clear_error_within_the_budget() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = Client::new(&format!("http://127.0.0.1:{port}"))
        .expect("valid URL")
        .with_retry(quick_retry(1500));
    let started = Instant::now();
    let err = client
        .get_experiment_by_name("heart-disease")
        .expect_err("nobody listens");
    let elapsed = started.elapsed();

    match &err {
        Error::Unreachable { attempts, .. } => assert!(*attempts >= 3, "retried: {attempts}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        elapsed >= Duration::from_millis(700),
        "backed off: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(2500),
        "bounded by the budget: {elapsed:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "GET /api/2.0/mlflow/experiments/get-by-name: could not talk to MLflow at http://127.0.0.1:{port} ("
        )),
        "{text}"
    );
    let cause = std::error::Error::source(&err)
        .map(|c| c.to_string())
        .unwrap_or_default();
    assert!(!cause.is_empty(), "the transport error is the cause");
}

/// Serves `answers` (status, body) to consecutive requests, then stops.
fn scripted_server(answers: Vec<(u16, &'static str)>) -> (u16, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        for (status, body) in answers {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                break;
            }
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body_in = vec![0; length];
            let _ = reader.read_exact(&mut body_in);
            seen.push(request_line.trim().to_string());
            let mut stream = reader.into_inner();
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
        seen
    });
    (port, handle)
}

#[test]
fn overload_answers_are_retried_until_the_server_recovers() {
    let (port, server) = scripted_server(vec![
        (503, "<html>unavailable</html>"),
        (
            429,
            r#"{"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}"#,
        ),
        (
            200,
            r#"{"experiment": {"experiment_id": "7", "name": "heart-disease"}}"#,
        ),
    ]);
    let client = Client::new(&format!("http://127.0.0.1:{port}"))
        .expect("valid URL")
        .with_retry(quick_retry(10_000));
    let experiment = client
        .get_experiment_by_name("heart disease")
        .expect("third attempt succeeds")
        .expect("found");
    assert_eq!(experiment.experiment_id, "7");
    let seen = server.join().expect("server thread");
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|l| l == "GET /api/2.0/mlflow/experiments/get-by-name?experiment_name=heart+disease HTTP/1.1"
                || l == "GET /api/2.0/mlflow/experiments/get-by-name?experiment_name=heart%20disease HTTP/1.1"),
        "{seen:?}"
    );
}

#[test]
fn persistent_server_errors_end_with_status_and_error_code() {
    let answer = (
        500,
        r#"{"error_code": "INTERNAL_ERROR", "message": "database is locked"}"#,
    );
    let (port, server) = scripted_server(vec![answer; 20]);
    let client = Client::new(&format!("http://127.0.0.1:{port}"))
        .expect("valid URL")
        .with_retry(quick_retry(600));
    let err = client.create_experiment("x").expect_err("keeps failing");
    match &err {
        Error::Api {
            status,
            error_code,
            attempts,
            ..
        } => {
            assert_eq!(*status, 500);
            assert_eq!(error_code.as_deref(), Some("INTERNAL_ERROR"));
            assert!(*attempts >= 2, "retried: {attempts}");
        }
        other => panic!("expected Api, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("POST /api/2.0/mlflow/experiments/create: MLflow answered HTTP 500 INTERNAL_ERROR after "),
        "{text}"
    );
    assert!(text.ends_with("attempt(s): database is locked"), "{text}");
    drop(client);
    // Unblock the server thread: it waits for requests that will not come.
    for _ in 0..20 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            break;
        }
    }
    let _ = server.join();
}
