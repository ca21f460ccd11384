//! Transport: base URL, authentication, retries. The typed endpoints live in `api.rs`.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::encode::{base64, percent_encode_path};
use crate::error::{Error, Result};

/// Environment variables read by [`Client::from_env`]; the names are MLflow's own, so a
/// setup that works for the Python client works here.
pub const TRACKING_URI_ENV: &str = "MLFLOW_TRACKING_URI";
pub const USERNAME_ENV: &str = "MLFLOW_TRACKING_USERNAME";
pub const PASSWORD_ENV: &str = "MLFLOW_TRACKING_PASSWORD";
/// Seconds one HTTP request may take (MLflow's Python client uses the same name).
pub const REQUEST_TIMEOUT_ENV: &str = "MLFLOW_HTTP_REQUEST_TIMEOUT";
/// Seconds a call may spend retrying before it gives up.
pub const RETRY_BUDGET_ENV: &str = "MLFLOW_HTTP_RETRY_BUDGET";

/// Largest response body read into memory (model artifacts included).
const MAX_BODY: u64 = 1 << 30;

/// How long and how often a call is retried when MLflow is unreachable or answers 5xx/429.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Pause after the first failed attempt; doubled after each further one.
    pub initial_backoff: Duration,
    /// Upper bound of a single pause.
    pub max_backoff: Duration,
    /// No new attempt starts after this much time has passed since the first one.
    pub budget: Duration,
    /// Time limit of a single request, connect to last byte.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // A minute rides out an MLflow restart (the stack's server boots in ~15 s) yet
        // fails a task well before Airflow's own retry would kick in.
        RetryPolicy {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            budget: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Pause before attempt `attempt + 1` (attempts count from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// A blocking client for one MLflow tracking server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    /// `scheme://host[:port][/prefix]` without a trailing slash and without credentials.
    base: String,
    agent: ureq::Agent,
    authorization: Option<String>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the credentials.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("auth", &self.authorization.is_some())
            .field("retry", &self.retry)
            .finish()
    }
}

/// One HTTP request, described so it can be sent again on retry.
pub(crate) struct Request<'a> {
    pub method: Method,
    /// Path below the base URL, starting with `/`, already percent-encoded.
    pub path: String,
    pub query: &'a [(&'a str, &'a str)],
    pub body: Option<Body<'a>>,
    /// What sending it a second time would do.
    pub replay: Replay,
}

/// What a second copy of a request does on the server, which decides whether it may be sent
/// again after an attempt that may have reached the server without its answer reaching us
/// (a connection lost after sending, a timeout, a 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// The same as the first: reads, uploads to a fixed path, sets and updates. (MLflow
    /// keeps one copy of a metric logged twice with the same key, value, timestamp and step,
    /// and accepts a param logged again with the same value, so `runs/log-batch` is one.)
    Safe,
    /// Nothing: it creates an object under a name MLflow keeps unique (experiments,
    /// registered models). The copy may be answered `RESOURCE_ALREADY_EXISTS` for the object
    /// the first attempt made, which [`Client::send_create`] then looks up.
    UniqueName,
    /// A second object: runs and model versions. Sent again only after a look-up found
    /// nothing (see [`Client::send_create`]).
    NewObject,
}

/// A request's answer, or the object a look-up found in its place.
pub(crate) enum Created<T> {
    Answer(Vec<u8>),
    Found(T),
}

/// Looks up the object a create request may already have made (`None`: it did not make it).
/// Called with a client whose retry budget is what is left of the create's.
pub(crate) type Find<'f, T> = &'f dyn Fn(&Client) -> Result<Option<T>>;

pub(crate) enum Body<'a> {
    Json(Vec<u8>),
    Bytes(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

impl Client {
    /// A client for `tracking_uri` (`http://host:port` or `https://...`, optionally with a
    /// path prefix). Credentials in the URL (`http://user:pass@host`) become basic auth.
    pub fn new(tracking_uri: &str) -> Result<Client> {
        let (base, credentials) = parse_tracking_uri(tracking_uri)?;
        let retry = RetryPolicy::default();
        let mut client = Client {
            base,
            agent: build_agent(retry.request_timeout),
            authorization: None,
            retry,
        };
        if let Some((user, password)) = credentials {
            client = client.with_basic_auth(&user, &password);
        }
        Ok(client)
    }

    /// The client configured by `MLFLOW_TRACKING_URI` (plus `MLFLOW_TRACKING_USERNAME` /
    /// `MLFLOW_TRACKING_PASSWORD`, `MLFLOW_HTTP_REQUEST_TIMEOUT`, `MLFLOW_HTTP_RETRY_BUDGET`),
    /// or `None` when the URI is unset or empty: the stages then work with files only.
    pub fn from_env() -> Result<Option<Client>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Client::from_env`] with the variables taken from `lookup` (for tests and callers
    /// that read their settings elsewhere).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Client>> {
        let Some(uri) = lookup(TRACKING_URI_ENV).filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let mut client = Client::new(uri.trim())?;
        if let Some(user) = lookup(USERNAME_ENV).filter(|u| !u.is_empty()) {
            let password = lookup(PASSWORD_ENV).unwrap_or_default();
            client = client.with_basic_auth(&user, &password);
        }
        let mut retry = client.retry;
        if let Some(secs) = seconds_from(&lookup, REQUEST_TIMEOUT_ENV, &uri)? {
            retry.request_timeout = secs;
        }
        if let Some(secs) = seconds_from(&lookup, RETRY_BUDGET_ENV, &uri)? {
            retry.budget = secs;
        }
        Ok(Some(client.with_retry(retry)))
    }

    /// Sends `Authorization: Basic ...` with every request (MLflow's basic-auth app).
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Client {
        let token = base64(format!("{user}:{password}").as_bytes());
        self.authorization = Some(format!("Basic {token}"));
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Client {
        if retry.request_timeout != self.retry.request_timeout {
            self.agent = build_agent(retry.request_timeout);
        }
        self.retry = retry;
        self
    }

    /// The server's base URL, without credentials.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// GET a JSON endpoint of the REST API (`/api/2.0/mlflow/...`).
    pub(crate) fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
    ) -> Result<T> {
        let body = self.send(Request {
            method: Method::Get,
            path: endpoint.to_string(),
            query,
            body: None,
            replay: Replay::Safe,
        })?;
        decode(Method::Get, endpoint, &body)
    }

    /// POST (or PUT) a JSON body to an endpoint of the REST API; the request must be one
    /// that may be sent twice ([`Replay::Safe`]).
    pub(crate) fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        body: &B,
    ) -> Result<T> {
        let answer = self.send(json_request(method, endpoint, body, Replay::Safe)?)?;
        decode(method, endpoint, &answer)
    }

    /// POST a JSON body that creates something (`replay` is [`Replay::UniqueName`] or
    /// [`Replay::NewObject`]), and decode the answer; `find` looks the object up when an
    /// attempt may have made it without its answer reaching us (see [`Client::send_create`]).
    pub(crate) fn create_json<B: Serialize, T: DeserializeOwned>(
        &self,
        replay: Replay,
        endpoint: &str,
        body: &B,
        find: Find<'_, T>,
    ) -> Result<T> {
        let request = json_request(Method::Post, endpoint, body, replay)?;
        match self.send_create(request, find)? {
            Created::Answer(answer) => decode(Method::Post, endpoint, &answer),
            Created::Found(found) => Ok(found),
        }
    }

    /// Sends `request`, retrying transport failures and 5xx/429 answers with exponential
    /// backoff within the retry budget. Returns the body of a 2xx answer.
    ///
    /// A [`Replay::NewObject`] request is not sent again after an attempt that may have
    /// reached the server: [`Client::send_create`] looks for the object first.
    pub(crate) fn send(&self, request: Request<'_>) -> Result<Vec<u8>> {
        match self.send_reconciled(request, None::<Find<'_, std::convert::Infallible>>)? {
            Created::Answer(body) => Ok(body),
            Created::Found(never) => match never {},
        }
    }

    /// Sends a create request the way [`Client::send`] does, except after an attempt whose
    /// outcome is unknown (it may have reached the server: the connection broke after
    /// connecting, a timeout, a 5xx answer). Then:
    ///
    /// - [`Replay::NewObject`]: before each further attempt `find` looks for the object (by a
    ///   tag unique to this call); if it is there, it is returned and nothing is sent again.
    ///   A look-up that itself fails transiently is retried (still within the budget) before
    ///   anything is sent: the create is only repeated once a look-up answered "not there".
    /// - [`Replay::UniqueName`]: the request is sent again (MLflow cannot make a second object
    ///   of that name), and a final `RESOURCE_ALREADY_EXISTS` answer is reconciled with `find`
    ///   (a get by name), which returns the object that an earlier attempt made.
    ///
    /// Errors before any byte was sent (name not resolved, connection refused) and 429
    /// answers are retried as they are: those attempts never reached MLflow.
    ///
    /// What this cannot see: an attempt that timed out on our side while the server was
    /// still working on it, and that finishes after the look-up. A request timeout much
    /// longer than MLflow's time to create a run or version keeps that window closed.
    pub(crate) fn send_create<T>(
        &self,
        request: Request<'_>,
        find: Find<'_, T>,
    ) -> Result<Created<T>> {
        self.send_reconciled(request, Some(find))
    }

    fn send_reconciled<T>(
        &self,
        request: Request<'_>,
        find: Option<Find<'_, T>>,
    ) -> Result<Created<T>> {
        let method = request.method.as_str();
        let endpoint = request.path.clone();
        let started = Instant::now();
        // Rounds count attempts and look-ups that failed; they set the backoff.
        let mut round = 0u32;
        let mut attempts = 0u32;
        // Set once an attempt may have reached the server without its answer reaching us.
        let mut maybe_applied = false;
        loop {
            round += 1;
            let pause = self.retry.backoff(round);
            let out_of_budget = || started.elapsed() + pause > self.retry.budget;
            // (Without `find`, a NewObject request is never sent again once `maybe_applied`.)
            if let (true, Replay::NewObject, Some(find)) = (maybe_applied, request.replay, find) {
                let remaining = self.retry.budget.saturating_sub(started.elapsed());
                match find(&self.clone().with_retry(RetryPolicy {
                    budget: remaining,
                    ..self.retry
                })) {
                    Ok(Some(found)) => return Ok(Created::Found(found)),
                    Ok(None) => {}
                    Err(err) if is_retried(&err) && !out_of_budget() => {
                        std::thread::sleep(pause);
                        continue;
                    }
                    Err(err) => return Err(err),
                }
            }
            attempts += 1;
            let outcome = self.attempt(&request);
            let (retryable, ambiguous) = match &outcome {
                Ok((status, _)) => (*status == 429 || *status >= 500, *status >= 500),
                Err(err) => (is_transient(err), !never_sent(err)),
            };
            maybe_applied |= retryable && ambiguous;
            let replayable = match request.replay {
                Replay::Safe | Replay::UniqueName => true,
                Replay::NewObject => !ambiguous || find.is_some(),
            };
            if !retryable || !replayable || out_of_budget() {
                return match outcome {
                    Ok((status, body)) if (200..300).contains(&status) => Ok(Created::Answer(body)),
                    Ok((status, body)) => {
                        let err = api_error(method, &endpoint, status, &body, attempts);
                        match find {
                            Some(find)
                                if maybe_applied
                                    && request.replay == Replay::UniqueName
                                    && err.error_code() == Some(ALREADY_EXISTS) =>
                            {
                                match find(self)? {
                                    Some(found) => Ok(Created::Found(found)),
                                    None => Err(err),
                                }
                            }
                            _ => Err(err),
                        }
                    }
                    Err(source) => Err(Error::Unreachable {
                        method,
                        endpoint,
                        base: self.base.clone(),
                        attempts,
                        elapsed: started.elapsed(),
                        source: Box::new(source),
                    }),
                };
            }
            std::thread::sleep(pause);
        }
    }

    fn attempt(&self, request: &Request<'_>) -> Result<(u16, Vec<u8>), ureq::Error> {
        let url = format!("{}{}", self.base, request.path);
        let response = match (request.method, &request.body) {
            (Method::Get, _) => {
                let mut builder = self.agent.get(&url);
                for (key, value) in request.query {
                    builder = builder.query(*key, *value);
                }
                if let Some(auth) = &self.authorization {
                    builder = builder.header("Authorization", auth);
                }
                builder.call()?
            }
            (method, body) => {
                let mut builder = match method {
                    Method::Put => self.agent.put(&url),
                    _ => self.agent.post(&url),
                };
                for (key, value) in request.query {
                    builder = builder.query(*key, *value);
                }
                if let Some(auth) = &self.authorization {
                    builder = builder.header("Authorization", auth);
                }
                match body {
                    Some(Body::Json(json)) => builder
                        .header("Content-Type", "application/json")
                        .send(json.as_slice())?,
                    Some(Body::Bytes(bytes)) => builder
                        .header("Content-Type", "application/octet-stream")
                        .send(*bytes)?,
                    None => builder.send_empty()?,
                }
            }
        };
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .into_with_config()
            .limit(MAX_BODY)
            .read_to_vec()?;
        Ok((status, body))
    }
}

/// A request with a JSON body.
fn json_request<'a, B: Serialize>(
    method: Method,
    endpoint: &str,
    body: &B,
    replay: Replay,
) -> Result<Request<'a>> {
    // Serializing our own request types cannot fail (string keys, finite floats are
    // checked by the callers); map the impossible case to a decode error anyway.
    let json = serde_json::to_vec(body).map_err(|source| Error::Decode {
        method: method.as_str(),
        endpoint: endpoint.to_string(),
        source,
    })?;
    Ok(Request {
        method,
        path: endpoint.to_string(),
        query: &[],
        body: Some(Body::Json(json)),
        replay,
    })
}

fn build_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        // Error statuses come back as responses: MLflow's JSON body says what went wrong.
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(concat!("ml-mlflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Splits `tracking_uri` into a credential-free base URL and optional basic-auth credentials.
fn parse_tracking_uri(uri: &str) -> Result<(String, Option<(String, String)>)> {
    let invalid = |reason| Error::InvalidTrackingUri {
        uri: redact(uri),
        reason,
    };
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| invalid("expected http://HOST[:PORT] or https://HOST[:PORT]"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(invalid(
            "only http and https are supported (file stores and databricks are not)",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if path.contains('?') || path.contains('#') {
        return Err(invalid("a query string or fragment is not allowed"));
    }
    let (credentials, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (Some((user.to_string(), password.to_string())), host)
        }
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let path = path.trim_end_matches('/');
    Ok((format!("{scheme}://{host}{path}"), credentials))
}

/// `uri` with any password replaced, for error messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &uri[..s + 3], &uri[at..]),
        _ => uri.to_string(),
    }
}

fn seconds_from(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    uri: &str,
) -> Result<Option<Duration>> {
    let Some(text) = lookup(name).filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(Some(Duration::from_secs_f64(secs))),
        _ => Err(Error::InvalidTrackingUri {
            uri: redact(uri),
            reason: match name {
                REQUEST_TIMEOUT_ENV => {
                    "MLFLOW_HTTP_REQUEST_TIMEOUT must be a positive number of seconds"
                }
                _ => "MLFLOW_HTTP_RETRY_BUDGET must be a positive number of seconds",
            },
        }),
    }
}

/// Failures worth another attempt: the server may be starting, restarting or overloaded.
fn is_transient(err: &ureq::Error) -> bool {
    matches!(
        err,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

/// Transport failures that happen before the first byte of the request is sent, so the
/// server never saw it. Everything else (a reset or a close after connecting, a timeout)
/// may have come after the server got the whole request. With only a global timeout set,
/// ureq reports a timeout while connecting as `Global`, so that one counts as ambiguous too.
fn never_sent(err: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match err {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Timeout(phase) => {
            matches!(phase, ureq::Timeout::Resolve | ureq::Timeout::Connect)
        }
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::NetworkDown
                | ErrorKind::AddrNotAvailable
        ),
        _ => false,
    }
}

/// Errors of a call that [`Client::send`] retries itself (so a look-up failing this way
/// says nothing about whether the object exists).
fn is_retried(err: &Error) -> bool {
    match err {
        Error::Unreachable { .. } => true,
        Error::Api { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

pub(crate) const ALREADY_EXISTS: &str = "RESOURCE_ALREADY_EXISTS";

#[derive(serde::Deserialize)]
struct ErrorBody {
    error_code: Option<String>,
    message: Option<String>,
}

fn api_error(
    method: &'static str,
    endpoint: &str,
    status: u16,
    body: &[u8],
    attempts: u32,
) -> Error {
    let (error_code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => (
            parsed.error_code,
            parsed.message.unwrap_or_else(|| "(no message)".to_string()),
        ),
        Err(_) => (None, body_excerpt(body)),
    };
    Error::Api {
        method,
        endpoint: endpoint.to_string(),
        status,
        error_code,
        message,
        attempts,
    }
}

/// The start of a non-JSON error body (an HTML error page from a proxy, say), on one line.
fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "(empty body)".to_string();
    }
    let mut excerpt: String = one_line.chars().take(200).collect();
    if excerpt.len() < one_line.len() {
        excerpt.push('…');
    }
    excerpt
}

fn decode<T: DeserializeOwned>(method: Method, endpoint: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| Error::Decode {
        method: method.as_str(),
        endpoint: endpoint.to_string(),
        source,
    })
}

/// Path of the artifact proxy for `relative` (already validated, `/`-separated).
pub(crate) fn artifact_proxy_path(relative: &str) -> String {
    format!(
        "/api/2.0/mlflow-artifacts/artifacts/{}",
        percent_encode_path(relative)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_uri_is_normalised_and_credentials_split_off() {
        let (base, creds) = parse_tracking_uri("http://mlflow:5000/").expect("valid");
        assert_eq!(base, "http://mlflow:5000");
        assert!(creds.is_none());

        let (base, creds) = parse_tracking_uri("HTTPS://u:p@ss@host/prefix/").expect("valid");
        assert_eq!(base, "https://host/prefix");
        assert_eq!(creds, Some(("u".to_string(), "p@ss".to_string())));
    }

    #[test]
    fn unusable_tracking_uris_are_rejected_without_leaking_passwords() {
        for uri in [
            "mlflow:5000",
            "file:///tmp/mlruns",
            "databricks://x",
            "http://",
            "http://h/?a=b",
        ] {
            assert!(parse_tracking_uri(uri).is_err(), "{uri} should be rejected");
        }
        let err = parse_tracking_uri("ftp://user:secret@host").expect_err("ftp is rejected");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn from_lookup_reads_mlflow_variables() {
        let env = |name: &str| match name {
            TRACKING_URI_ENV => Some("http://127.0.0.1:5000".to_string()),
            USERNAME_ENV => Some("admin".to_string()),
            PASSWORD_ENV => Some("pw".to_string()),
            RETRY_BUDGET_ENV => Some("2.5".to_string()),
            _ => None,
        };
        let client = Client::from_lookup(env)
            .expect("valid")
            .expect("configured");
        assert_eq!(client.base_url(), "http://127.0.0.1:5000");
        assert_eq!(client.authorization.as_deref(), Some("Basic YWRtaW46cHc="));
        assert_eq!(client.retry_policy().budget, Duration::from_millis(2500));
        assert!(!format!("{client:?}").contains("YWRt"));

        assert!(Client::from_lookup(|_| None).expect("ok").is_none());
        let blank = |name: &str| (name == TRACKING_URI_ENV).then(|| "  ".to_string());
        assert!(Client::from_lookup(blank).expect("ok").is_none());
        let bad = |name: &str| match name {
            TRACKING_URI_ENV => Some("http://h".to_string()),
            REQUEST_TIMEOUT_ENV => Some("soon".to_string()),
            _ => None,
        };
        assert!(Client::from_lookup(bad).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..RetryPolicy::default()
        };
        let pauses: Vec<u128> = (1..=6).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 500, 500, 500]);
        assert_eq!(policy.backoff(200), Duration::from_millis(500));
    }

    #[test]
    fn only_failures_before_the_first_byte_count_as_never_sent() {
        use std::io::{Error as IoError, ErrorKind};
        let io = |kind| ureq::Error::Io(IoError::from(kind));
        for err in [
            ureq::Error::HostNotFound,
            ureq::Error::ConnectionFailed,
            ureq::Error::Timeout(ureq::Timeout::Connect),
            io(ErrorKind::ConnectionRefused),
            io(ErrorKind::NetworkUnreachable),
        ] {
            assert!(never_sent(&err), "{err}");
        }
        for err in [
            // What a connection lost after sending, or a slow server, looks like.
            io(ErrorKind::ConnectionReset),
            io(ErrorKind::UnexpectedEof),
            io(ErrorKind::BrokenPipe),
            ureq::Error::Timeout(ureq::Timeout::Global),
            ureq::Error::Timeout(ureq::Timeout::RecvResponse),
        ] {
            assert!(!never_sent(&err), "{err}");
            assert!(is_transient(&err), "{err}");
        }
    }

    #[test]
    fn api_errors_carry_mlflow_error_code_and_message() {
        let body =
            br#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run with id=x not found"}"#;
        let err = api_error("GET", "/api/2.0/mlflow/runs/get", 404, body, 1);
        assert_eq!(err.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
        assert_eq!(
            err.to_string(),
            "GET /api/2.0/mlflow/runs/get: MLflow answered HTTP 404 RESOURCE_DOES_NOT_EXIST \
             after 1 attempt(s): Run with id=x not found"
        );
        let html = api_error("POST", "/x", 502, b"<html>\n<b>Bad gateway</b></html>", 4);
        assert_eq!(html.error_code(), None);
        assert!(html
            .to_string()
            .contains("HTTP 502 after 4 attempt(s): <html> <b>Bad gateway</b></html>"));
    }
}
