//! Runs the real `ml-docker-guard` binary in front of a fake Docker engine on a unix socket
//! in a temp dir. The fake engine answers canned responses, records every request it gets
//! (so a test can say what was *not* forwarded), answers an attach with `101 UPGRADED` and
//! echoes, and streams logs in chunks behind a gate the test opens.
//!
//! `cargo test --release -p ml-docker-guard --test proxy -- --ignored --nocapture latency`
//! prints the guard's added latency per request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ml_docker_guard::http::{self, BufConn, Framing};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ml-docker-guard");
const TRAIN: &str = include_str!("fixtures/create-train.json");
const OURS: &str = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
const POSTGRES: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const STAGES: [&str; 7] = [
    "generate",
    "preprocess",
    "split",
    "train",
    "validate",
    "predict",
    "promote",
];

/// One request as the fake engine received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    target: String,
    headers: http::Headers,
    body: Vec<u8>,
}

/// A gate a test opens to let the fake engine send the rest of a stream.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().expect("gate") = true;
        self.cond.notify_all();
    }

    fn wait(&self) {
        let mut open = self.open.lock().expect("gate");
        while !*open {
            open = self.cond.wait(open).expect("gate");
        }
    }
}

#[derive(Default)]
struct EngineState {
    received: Mutex<Vec<Received>>,
    connections: Mutex<usize>,
    logs_gate: Gate,
}

struct FakeEngine {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    state: Arc<EngineState>,
}

impl FakeEngine {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind fake engine");
        let state = Arc::new(EngineState::default());
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                *shared.connections.lock().expect("count") += 1;
                let state = Arc::clone(&shared);
                thread::spawn(move || serve_engine(conn, &state));
            }
        });
        Self {
            _dir: dir,
            socket,
            state,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("received").clone()
    }

    /// `METHOD target` of every request received, in order.
    fn calls(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| format!("{} {}", r.method, r.target))
            .collect()
    }

    fn connections(&self) -> usize {
        *self.state.connections.lock().expect("count")
    }
}

fn inspect(id: &str, labels: Value, env: &[&str]) -> Vec<u8> {
    json!({ "Id": id, "Name": "/x", "Config": { "Labels": labels, "Env": env } })
        .to_string()
        .into_bytes()
}

fn reply(conn: &mut UnixStream, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nApi-Version: 1.47\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(&[head.as_bytes(), body].concat())
        .expect("engine write");
}

fn reply_chunked(conn: &mut UnixStream, status: &str, chunks: &[&[u8]]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    conn.write_all(&out).expect("engine write");
}

/// The fake engine's side of one connection: requests in a keep-alive loop.
fn serve_engine(stream: UnixStream, state: &EngineState) {
    let mut write = stream.try_clone().expect("clone");
    let mut conn = BufConn::new(stream);
    loop {
        let Ok(Some(head)) = conn.read_head() else {
            return;
        };
        let req = http::parse_request(&head).expect("engine: request");
        let framing = http::request_framing(&req).expect("engine: framing");
        let body = http::read_body(&mut conn, framing, 1 << 20).expect("engine: body");
        state.received.lock().expect("received").push(Received {
            method: req.method.clone(),
            target: req.target.clone(),
            headers: req.headers.clone(),
            body: body.clone(),
        });
        let path = req.target.split('?').next().unwrap_or_default();
        let path = path.strip_prefix("/v1.47").unwrap_or(path);
        let parts: Vec<&str> = path[1..].split('/').collect();
        let w = &mut write;
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["_ping"]) => reply(w, "200 OK", "text/plain; charset=utf-8", b"OK"),
            ("HEAD", ["_ping"]) => {
                w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
                    .expect("engine write");
            }
            ("GET", ["version"]) => {
                reply(w, "200 OK", "application/json", br#"{"ApiVersion":"1.47"}"#)
            }
            ("POST", ["containers", "create"]) => reply(
                w,
                "201 Created",
                "application/json",
                format!(r#"{{"Id":"{OURS}","Warnings":[]}}"#).as_bytes(),
            ),
            ("GET", ["containers", id, "json"]) => match *id {
                "ours" | "0f0f0f" | OURS => reply(
                    w,
                    "200 OK",
                    "application/json",
                    &inspect(OURS, json!({ "ml.docker-guard": "allowed" }), &[]),
                ),
                "postgres" | POSTGRES => {
                    let body = inspect(
                        POSTGRES,
                        json!({ "com.docker.compose.service": "postgres" }),
                        &["POSTGRES_PASSWORD=hunter2"],
                    );
                    reply_chunked(w, "200 OK", &[&body[..10], &body[10..]]);
                }
                other => reply(
                    w,
                    "404 Not Found",
                    "application/json",
                    format!(r#"{{"message":"No such container: {other}"}}"#).as_bytes(),
                ),
            },
            ("POST", ["containers", _, "start" | "stop" | "kill"])
            | ("DELETE", ["containers", _]) => {
                w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                    .expect("engine write");
            }
            ("POST", ["containers", _, "wait"]) => {
                reply_chunked(w, "200 OK", &[br#"{"StatusCode":0}"#]);
            }
            ("GET", ["containers", _, "logs"]) => {
                w.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nline 1\n\r\n",
                )
                .expect("engine write");
                state.logs_gate.wait();
                w.write_all(b"7\r\nline 2\n\r\n0\r\n\r\n")
                    .expect("engine write");
            }
            ("POST", ["containers", _, "attach"]) => {
                // The first bytes of the stream go out with the 101 in one write.
                w.write_all(
                    b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello\n",
                )
                .expect("engine write");
                let early = conn.buffered().to_vec();
                let mut raw = conn.stream;
                if !early.is_empty() {
                    let _ = w.write_all(&[b"echo:", &early[..]].concat());
                }
                let mut buf = [0; 1024];
                loop {
                    match raw.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if w.write_all(&[b"echo:", &buf[..n]].concat()).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = w.write_all(b"bye\n");
                return;
            }
            _ => reply(
                w,
                "500 Internal Server Error",
                "application/json",
                br#"{"message":"fake engine: unexpected call"}"#,
            ),
        }
    }
}

/// The guard binary, serving on a free port in front of `engine`.
struct Guard {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// The guard's view of the data directory (empty: every subdirectory bind passes the
    /// symbolic-link check), as compose mounts it at /data.
    _view: tempfile::TempDir,
}

impl Guard {
    fn start(engine: &FakeEngine) -> Self {
        Self::start_with(&engine.socket, &[])
    }

    fn start_with(socket: &Path, extra: &[&str]) -> Self {
        let view = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(BIN);
        cmd.args(["--listen", "127.0.0.1:0", "--docker-socket"])
            .arg(socket)
            .arg("--data-dir-view")
            .arg(view.path())
            .args([
                "--data-dir",
                "/srv/ml-test/data",
                "--task-network",
                "ml-test-tasks",
            ])
            .args(extra)
            .env_remove("ML_GUARD_IMAGES")
            .env_remove("ML_HOST_DATA_DIR")
            .env_remove("ML_TASK_NETWORK")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for stage in STAGES {
            cmd.arg("--image").arg(format!("ml-{stage}:0.1.0"));
        }
        let mut child = cmd.spawn().expect("start the guard");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        stderr.read_line(&mut first).expect("first line");
        let addr = first
            .strip_prefix("ml-docker-guard: listening on ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            child,
            addr,
            log,
            _view: view,
        }
    }

    fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).expect("connect to the guard");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Client {
            conn: BufConn::new(stream),
        }
    }

    /// The guard's stderr so far, waiting a moment for a line holding `piece`.
    fn log_with(&self, piece: &str) -> String {
        for _ in 0..100 {
            let log = self.log.lock().expect("log").clone();
            if log.contains(piece) {
                return log;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive client speaking to the guard (or, for the latency figures, to the engine).
struct Client<S = TcpStream> {
    conn: BufConn<S>,
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: http::Headers,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl<S: Read + Write> Client<S> {
    fn send(&mut self, method: &str, target: &str, extra: &str, body: &[u8]) {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: docker-guard:2375\r\nUser-Agent: docker-sdk-python/7.1.0\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        );
        self.conn
            .stream
            .write_all(&[head.as_bytes(), body].concat())
            .expect("send");
    }

    fn head(&mut self, method: &str) -> (http::ResponseHead, Framing) {
        let head = self.conn.read_head().expect("read").expect("a response");
        let head = http::parse_response(&head).expect("response head");
        let framing = http::response_framing(method, &head).expect("framing");
        (head, framing)
    }

    fn request(&mut self, method: &str, target: &str, body: &[u8]) -> Response {
        let extra = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/json\r\n"
        };
        self.send(method, target, extra, body);
        let (head, framing) = self.head(method);
        let body = http::read_body(&mut self.conn, framing, 1 << 24).expect("body");
        Response {
            status: head.status,
            headers: head.headers,
            body,
        }
    }
}

fn train() -> Value {
    serde_json::from_str(TRAIN).expect("fixture")
}

fn create(client: &mut Client, body: &Value) -> Response {
    client.request(
        "POST",
        "/v1.47/containers/create",
        body.to_string().as_bytes(),
    )
}

#[test]
fn an_allowed_create_is_forwarded_with_the_label_added() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let res = create(&mut guard.connect(), &train());
    assert_eq!(res.status, 201, "{:?}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["Id"], OURS);

    let received = engine.received();
    assert_eq!(engine.calls(), ["POST /v1.47/containers/create"]);
    let sent: Value = serde_json::from_slice(&received[0].body).expect("forwarded JSON");
    let mut expected = train();
    expected["Labels"]["ml.docker-guard"] = json!("allowed");
    assert_eq!(sent, expected);
    assert_eq!(
        received[0].headers.get("Content-Length"),
        Some(received[0].body.len().to_string().as_str())
    );
    assert_eq!(
        received[0].headers.get("Content-Type"),
        Some("application/json")
    );
    let log = guard.log_with("allowed POST");
    assert!(
        log.contains("allowed POST /v1.47/containers/create from 127.0.0.1:")
            && log.contains(": 201 (image ml-train:0.1.0, task train_model.train)"),
        "{log}"
    );
}

#[test]
fn a_forbidden_create_is_refused_and_nothing_is_forwarded() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let mut client = guard.connect();
    let mut body = train();
    body["HostConfig"]["Privileged"] = json!(true);
    body["HostConfig"]["Binds"] = json!(["/:/host"]);
    let res = create(&mut client, &body);
    assert_eq!(res.status, 403);
    assert_eq!(res.headers.get("Content-Type"), Some("application/json"));
    let message = res.message();
    assert!(
        message.starts_with("ml-docker-guard: HostConfig."),
        "{message}"
    );
    assert!(
        message.contains("HostConfig.Binds[0]") || message.contains("HostConfig.Privileged"),
        "{message}"
    );
    assert!(engine.calls().is_empty(), "{:?}", engine.calls());
    let log = guard.log_with("refused POST");
    assert!(
        log.contains("refused POST /v1.47/containers/create from 127.0.0.1:"),
        "{log}"
    );

    // A name is a DNS name on the task network: refused too.
    let res = client.request(
        "POST",
        "/v1.47/containers/create?name=mlflow",
        train().to_string().as_bytes(),
    );
    assert_eq!(res.status, 403);
    assert!(
        res.message().contains("name=\"mlflow\""),
        "{}",
        res.message()
    );
    assert!(engine.calls().is_empty(), "{:?}", engine.calls());
}

#[test]
fn calls_on_a_container_the_guard_did_not_create_are_refused_unforwarded() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let mut client = guard.connect();
    for (method, target) in [
        ("GET", "/v1.47/containers/postgres/json"),
        ("GET", "/v1.47/containers/postgres/logs?stdout=1"),
        ("POST", "/v1.47/containers/postgres/start"),
        ("POST", "/v1.47/containers/postgres/attach?stream=1"),
        ("POST", "/v1.47/containers/postgres/wait"),
        ("POST", "/v1.47/containers/postgres/stop"),
        ("POST", "/v1.47/containers/postgres/kill"),
        ("DELETE", "/v1.47/containers/postgres?force=True"),
    ] {
        let res = client.request(method, target, b"");
        assert_eq!(res.status, 403, "{method} {target}");
        let message = res.message();
        assert!(
            message.contains("container postgres was not created through the guard"),
            "{message}"
        );
        assert!(!String::from_utf8_lossy(&res.body).contains("hunter2"));
    }
    // The engine saw the guard's own inspects and nothing else.
    let calls = engine.calls();
    assert_eq!(calls.len(), 8, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c == "GET /v1.47/containers/postgres/json"),
        "{calls:?}"
    );
}

#[test]
fn calls_on_the_guards_own_containers_go_to_the_inspected_id() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let mut client = guard.connect();
    let res = client.request("POST", "/v1.47/containers/0f0f0f/start", b"");
    assert_eq!(res.status, 204);
    let res = client.request("POST", "/v1.47/containers/ours/wait", b"");
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["StatusCode"], 0);
    let res = client.request("GET", "/v1.47/containers/ours/json", b"");
    assert_eq!(res.status, 200);
    let res = client.request(
        "DELETE",
        "/v1.47/containers/ours?v=False&link=False&force=False",
        b"",
    );
    assert_eq!(res.status, 204);
    assert_eq!(
        engine.calls(),
        [
            "GET /v1.47/containers/0f0f0f/json".to_string(),
            format!("POST /v1.47/containers/{OURS}/start"),
            "GET /v1.47/containers/ours/json".to_string(),
            format!("POST /v1.47/containers/{OURS}/wait"),
            "GET /v1.47/containers/ours/json".to_string(),
            format!("GET /v1.47/containers/{OURS}/json"),
            "GET /v1.47/containers/ours/json".to_string(),
            format!("DELETE /v1.47/containers/{OURS}?v=False&link=False&force=False"),
        ]
    );
    // All of it over one kept connection to the engine.
    assert_eq!(engine.connections(), 1);
}

#[test]
fn a_missing_container_is_a_404_from_the_engine() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let res = guard
        .connect()
        .request("POST", "/v1.47/containers/gone/start", b"");
    assert_eq!(res.status, 404);
    assert_eq!(res.message(), "No such container: gone");
    assert_eq!(engine.calls(), ["GET /v1.47/containers/gone/json"]);
}

#[test]
fn attach_is_upgraded_and_piped_both_ways() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let mut client = guard.connect();
    client.send(
        "POST",
        "/v1.47/containers/ours/attach?logs=0&stdout=1&stderr=1&stream=1",
        "Connection: Upgrade\r\nUpgrade: tcp\r\n",
        b"",
    );
    let (head, _) = client.head("POST");
    assert_eq!(head.status, 101);
    assert_eq!(head.headers.get("Upgrade"), Some("tcp"));
    assert!(head.headers.has_token("Connection", "upgrade"));

    let read = |client: &mut Client, want: &[u8]| {
        let mut got = Vec::new();
        while got.len() < want.len() {
            let data = client.conn.read_some().expect("read");
            assert!(!data.is_empty(), "closed after {got:?}");
            got.extend_from_slice(data);
            let n = data.len();
            client.conn.consume(n);
        }
        assert_eq!(got, want);
    };
    read(&mut client, b"hello\n");
    client.conn.stream.write_all(b"ping").expect("write");
    read(&mut client, b"echo:ping");
    client.conn.stream.write_all(b"pong").expect("write");
    read(&mut client, b"echo:pong");
    // Closing our sending side reaches the engine, whose goodbye still reaches us.
    client
        .conn
        .stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    read(&mut client, b"bye\n");
    assert!(client.conn.read_some().expect("read").is_empty(), "closed");
    assert_eq!(
        engine.calls()[1],
        format!("POST /v1.47/containers/{OURS}/attach?logs=0&stdout=1&stderr=1&stream=1")
    );
    let attach = &engine.received()[1];
    assert_eq!(attach.headers.get("Upgrade"), Some("tcp"));
}

#[test]
fn chunked_logs_are_streamed_as_they_come() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let mut client = guard.connect();
    client.send(
        "GET",
        "/v1.47/containers/ours/logs?follow=1&stdout=1",
        "",
        b"",
    );
    let (head, framing) = client.head("GET");
    assert_eq!(head.status, 200);
    assert_eq!(framing, Framing::Chunked);
    // The first chunk arrives while the engine holds the rest back.
    let mut got = Vec::new();
    while !got.ends_with(b"line 1\n\r\n") {
        let data = client
            .conn
            .read_some()
            .expect("first chunk before the rest");
        assert!(!data.is_empty());
        got.extend_from_slice(data);
        let n = data.len();
        client.conn.consume(n);
    }
    assert_eq!(got, b"7\r\nline 1\n\r\n");
    engine.state.logs_gate.open();
    let mut decoder = http::ChunkedDecoder::default();
    let mut rest = Vec::new();
    while !decoder.is_done() {
        let data = client.conn.read_some().expect("rest");
        let used = decoder.feed(data, Some(&mut rest)).expect("chunks");
        client.conn.consume(used);
    }
    assert_eq!(rest, b"line 2\n");
    // And the connection is still good for the next request.
    assert_eq!(client.request("GET", "/_ping", b"").status, 200);
}

#[test]
fn two_requests_on_one_connection_are_both_checked() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let mut client = guard.connect();
    let mut bad = train();
    bad["User"] = json!("root");
    // Both requests written before either answer is read (pipelined).
    let bad = bad.to_string();
    let good = train().to_string();
    let both = format!(
        "POST /v1.47/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{bad}POST /v1.47/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{good}",
        bad.len(),
        good.len()
    );
    client.conn.stream.write_all(both.as_bytes()).expect("send");
    let (first, framing) = client.head("POST");
    let body = http::read_body(&mut client.conn, framing, 1 << 20).expect("body");
    assert_eq!(first.status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("User must be a numeric non-root uid"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (second, framing) = client.head("POST");
    http::read_body(&mut client.conn, framing, 1 << 20).expect("body");
    assert_eq!(second.status, 201);
    assert_eq!(engine.calls(), ["POST /v1.47/containers/create"]);

    // A chunked create body is read whole, checked and sent on with a Content-Length.
    let chunked = format!(
        "POST /v1.47/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{good}\r\n0\r\n\r\n",
        good.len()
    );
    client
        .conn
        .stream
        .write_all(chunked.as_bytes())
        .expect("send");
    let (third, framing) = client.head("POST");
    http::read_body(&mut client.conn, framing, 1 << 20).expect("body");
    assert_eq!(third.status, 201);
    let last = engine.received().pop().expect("forwarded");
    assert!(last.headers.get("Transfer-Encoding").is_none());
    assert_eq!(
        last.headers.get("Content-Length"),
        Some(last.body.len().to_string().as_str())
    );
}

#[test]
fn calls_the_launchers_do_not_need_are_refused_unforwarded() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let mut client = guard.connect();
    for (method, target, body) in [
        (
            "POST",
            "/v1.47/containers/ours/exec",
            &b"{\"Cmd\":[\"sh\"]}"[..],
        ),
        ("GET", "/v1.47/containers/json?all=1", b""),
        ("POST", "/v1.47/images/create?fromImage=alpine", b""),
        ("POST", "/v1.47/build", b""),
        ("GET", "/v1.47/info", b""),
        ("PUT", "/v1.47/containers/ours/archive?path=/", b"x"),
        ("POST", "/v1.47/containers/ours/update", b"{\"Memory\":0}"),
        ("GET", "/v1.18/containers/ours/json", b""),
        // A body on start was a host config below API 1.24: no body passes but create's.
        (
            "POST",
            "/v1.47/containers/ours/start",
            b"{\"Privileged\":true}",
        ),
    ] {
        let res = client.request(method, target, body);
        assert_eq!(res.status, 403, "{method} {target}");
        assert!(
            res.message().starts_with("ml-docker-guard: "),
            "{}",
            res.message()
        );
    }
    assert!(engine.calls().is_empty(), "{:?}", engine.calls());
    // Allowed plain calls pass as they are.
    assert_eq!(client.request("GET", "/_ping", b"").status, 200);
    assert_eq!(client.request("HEAD", "/_ping", b"").status, 200);
    assert_eq!(client.request("GET", "/version", b"").status, 200);
    assert_eq!(
        engine.calls(),
        ["GET /_ping", "HEAD /_ping", "GET /version"]
    );
}

#[test]
fn malformed_requests_get_400_and_a_closed_connection() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let mut client = guard.connect();
    client
        .conn
        .stream
        .write_all(b"POST /v1.47/containers/create HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        .expect("send");
    let (head, framing) = client.head("POST");
    assert_eq!(head.status, 400);
    http::read_body(&mut client.conn, framing, 1 << 20).expect("body");
    assert!(client.conn.read_some().expect("read").is_empty(), "closed");
    assert!(engine.calls().is_empty());
}

#[test]
fn an_unreachable_engine_is_a_502() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = Guard::start_with(&dir.path().join("no.sock"), &[]);
    let res = guard.connect().request("GET", "/_ping", b"");
    assert_eq!(res.status, 502);
    assert!(
        res.message().contains("cannot reach the engine"),
        "{}",
        res.message()
    );
}

#[test]
fn check_mode_is_a_health_check() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let ok = Command::new(BIN)
        .args(["--check", &format!("http://{}", guard.addr)])
        .output()
        .expect("run --check");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(engine.calls(), ["GET /_ping"]);

    // A guard whose engine is gone answers 502: unhealthy.
    let dir = tempfile::tempdir().expect("tempdir");
    let orphan = Guard::start_with(&dir.path().join("no.sock"), &[]);
    let bad = Command::new(BIN)
        .args(["--check", &format!("http://{}", orphan.addr)])
        .output()
        .expect("run --check");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("answered 502"),
        "{err}"
    );

    let none = Command::new(BIN)
        .args(["--check", "http://127.0.0.1:9"])
        .output()
        .expect("run --check");
    assert_eq!(none.status.code(), Some(1));
}

#[test]
fn bad_flags_are_reported() {
    let out = Command::new(BIN)
        .args([
            "--image",
            "ml-train:0.1.0",
            "--data-dir",
            "/",
            "--task-network",
            "t",
        ])
        .env_remove("ML_GUARD_IMAGES")
        .env_remove("ML_HOST_DATA_DIR")
        .env_remove("ML_TASK_NETWORK")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--data-dir \"/\""), "{err}");
    let out = Command::new(BIN)
        .args(["--data-dir", "/d"])
        .env_remove("ML_GUARD_IMAGES")
        .env_remove("ML_TASK_NETWORK")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

/// Mean and 99th percentile of `n` timed calls of `f`, in microseconds.
fn timed(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / n as f64;
    (mean, times[(n * 99) / 100 - 1])
}

#[test]
#[ignore = "prints figures; run with --ignored --nocapture"]
fn latency() {
    let engine = FakeEngine::start();
    let guard = Guard::start(&engine);
    let body = train().to_string();
    let mut direct = Client {
        conn: BufConn::new(UnixStream::connect(&engine.socket).expect("engine")),
    };
    let mut guarded = guard.connect();
    let start = format!("/v1.47/containers/{OURS}/start");
    let rows: [(&str, usize, &str, &str, &[u8]); 3] = [
        ("GET /_ping", 1000, "GET", "/_ping", b""),
        (
            "POST /containers/create",
            200,
            "POST",
            "/v1.47/containers/create",
            body.as_bytes(),
        ),
        // The guard inspects the container first: two engine round trips.
        ("POST /containers/{id}/start", 200, "POST", &start, b""),
    ];
    println!(
        "{:<28} {:>5} {:>15} {:>15} {:>9}",
        "call", "n", "direct µs", "guard µs", "added µs"
    );
    for (name, n, method, target, payload) in rows {
        let (d_mean, d_p99) = timed(n, || {
            assert!(direct.request(method, target, payload).status < 300);
        });
        let (g_mean, g_p99) = timed(n, || {
            assert!(guarded.request(method, target, payload).status < 300);
        });
        println!(
            "{name:<28} {n:>5} {:>15} {:>15} {:>9}",
            format!("{d_mean:.0} (p99 {d_p99:.0})"),
            format!("{g_mean:.0} (p99 {g_p99:.0})"),
            format!("{:.0}", g_mean - d_mean),
        );
    }
    // A DockerOperator task makes about ten calls through the guard (version, images/json,
    // create, attach, inspect, start, wait, inspect, delete, plus the label look-ups).
    let _ = &engine;
}
