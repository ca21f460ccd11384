//! The proxy: one thread per client connection, each request read whole (head and body),
//! decided, and forwarded to the engine on this connection's own upstream connection (kept
//! open between requests, so a keep-alive client costs one unix-socket connect, not one
//! per call). Responses are streamed back as they arrive.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::http::{self, BufConn, Framing, HttpError, RequestHead, ResponseHead};
use crate::policy::{CreatePolicy, GUARD_LABEL, GUARD_LABEL_VALUE, MAX_CREATE_BODY};
use crate::route::{self, Action, Route};

/// Largest body the guard reads on a call other than create (where any body is refused).
const MAX_OTHER_BODY: usize = 64 * 1024;
/// Largest inspect answer the guard reads to find a container's label.
const MAX_INSPECT: usize = 8 * 1024 * 1024;

/// The client headers passed to the engine; the rest (cookies, proxies' headers, encodings)
/// describe nothing the engine needs.
const FORWARDED_HEADERS: &[&str] = &["host", "user-agent", "accept", "content-type"];

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub docker_socket: PathBuf,
    pub policy: CreatePolicy,
    /// Log every allowed request, not only refusals, errors and creates.
    pub log_allowed: bool,
    /// How long a client connection may sit idle between requests (or send a request).
    pub idle_timeout: Duration,
    /// Client connections served at once; more are answered 503.
    pub max_connections: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

struct Shared {
    config: Config,
    active: AtomicUsize,
}

/// A bound guard, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    pub fn bind(config: Config) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(config.listen).map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                config,
                active: AtomicUsize::new(0),
            }),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends.
    pub fn run(self) -> Result<(), ServeError> {
        for stream in self.listener.incoming() {
            let stream = match stream {
                Ok(stream) => stream,
                Err(err) => {
                    // Out of file descriptors, or a connection reset before accept: wait a
                    // moment rather than spin.
                    log(format_args!("error: accept: {err}"));
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let peer = stream
                .peer_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            let shared = Arc::clone(&self.shared);
            if shared.active.fetch_add(1, Ordering::SeqCst) >= shared.config.max_connections {
                shared.active.fetch_sub(1, Ordering::SeqCst);
                log(format_args!(
                    "refused a connection from {peer}: {} connections open already",
                    shared.config.max_connections
                ));
                let mut stream = stream;
                let _ = respond(&mut stream, 503, "too many connections to the guard", true);
                continue;
            }
            let spawned = thread::Builder::new()
                .name(format!("client {peer}"))
                .spawn(move || {
                    let _active = Active(&shared.active);
                    Session::new(&shared, stream, peer).run();
                });
            if let Err(err) = spawned {
                log(format_args!(
                    "error: cannot start a thread for {peer}: {err}"
                ));
            }
        }
        Ok(())
    }
}

/// Counts a connection as open until dropped.
struct Active<'a>(&'a AtomicUsize);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn log(line: std::fmt::Arguments<'_>) {
    eprintln!("ml-docker-guard: {line}");
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes one of the guard's own answers: JSON with `message`, which Docker clients print.
fn respond(stream: &mut impl Write, status: u16, message: &str, close: bool) -> io::Result<()> {
    let body = serde_json::json!({ "message": format!("ml-docker-guard: {message}") }).to_string();
    let connection = if close { "Connection: close\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{connection}\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(&[head.as_bytes(), body.as_bytes()].concat())
}

/// What to do with one request.
enum Decision {
    Refuse(String),
    /// Answer with the engine's own response to the guard's inspect (a 404).
    Relay {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    Forward {
        target: String,
        body: Vec<u8>,
        /// The create body was re-encoded: send it as JSON.
        json: bool,
        upgrade: bool,
        /// Said in the log line of an allowed create.
        note: Option<String>,
    },
}

/// Why a session ends early (it is closed either way).
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("cannot reach the engine at {path}: {source}")]
    Engine {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the engine {0}")]
    EngineAnswer(String),
}

impl From<io::Error> for SessionError {
    fn from(err: io::Error) -> Self {
        SessionError::Http(HttpError::Io(err))
    }
}

enum Next {
    KeepGoing,
    Close,
}

/// Container a per-container call names, as the engine resolves it.
enum Lookup {
    Ours(String),
    NotOurs,
    Missing { content_type: String, body: Vec<u8> },
}

struct Session<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    client: BufConn<TcpStream>,
    upstream: Option<BufConn<UnixStream>>,
}

impl<'a> Session<'a> {
    fn new(shared: &'a Shared, stream: TcpStream, peer: SocketAddr) -> Self {
        // Heads, bodies and stream pieces go out as soon as they are written: no Nagle delay
        // on a request/response exchange.
        let _ = stream.set_nodelay(true);
        Self {
            shared,
            peer,
            client: BufConn::new(stream),
            upstream: None,
        }
    }

    fn config(&self) -> &Config {
        &self.shared.config
    }

    fn run(mut self) {
        loop {
            match self.one_request() {
                Ok(Next::KeepGoing) => {}
                Ok(Next::Close) => break,
                Err(err) => {
                    if !is_hang_up(&err) {
                        log(format_args!("error: connection from {}: {err}", self.peer));
                    }
                    break;
                }
            }
        }
        let _ = self.client.stream.shutdown(Shutdown::Both);
    }

    fn refuse_malformed(&mut self, err: &HttpError) -> Result<Next, SessionError> {
        let status = match err {
            HttpError::HeadTooLarge => 431,
            HttpError::BodyTooLarge(_) => 413,
            _ => 400,
        };
        log(format_args!("refused a request from {}: {err}", self.peer));
        respond(&mut self.client.stream, status, &err.to_string(), true)?;
        Ok(Next::Close)
    }

    fn one_request(&mut self) -> Result<Next, SessionError> {
        let idle = self.config().idle_timeout;
        self.client.stream.set_read_timeout(Some(idle))?;
        let head = match self.client.read_head() {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(Next::Close),
            Err(HttpError::Io(err)) => return Err(err.into()),
            Err(err) => return self.refuse_malformed(&err),
        };
        let parsed = http::parse_request(&head)
            .and_then(|req| http::request_framing(&req).map(|framing| (req, framing)));
        let (req, framing) = match parsed {
            Ok(parsed) => parsed,
            Err(err) => return self.refuse_malformed(&err),
        };
        let keep = http::keep_alive(req.version, &req.headers);
        let classified = route::classify(&req.method, &req.target);
        let limit = match classified {
            Ok((_, Route::Create)) => MAX_CREATE_BODY,
            _ => MAX_OTHER_BODY,
        };
        if framing != Framing::Empty && req.headers.has_token("Expect", "100-continue") {
            self.client
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        // The body is read even for a call that will be refused, so that the next request
        // on this connection starts where the client thinks it does.
        let body = match http::read_body(&mut self.client, framing, limit) {
            Ok(body) => body,
            Err(HttpError::Io(err)) => return Err(err.into()),
            Err(err) => return self.refuse_malformed(&err),
        };
        let decided = self.decide(&req, classified, body);
        match self.answer(&req, decided, keep) {
            // Engine trouble comes before any byte of an answer went out: say so.
            Err(err @ (SessionError::Engine { .. } | SessionError::EngineAnswer(_))) => {
                log(format_args!(
                    "error: {} {} from {}: {err}",
                    req.method, req.target, self.peer
                ));
                self.upstream = None;
                respond(&mut self.client.stream, 502, &err.to_string(), true)?;
                Ok(Next::Close)
            }
            other => other,
        }
    }

    fn answer(
        &mut self,
        req: &RequestHead,
        decided: Result<Decision, SessionError>,
        keep: bool,
    ) -> Result<Next, SessionError> {
        let next = if keep { Next::KeepGoing } else { Next::Close };
        match decided? {
            Decision::Refuse(why) => {
                log(format_args!(
                    "refused {} {} from {}: {why}",
                    req.method, req.target, self.peer
                ));
                respond(&mut self.client.stream, 403, &why, !keep)?;
                Ok(next)
            }
            Decision::Relay {
                status,
                content_type,
                body,
            } => {
                let head = format!(
                    "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{}\r\n",
                    reason(status),
                    body.len(),
                    if keep { "" } else { "Connection: close\r\n" }
                );
                self.client
                    .stream
                    .write_all(&[head.as_bytes(), &body].concat())?;
                self.log_allowed(req, status, None);
                Ok(next)
            }
            Decision::Forward {
                target,
                body,
                json,
                upgrade,
                note,
            } => {
                let upstream = upstream_request(req, &target, &body, json, upgrade);
                self.forward(req, &upstream, upgrade, keep, note)
            }
        }
    }

    fn log_allowed(&self, req: &RequestHead, status: u16, note: Option<&str>) {
        if note.is_some() || self.config().log_allowed {
            let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
            log(format_args!(
                "allowed {} {} from {}: {status}{note}",
                req.method, req.target, self.peer
            ));
        }
    }

    fn decide(
        &mut self,
        req: &RequestHead,
        classified: Result<(route::Target<'_>, Route<'_>), String>,
        body: Vec<u8>,
    ) -> Result<Decision, SessionError> {
        let (target, route) = match classified {
            Ok(ok) => ok,
            Err(why) => return Ok(Decision::Refuse(why)),
        };
        if route != Route::Create && !body.is_empty() {
            return Ok(Decision::Refuse(format!(
                "a request body ({} bytes) is allowed on containers/create only",
                body.len()
            )));
        }
        match route {
            Route::Plain => Ok(Decision::Forward {
                target: req.target.clone(),
                body,
                json: false,
                upgrade: false,
                note: None,
            }),
            Route::Create => {
                match route::query_param(target.query, "name") {
                    Err(why) => return Ok(Decision::Refuse(why)),
                    Ok(Some(name)) if !name.is_empty() => {
                        return Ok(Decision::Refuse(format!(
                            "query parameter name={name:?} is not allowed: a container name is a DNS name on the task network, and the pipeline's tasks set none"
                        )))
                    }
                    Ok(_) => {}
                }
                match self.config().policy.check(&body) {
                    Err(why) => Ok(Decision::Refuse(why.0)),
                    Ok(checked) => Ok(Decision::Forward {
                        target: req.target.clone(),
                        note: Some(create_note(&checked)),
                        body: checked,
                        json: true,
                        upgrade: false,
                    }),
                }
            }
            Route::Container { id, action } => match self.lookup(target.version, id)? {
                Lookup::NotOurs => Ok(Decision::Refuse(format!(
                    "container {id} was not created through the guard (it has no label {GUARD_LABEL}={GUARD_LABEL_VALUE})"
                ))),
                Lookup::Missing { content_type, body } => Ok(Decision::Relay {
                    status: 404,
                    content_type,
                    body,
                }),
                Lookup::Ours(full_id) => {
                    // The call goes to the very container inspected: by its full id, not by
                    // a name or prefix the engine might resolve differently a moment later.
                    let segment = match action {
                        Action::Remove => String::new(),
                        other => format!("/{}", other.segment()),
                    };
                    let query = if target.query.is_empty() {
                        String::new()
                    } else {
                        format!("?{}", target.query)
                    };
                    Ok(Decision::Forward {
                        target: format!("{}/containers/{full_id}{segment}{query}", target.version),
                        body,
                        json: false,
                        upgrade: action == Action::Attach
                            && req.headers.has_token("Connection", "upgrade")
                            && req.headers.get("Upgrade").is_some(),
                        note: None,
                    })
                }
            },
        }
    }

    /// Sends a request to the engine and reads the response head, on this session's
    /// upstream connection; a kept connection the engine has closed meanwhile is replaced
    /// once (it never saw the request).
    fn exchange(&mut self, request: &[u8]) -> Result<ResponseHead, SessionError> {
        loop {
            let reused = self.upstream.is_some();
            let mut conn = match self.upstream.take() {
                Some(conn) => conn,
                None => {
                    let path = &self.config().docker_socket;
                    let stream =
                        UnixStream::connect(path).map_err(|source| SessionError::Engine {
                            path: path.display().to_string(),
                            source,
                        })?;
                    BufConn::new(stream)
                }
            };
            let sent = conn
                .stream
                .write_all(request)
                .map_err(HttpError::from)
                .and_then(|()| conn.read_head());
            match sent {
                Ok(Some(head)) => {
                    let head = http::parse_response(&head).map_err(|err| {
                        SessionError::EngineAnswer(format!("sent a bad response head: {err}"))
                    })?;
                    self.upstream = Some(conn);
                    return Ok(head);
                }
                Ok(None) | Err(HttpError::Io(_)) if reused => continue,
                Ok(None) => {
                    return Err(SessionError::EngineAnswer(
                        "closed the connection without an answer".into(),
                    ))
                }
                Err(err) => return Err(SessionError::EngineAnswer(format!("failed: {err}"))),
            }
        }
    }

    /// Asks the engine for a container by the reference the client used, and whether the
    /// guard let it be created.
    fn lookup(&mut self, version: &str, id: &str) -> Result<Lookup, SessionError> {
        let request =
            format!("GET {version}/containers/{id}/json HTTP/1.1\r\nHost: docker\r\n\r\n");
        let head = self.exchange(request.as_bytes())?;
        let bad = |err: HttpError| {
            SessionError::EngineAnswer(format!("sent a bad inspect of {id}: {err}"))
        };
        let framing = http::response_framing("GET", &head).map_err(bad)?;
        let mut conn = self
            .upstream
            .take()
            .ok_or_else(|| SessionError::EngineAnswer("connection lost after inspect".into()))?;
        let body = http::read_body(&mut conn, framing, MAX_INSPECT).map_err(bad)?;
        if reusable(&head, framing) {
            self.upstream = Some(conn);
        }
        match head.status {
            200 => {}
            404 => {
                return Ok(Lookup::Missing {
                    content_type: head
                        .headers
                        .get("Content-Type")
                        .unwrap_or("application/json")
                        .to_string(),
                    body,
                })
            }
            status => {
                return Err(SessionError::EngineAnswer(format!(
                    "answered {status} to the guard's inspect of container {id}"
                )))
            }
        }
        let info: Value = serde_json::from_slice(&body).map_err(|err| {
            SessionError::EngineAnswer(format!("sent an inspect of {id} that is not JSON: {err}"))
        })?;
        let full_id = info
            .get("Id")
            .and_then(Value::as_str)
            .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                SessionError::EngineAnswer(format!("sent an inspect of {id} without an Id"))
            })?;
        let label = info
            .get("Config")
            .and_then(|c| c.get("Labels"))
            .and_then(|l| l.get(GUARD_LABEL))
            .and_then(Value::as_str);
        Ok(if label == Some(GUARD_LABEL_VALUE) {
            Lookup::Ours(full_id.to_string())
        } else {
            Lookup::NotOurs
        })
    }

    fn forward(
        &mut self,
        req: &RequestHead,
        request: &[u8],
        upgrade: bool,
        keep: bool,
        note: Option<String>,
    ) -> Result<Next, SessionError> {
        let mut head = self.exchange(request)?;
        // An interim answer (100 Continue) goes to the client; the real one follows.
        while head.status < 200 && head.status != 101 {
            self.client.stream.write_all(&response_head(&head, false))?;
            let conn = self.upstream.as_mut().ok_or_else(|| {
                SessionError::EngineAnswer("connection lost after an interim answer".into())
            })?;
            let next = conn.read_head()?.ok_or_else(|| {
                SessionError::EngineAnswer("closed the connection after an interim answer".into())
            })?;
            head = http::parse_response(&next)?;
        }
        if head.status == 101 {
            let upstream = self.upstream.take();
            let (true, Some(upstream)) = (upgrade, upstream) else {
                return Err(SessionError::EngineAnswer(
                    "switched protocols on a call that did not ask to".into(),
                ));
            };
            self.client.stream.write_all(&response_head(&head, false))?;
            self.log_allowed(req, 101, note.as_deref());
            self.pipe(upstream)?;
            return Ok(Next::Close);
        }
        let framing = http::response_framing(&req.method, &head).map_err(|err| {
            SessionError::EngineAnswer(format!("sent a bad response head: {err}"))
        })?;
        let close = !keep || framing == Framing::UntilClose;
        self.client.stream.write_all(&response_head(&head, close))?;
        let mut conn = self
            .upstream
            .take()
            .ok_or_else(|| SessionError::EngineAnswer("connection lost".into()))?;
        http::relay_body(&mut conn, framing, &mut self.client.stream)?;
        if reusable(&head, framing) {
            self.upstream = Some(conn);
        }
        self.log_allowed(req, head.status, note.as_deref());
        Ok(if close { Next::Close } else { Next::KeepGoing })
    }

    /// After `101 UPGRADED` (attach): bytes both ways until either side closes. What either
    /// side sent ahead of the switch, already in a read buffer, goes first.
    fn pipe(&mut self, mut upstream: BufConn<UnixStream>) -> Result<(), SessionError> {
        self.client.stream.set_read_timeout(None)?;
        let early = self.client.buffered().to_vec();
        self.client.consume(early.len());
        upstream.stream.write_all(&early)?;
        let late = upstream.buffered().to_vec();
        upstream.consume(late.len());
        self.client.stream.write_all(&late)?;

        let mut from_client = self.client.stream.try_clone()?;
        let mut to_engine = upstream.stream.try_clone()?;
        let inbound = thread::Builder::new()
            .name(format!("attach {}", self.peer))
            .spawn(move || {
                let _ = io::copy(&mut from_client, &mut to_engine);
                // The client is done sending (stdin closed): tell the engine, keep reading.
                let _ = to_engine.shutdown(Shutdown::Write);
            })?;
        let _ = io::copy(&mut upstream.stream, &mut self.client.stream);
        // The engine is done: the stream is over for both directions.
        let _ = self.client.stream.shutdown(Shutdown::Both);
        let _ = upstream.stream.shutdown(Shutdown::Both);
        let _ = inbound.join();
        Ok(())
    }
}

fn is_hang_up(err: &SessionError) -> bool {
    match err {
        SessionError::Http(HttpError::Io(err)) => matches!(
            err.kind(),
            io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// Whether the engine's connection may carry another request after this response.
fn reusable(head: &ResponseHead, framing: Framing) -> bool {
    framing != Framing::UntilClose
        && head.version == http::Version::Http11
        && !head.headers.has_token("Connection", "close")
}

/// The request as the engine gets it: the method, the decided target, the few client
/// headers it reads, and a body framed by Content-Length.
fn upstream_request(
    req: &RequestHead,
    target: &str,
    body: &[u8],
    json: bool,
    upgrade: bool,
) -> Vec<u8> {
    let mut head = format!("{} {target} HTTP/1.1\r\n", req.method);
    for (name, value) in &req.headers.0 {
        let lower = name.to_ascii_lowercase();
        if FORWARDED_HEADERS.contains(&lower.as_str()) && !(json && lower == "content-type") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if req.headers.get("Host").is_none() {
        head.push_str("Host: docker\r\n");
    }
    if json {
        head.push_str("Content-Type: application/json\r\n");
    }
    if upgrade {
        head.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
    }
    if !body.is_empty() || ["POST", "PUT", "PATCH"].contains(&req.method.as_str()) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    [head.as_bytes(), body].concat()
}

/// The engine's response head for the client: its own hop-by-hop headers dropped (except
/// on `101`, where Connection and Upgrade are the point), `Connection: close` added when the
/// guard closes after this response.
fn response_head(head: &ResponseHead, close: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", head.status, head.reason);
    for (name, value) in &head.headers.0 {
        let hop = ["connection", "keep-alive", "proxy-connection"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h));
        if head.status == 101 || !hop {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// What the log line of an allowed create says: the image and the task that asked.
fn create_note(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_string();
    let labels = value.get("Labels");
    format!(
        "image {}, task {}.{}",
        text(value.get("Image")),
        text(labels.and_then(|l| l.get("ml.pipeline.dag_id"))),
        text(labels.and_then(|l| l.get("ml.pipeline.task_id"))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &str) -> RequestHead {
        http::parse_request(head.as_bytes()).expect("request")
    }

    #[test]
    fn the_engine_gets_only_the_headers_it_reads() {
        let req = request(
            "POST /v1.47/containers/create HTTP/1.1\r\nHost: docker-guard:2375\r\nUser-Agent: docker-sdk-python/7.1.0\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nX-Registry-Auth: abc\r\n\r\n",
        );
        let out = upstream_request(&req, "/v1.47/containers/create", b"{}", true, false);
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "POST /v1.47/containers/create HTTP/1.1\r\nHost: docker-guard:2375\r\nUser-Agent: docker-sdk-python/7.1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn an_attach_keeps_its_upgrade_request() {
        let req = request(
            "POST /v1.47/containers/abc/attach?stream=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
        );
        let out = upstream_request(
            &req,
            "/v1.47/containers/abcdef/attach?stream=1",
            b"",
            false,
            true,
        );
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("Connection: Upgrade\r\nUpgrade: tcp\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 0\r\n"), "{text}");
    }

    #[test]
    fn response_heads_lose_hop_by_hop_headers() {
        let head = http::parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .expect("response");
        let out = String::from_utf8(response_head(&head, true)).expect("utf-8");
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn refusals_are_json_with_a_message() {
        let mut out = Vec::new();
        respond(
            &mut out,
            403,
            "HostConfig.Privileged must be false, got true",
            false,
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(head.contains("Content-Type: application/json"));
        let value: Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            value["message"],
            "ml-docker-guard: HostConfig.Privileged must be false, got true"
        );
    }
}
