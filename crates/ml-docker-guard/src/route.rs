//! Which Docker API calls the task launchers may make at all: exactly the ones
//! DockerOperator (docker provider 4.6, docker-py 7) makes to run a task container from a
//! local image, follow it and clean up. Everything else is refused before the engine sees
//! it.

/// Oldest API version the guard passes. Older versions changed what some calls mean (below
/// 1.24 `POST /containers/{id}/start` still took a host config in its body); docker-py 7
/// speaks 1.24 at the least.
pub const MIN_API_VERSION: (u32, u32) = (1, 24);

/// A per-container call, allowed only on a container the guard let be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Attach,
    Wait,
    Stop,
    Kill,
    Inspect,
    Logs,
    Remove,
}

impl Action {
    /// The path segment after the container id (`""` for `DELETE /containers/{id}`).
    pub fn segment(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Attach => "attach",
            Action::Wait => "wait",
            Action::Stop => "stop",
            Action::Kill => "kill",
            Action::Inspect => "json",
            Action::Logs => "logs",
            Action::Remove => "",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET|HEAD /_ping`, `GET /version`, `GET /images/json`: passed as they are.
    Plain,
    /// `POST /containers/create`: the body goes through the create policy.
    Create,
    /// A call on one container, named by id, id prefix or name as the client sent it.
    Container { id: &'a str, action: Action },
}

/// A request target split into the parts the guard decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// `/v1.47` or empty.
    pub version: &'a str,
    /// The path after the version prefix.
    pub path: &'a str,
    /// The query without its `?`, or empty.
    pub query: &'a str,
}

/// Splits and classifies a request; `Err` is the reason for a 403.
pub fn classify<'a>(method: &str, target: &'a str) -> Result<(Target<'a>, Route<'a>), String> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/') {
        return Err(format!("request target {target:?} is not an absolute path"));
    }
    // No percent-escapes, dot segments or other characters the engine's router would decode
    // or clean into a different path than the one decided on here.
    if let Some(c) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_.-".contains(*c)))
    {
        return Err(format!(
            "path {path:?} has a character {c:?} the guard does not pass"
        ));
    }
    if query.contains('#') {
        return Err(format!("request target {target:?} has a fragment"));
    }
    let (version, rest) = split_version(path)?;
    let segments: Vec<&str> = rest[1..].split('/').collect();
    let route = match (method, segments.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) | ("GET", ["version"] | ["images", "json"]) => Route::Plain,
        ("POST", ["containers", "create"]) => Route::Create,
        (_, ["containers", id, rest @ ..]) if is_container_ref(id) => {
            let action = match (method, rest) {
                ("POST", ["start"]) => Action::Start,
                ("POST", ["attach"]) => Action::Attach,
                ("POST", ["wait"]) => Action::Wait,
                ("POST", ["stop"]) => Action::Stop,
                ("POST", ["kill"]) => Action::Kill,
                ("GET", ["json"]) => Action::Inspect,
                ("GET", ["logs"]) => Action::Logs,
                ("DELETE", []) => Action::Remove,
                _ => return Err(not_needed(method, path)),
            };
            Route::Container { id, action }
        }
        _ => return Err(not_needed(method, path)),
    };
    Ok((
        Target {
            version,
            path: rest,
            query,
        },
        route,
    ))
}

fn not_needed(method: &str, path: &str) -> String {
    format!("{method} {path} is not a call the task launchers need")
}

/// Splits `/v1.47/containers/create` into `/v1.47` and `/containers/create`.
fn split_version(path: &str) -> Result<(&str, &str), String> {
    let Some(after_v) = path.strip_prefix("/v") else {
        return Ok(("", path));
    };
    let end = after_v.find('/').unwrap_or(after_v.len());
    let number = &after_v[..end];
    let Some((major, minor)) = number.split_once('.') else {
        return Ok(("", path));
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return Ok(("", path));
    }
    let parsed = (
        major.parse::<u32>().unwrap_or(0),
        minor.parse::<u32>().unwrap_or(0),
    );
    if parsed < MIN_API_VERSION {
        return Err(format!(
            "API version {number} is older than {}.{}, the oldest the guard passes",
            MIN_API_VERSION.0, MIN_API_VERSION.1
        ));
    }
    let rest = &after_v[end..];
    if rest.is_empty() {
        return Err(format!("{path} is not a call the task launchers need"));
    }
    Ok((&path[..2 + end], rest))
}

/// A container id, id prefix or name as Docker allows them (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
fn is_container_ref(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The value of query parameter `name` as Go's `url.ParseQuery` (which the engine uses)
/// would read it: `Ok(None)` when absent, `Err` when the query cannot be decoded the same way
/// with certainty.
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, String> {
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.contains(';') || value.contains(';') {
            return Err(format!("query {query:?} has a ';'"));
        }
        let key = percent_decode(key).ok_or_else(|| format!("query {query:?} has a bad escape"))?;
        let value =
            percent_decode(value).ok_or_else(|| format!("query {query:?} has a bad escape"))?;
        if key == name && found.is_none() {
            found = Some(value);
        }
    }
    Ok(found)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, target: &str) -> Result<Route<'static>, String> {
        let target: &'static str = Box::leak(target.to_string().into_boxed_str());
        classify(method, target).map(|(_, r)| r)
    }

    #[test]
    fn the_calls_docker_operator_makes_are_routed() {
        assert_eq!(route("GET", "/_ping"), Ok(Route::Plain));
        assert_eq!(route("HEAD", "/v1.47/_ping"), Ok(Route::Plain));
        assert_eq!(route("GET", "/version"), Ok(Route::Plain));
        assert_eq!(
            route("GET", "/v1.47/images/json?filter=ml-train"),
            Ok(Route::Plain)
        );
        assert_eq!(route("POST", "/v1.47/containers/create"), Ok(Route::Create));
        for (method, path, action) in [
            ("POST", "/v1.47/containers/c0ffee/start", Action::Start),
            (
                "POST",
                "/v1.47/containers/c0ffee/attach?stdout=1&stderr=1&stream=1",
                Action::Attach,
            ),
            ("POST", "/v1.47/containers/c0ffee/wait", Action::Wait),
            ("POST", "/v1.47/containers/c0ffee/stop?t=10", Action::Stop),
            ("POST", "/v1.47/containers/c0ffee/kill", Action::Kill),
            ("GET", "/v1.47/containers/c0ffee/json", Action::Inspect),
            (
                "GET",
                "/v1.47/containers/c0ffee/logs?follow=1",
                Action::Logs,
            ),
            (
                "DELETE",
                "/v1.47/containers/c0ffee?v=False&link=False&force=False",
                Action::Remove,
            ),
        ] {
            assert_eq!(
                route(method, path),
                Ok(Route::Container {
                    id: "c0ffee",
                    action
                }),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn everything_else_is_refused() {
        for (method, path) in [
            ("POST", "/v1.47/containers/c0ffee/exec"),
            ("GET", "/v1.47/containers/json"),
            ("POST", "/v1.47/containers/c0ffee/update"),
            ("PUT", "/v1.47/containers/c0ffee/archive"),
            ("GET", "/v1.47/containers/c0ffee/archive"),
            ("POST", "/v1.47/images/create?fromImage=alpine"),
            ("POST", "/v1.47/build"),
            ("GET", "/v1.47/events"),
            ("POST", "/v1.47/networks/create"),
            ("GET", "/v1.47/info"),
            ("DELETE", "/v1.47/images/ml-train"),
            ("GET", "/containers/create"),
            ("GET", "/v1.47"),
            ("GET", "/v1.47/"),
            ("GET", "/"),
            ("POST", "/v1.47/containers/..%2f..%2fbuild/start"),
            ("POST", "/v1.47/containers/../start"),
            ("POST", "/v1.47/containers/.x/start"),
            ("POST", "/v1.47//containers/create"),
            ("POST", "http://docker/v1.47/containers/create"),
            ("POST", "/v1.23/containers/c0ffee/start"),
        ] {
            assert!(route(method, path).is_err(), "{method} {path}");
        }
    }

    #[test]
    fn the_version_prefix_is_split_off() {
        let (t, _) = classify("GET", "/v1.47/images/json?x=1").expect("ok");
        assert_eq!(
            (t.version, t.path, t.query),
            ("/v1.47", "/images/json", "x=1")
        );
        let (t, _) = classify("GET", "/_ping").expect("ok");
        assert_eq!((t.version, t.path, t.query), ("", "/_ping", ""));
    }

    #[test]
    fn query_params_decode_like_go() {
        assert_eq!(query_param("name=x&b=2", "name"), Ok(Some("x".into())));
        assert_eq!(
            query_param("%6Eame=ml%66low", "name"),
            Ok(Some("mlflow".into()))
        );
        assert_eq!(query_param("platform=linux", "name"), Ok(None));
        assert!(query_param("name=%zz", "name").is_err());
        assert!(query_param("a=1;name=x", "name").is_err());
    }
}
