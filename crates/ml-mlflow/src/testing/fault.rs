//! [`FaultProxy`]: an HTTP proxy on loopback that sits between a [`Client`](crate::Client)
//! and a real MLflow server and breaks chosen requests the ways networks and servers break:
//! an error status, a stall, a connection dropped before or after the server did the work.
//!
//! ```no_run
//! use ml_mlflow::testing::{server_uri, Fault, FaultProxy};
//! use ml_mlflow::Client;
//!
//! let proxy = FaultProxy::start(&server_uri());
//! // MLflow creates the run, the answer is lost on the way back.
//! proxy.inject("/runs/create", Fault::DropResponse, 1);
//! let client = Client::new(&proxy.url()).expect("valid URL");
//! // ... client.create_run(...) ...
//! assert_eq!(proxy.hits("/runs/create"), 1);
//! ```
//!
//! It is a test helper: it panics on what only a wrong test would do (a non-loopback
//! upstream, a port that cannot be bound), and it handles the HTTP/1.1 that this crate's
//! client and MLflow speak, not every corner of HTTP. Each request gets a connection of its
//! own (`Connection: close` both ways), so a fault hits exactly one request.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest the proxy waits on one read or write, towards either side.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// What the proxy does to a request that matches a rule (see [`FaultProxy::inject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers this HTTP status (with a small JSON error body) without forwarding: the
    /// server never sees the request.
    Status(u16),
    /// Reads the request, does not forward it, says nothing for this long, then closes the
    /// connection: a server or network that hangs.
    Stall(Duration),
    /// Reads the request and closes the connection without forwarding or answering: the
    /// server never sees the request, the client cannot know that.
    Drop,
    /// Forwards the request and waits for the server's whole answer (so the server has done
    /// the work), then closes the client's connection without sending it: a lost answer.
    DropResponse,
}

/// One request the proxy received, in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target: path and query, as the client sent it.
    pub target: String,
    /// The fault applied, if a rule matched.
    pub fault: Option<Fault>,
    /// Whether the request was sent on to the upstream server.
    pub forwarded: bool,
}

/// A fault-injecting HTTP proxy in a background thread, forwarding to one upstream server on
/// loopback. Rules can be added while it runs; it stops (and its threads end) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: Upstream,
    stop: AtomicBool,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Exchange>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

struct Rule {
    /// Upper-case; `None` matches every method.
    method: Option<String>,
    path: String,
    fault: Fault,
    remaining: u32,
}

struct Upstream {
    addrs: Vec<SocketAddr>,
    /// `host:port`, sent as the `Host` header.
    authority: String,
    /// Path prefix of the upstream base URL, without a trailing slash (often empty).
    prefix: String,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1` (a free port) that forwards to `upstream`, a base URL
    /// such as `http://127.0.0.1:5000` (optionally with a path prefix). Credentials in
    /// `upstream` are ignored: the client's own `Authorization` header is forwarded.
    ///
    /// # Panics
    ///
    /// When `upstream` is not `http://` to a loopback address, or no port can be bound.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = parse_upstream(upstream);
        let listener = TcpListener::bind("127.0.0.1:0").expect("FaultProxy binds a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            upstream,
            stop: AtomicBool::new(false),
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fault-proxy-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &shared))
                .expect("FaultProxy starts its thread")
        };
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The proxy's base URL, `http://127.0.0.1:PORT`: give it to the client instead of the
    /// server's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to the next `times` requests (any method) whose target (path and
    /// query) contains `path`, for example `"/runs/create"`. Rules apply in the order they
    /// were added; a request takes at most one fault, from the first rule that matches.
    pub fn inject(&self, path: &str, fault: Fault, times: u32) {
        self.add_rule(None, path, fault, times);
    }

    /// [`FaultProxy::inject`] for requests of one `method` (`"GET"`, `"POST"`, ...) only.
    pub fn inject_for(&self, method: &str, path: &str, fault: Fault, times: u32) {
        self.add_rule(Some(method.to_ascii_uppercase()), path, fault, times);
    }

    /// Removes the rules that have matches left: from now on every request is forwarded.
    pub fn clear(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Requests received so far whose target contains `path`, faulted or not.
    pub fn hits(&self, path: &str) -> usize {
        self.count(path, |_| true)
    }

    /// Requests received so far whose target contains `path` and that reached the upstream
    /// (unfaulted ones and [`Fault::DropResponse`]).
    pub fn forwarded(&self, path: &str) -> usize {
        self.count(path, |e| e.forwarded)
    }

    /// Requests received so far whose target contains `path` and that a fault was applied to.
    pub fn faulted(&self, path: &str) -> usize {
        self.count(path, |e| e.fault.is_some())
    }

    /// Every request received so far, in order (for assertion messages).
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.shared.log).clone()
    }

    fn add_rule(&self, method: Option<String>, path: &str, fault: Fault, times: u32) {
        if times > 0 {
            lock(&self.shared.rules).push(Rule {
                method,
                path: path.to_string(),
                fault,
                remaining: times,
            });
        }
    }

    fn count(&self, path: &str, keep: impl Fn(&Exchange) -> bool) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|e| e.target.contains(path) && keep(e))
            .count()
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("url", &self.url())
            .field("upstream", &self.shared.upstream.authority)
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor from its blocking accept; it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // Stalls end at the flag; forwarding ends with the server's answer or IO_TIMEOUT.
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// The data behind a mutex, also after a panicking test thread poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn parse_upstream(url: &str) -> Upstream {
    let Some(rest) = url.strip_prefix("http://") else {
        panic!("FaultProxy forwards to http:// URLs only");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // Credentials are the client's business: its `Authorization` header passes through.
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let addrs: Vec<SocketAddr> = authority
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("FaultProxy: upstream {authority:?} does not resolve: {e}"))
        .collect();
    assert!(
        !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()),
        "FaultProxy forwards to loopback only, not {authority:?} ({addrs:?})"
    );
    Upstream {
        addrs,
        authority: authority.to_string(),
        prefix: path.trim_end_matches('/').to_string(),
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors, say: do not spin on it.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let worker = {
            let shared = Arc::clone(shared);
            thread::Builder::new()
                .name("fault-proxy-conn".to_string())
                .spawn(move || serve(&shared, stream))
        };
        let mut workers = lock(&shared.workers);
        workers.retain(|w| !w.is_finished());
        if let Ok(worker) = worker {
            workers.push(worker);
        }
    }
}

/// One HTTP message, its framing already removed.
struct Message {
    start_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn serve(shared: &Shared, client: TcpStream) {
    let _ = client.set_read_timeout(Some(IO_TIMEOUT));
    let _ = client.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(request) = read_message(&mut BufReader::new(&client), None) else {
        return;
    };
    let mut parts = request.start_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let fault = take_fault(shared, &method, &target);
    lock(&shared.log).push(Exchange {
        method: method.clone(),
        target: target.clone(),
        fault,
        forwarded: matches!(fault, None | Some(Fault::DropResponse)),
    });
    let mut client = client;
    match fault {
        None => {
            let answer = forward(&shared.upstream, &method, &target, &request)
                .unwrap_or_else(|e| error_response(502, &format!("FaultProxy: upstream: {e}")));
            let _ = client.write_all(&answer);
            let _ = client.flush();
        }
        Some(Fault::Status(status)) => {
            let message = format!("FaultProxy answered HTTP {status} instead of forwarding");
            let _ = client.write_all(&error_response(status, &message));
            let _ = client.flush();
        }
        Some(Fault::Stall(duration)) => {
            let started = Instant::now();
            while !shared.stop.load(Ordering::SeqCst) {
                let left = duration.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                thread::sleep(left.min(Duration::from_millis(10)));
            }
        }
        Some(Fault::Drop) => {}
        Some(Fault::DropResponse) => {
            let _ = forward(&shared.upstream, &method, &target, &request);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// The fault of the first rule matching this request, counted against that rule.
fn take_fault(shared: &Shared, method: &str, target: &str) -> Option<Fault> {
    let mut rules = lock(&shared.rules);
    let index = rules.iter().position(|rule| {
        rule.remaining > 0
            && target.contains(&rule.path)
            && rule
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    })?;
    let rule = &mut rules[index];
    rule.remaining -= 1;
    let fault = rule.fault;
    if rule.remaining == 0 {
        rules.remove(index);
    }
    Some(fault)
}

/// Headers the proxy sets itself, per hop; the rest pass through unchanged.
const HOP_HEADERS: [&str; 7] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "content-length",
    "transfer-encoding",
    "expect",
];

fn is_hop_header(name: &str) -> bool {
    HOP_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Sends `request` to the upstream on a connection of its own and returns the answer,
/// re-framed for the client (`Content-Length`, `Connection: close`).
fn forward(
    upstream: &Upstream,
    method: &str,
    target: &str,
    request: &Message,
) -> io::Result<Vec<u8>> {
    let mut server = connect(upstream)?;
    server.set_read_timeout(Some(IO_TIMEOUT))?;
    server.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!(
        "{method} {}{target} HTTP/1.1\r\nHost: {}\r\n",
        upstream.prefix, upstream.authority
    );
    for (name, value) in request.headers.iter().filter(|(n, _)| !is_hop_header(n)) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !request.body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    server.write_all(head.as_bytes())?;
    server.write_all(&request.body)?;
    server.flush()?;

    let mut reader = BufReader::new(&server);
    let answer = loop {
        let answer = read_message(&mut reader, Some(method))?;
        // An interim `100 Continue` precedes the real answer.
        if status_of(&answer.start_line) != Some(100) {
            break answer;
        }
    };
    Ok(encode(&answer))
}

fn connect(upstream: &Upstream) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no upstream address");
    for addr in &upstream.addrs {
        match TcpStream::connect_timeout(addr, IO_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `message` with a `Content-Length` and `Connection: close` in place of its own framing.
fn encode(message: &Message) -> Vec<u8> {
    let mut head = format!("{}\r\n", message.start_line);
    for (name, value) in message.headers.iter().filter(|(n, _)| !is_hop_header(n)) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        message.body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&message.body);
    bytes
}

fn error_response(status: u16, message: &str) -> Vec<u8> {
    let reason = match status {
        401 => "Unauthorized",
        403 => "Forbidden",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected Fault",
    };
    let body =
        serde_json::json!({ "error_code": "INJECTED_FAULT", "message": message }).to_string();
    encode(&Message {
        start_line: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![("Content-Type".to_string(), "application/json".to_string())],
        body: body.into_bytes(),
    })
}

fn status_of(start_line: &str) -> Option<u16> {
    start_line.split_whitespace().nth(1)?.parse().ok()
}

fn header<'m>(message_headers: &'m [(String, String)], name: &str) -> Option<&'m str> {
    message_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads one message. `answer_to` is `None` for a request, or the method of the request a
/// response answers (a `HEAD` answer has no body).
fn read_message(reader: &mut impl BufRead, answer_to: Option<&str>) -> io::Result<Message> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut start_line = String::new();
    if reader.read_line(&mut start_line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let start_line = start_line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid("header"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let has_body = match answer_to {
        None => true,
        Some(method) => {
            let status = status_of(&start_line).ok_or_else(|| invalid("status line"))?;
            method != "HEAD" && status >= 200 && status != 204 && status != 304
        }
    };
    let chunked = header(&headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if !has_body {
        Vec::new()
    } else if chunked {
        read_chunked(reader)?
    } else if let Some(length) = header(&headers, "content-length") {
        let length: usize = length.parse().map_err(|_| invalid("Content-Length"))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else if answer_to.is_some() {
        // A response without framing ends where the server closes the connection.
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        body
    } else {
        Vec::new()
    };
    Ok(Message {
        start_line,
        headers,
        body,
    })
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-endpoint upstream: answers every request with `body` (chunked when asked),
    /// and counts the requests it got.
    fn upstream(chunked: bool) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let Ok(request) = read_message(&mut BufReader::new(&stream), None) else {
                    continue;
                };
                let body = String::from_utf8_lossy(&request.body).into_owned();
                lock(&log).push(format!("{} {body}", request.start_line));
                let mut stream = stream;
                let reply = if chunked {
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n5\r\n\":1}\n\r\n0\r\n\r\n"
                        .to_string()
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\":1}\n".to_string()
                };
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        (url, seen)
    }

    fn get(url: &str) -> Result<String, ureq::Error> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(500)))
            .build()
            .into();
        let response = agent.get(url).call()?;
        let status = response.status().as_u16();
        let body = response.into_body().read_to_string()?;
        Ok(format!("{status} {body}"))
    }

    #[test]
    fn forwards_and_reframes_chunked_answers() {
        let (url, seen) = upstream(true);
        let proxy = FaultProxy::start(&url);
        assert_eq!(
            get(&format!("{}/x/y?q=1", proxy.url())).expect("ok"),
            "200 {\"a\":1}\n"
        );
        assert_eq!(lock(&seen).as_slice(), ["GET /x/y?q=1 HTTP/1.1 "]);
        assert_eq!(proxy.hits("/x/y"), 1);
        assert_eq!(proxy.forwarded("/x/y"), 1);
        assert_eq!(proxy.faulted("/x/y"), 0);
    }

    #[test]
    fn faults_apply_to_the_next_matching_requests_only() {
        let (url, seen) = upstream(false);
        let proxy = FaultProxy::start(&url);
        proxy.inject_for("GET", "/flaky", Fault::Status(503), 2);
        proxy.inject("/gone", Fault::Drop, 1);
        proxy.inject("/lost", Fault::DropResponse, 1);
        proxy.inject("/slow", Fault::Stall(Duration::from_secs(5)), 1);
        let base = proxy.url();

        let first = get(&format!("{base}/flaky")).expect("answered");
        assert!(first.starts_with("503 "), "{first}");
        assert!(first.contains("INJECTED_FAULT"), "{first}");
        assert!(get(&format!("{base}/flaky"))
            .expect("answered")
            .starts_with("503 "));
        assert_eq!(
            get(&format!("{base}/flaky")).expect("ok"),
            "200 {\"a\":1}\n"
        );

        assert!(get(&format!("{base}/gone")).is_err());
        assert!(get(&format!("{base}/lost")).is_err());
        let started = Instant::now();
        assert!(get(&format!("{base}/slow")).is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the client timed out"
        );

        assert_eq!(proxy.hits("/flaky"), 3);
        assert_eq!(proxy.faulted("/flaky"), 2);
        assert_eq!(proxy.forwarded("/flaky"), 1);
        assert_eq!((proxy.hits("/gone"), proxy.forwarded("/gone")), (1, 0));
        assert_eq!((proxy.hits("/lost"), proxy.forwarded("/lost")), (1, 1));
        let reached: Vec<String> = lock(&seen).clone();
        assert_eq!(
            reached,
            ["GET /flaky HTTP/1.1 ", "GET /lost HTTP/1.1 "],
            "only unfaulted and DropResponse requests reach the server"
        );
        assert_eq!(proxy.exchanges().len(), 6);

        // Dropping the proxy ends the stalled connection at once, not after 5 s.
        let started = Instant::now();
        drop(proxy);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn request_bodies_pass_through() {
        let (url, seen) = upstream(false);
        let proxy = FaultProxy::start(&url);
        let agent = ureq::Agent::new_with_defaults();
        let answer = agent
            .post(&format!("{}/api", proxy.url()))
            .header("Content-Type", "application/json")
            .send(&br#"{"name":"x"}"#[..])
            .expect("ok")
            .into_body()
            .read_to_string()
            .expect("body");
        assert_eq!(answer, "{\"a\":1}\n");
        assert_eq!(
            lock(&seen).as_slice(),
            [r#"POST /api HTTP/1.1 {"name":"x"}"#]
        );
    }

    #[test]
    #[should_panic(expected = "loopback only")]
    fn only_loopback_upstreams() {
        let _ = FaultProxy::start("http://192.0.2.1:5000");
    }
}
