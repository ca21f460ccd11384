use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong between a stage and the MLflow server.
///
/// Errors about a request name the HTTP method and the endpoint (path only: query strings
/// and credentials never appear in messages), so a failed Airflow task says which call broke.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tracking URI is not something this client can talk to.
    #[error("MLflow tracking URI {uri:?} is not usable: {reason}")]
    InvalidTrackingUri { uri: String, reason: &'static str },

    /// No usable answer (connection refused, reset, timeout, name not found, TLS failure);
    /// transient failures were retried for the whole retry budget first.
    #[error(
        "{method} {endpoint}: could not talk to MLflow at {base} ({attempts} attempt(s) over {:.1}s)",
        elapsed.as_secs_f64()
    )]
    Unreachable {
        method: &'static str,
        endpoint: String,
        base: String,
        attempts: u32,
        elapsed: Duration,
        #[source]
        source: Box<ureq::Error>,
    },

    /// The server answered with an error status. For 5xx and 429 this is the last answer
    /// after retrying; 4xx answers are not retried.
    #[error(
        "{method} {endpoint}: MLflow answered HTTP {status}{} after {attempts} attempt(s): {message}",
        error_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
    )]
    Api {
        method: &'static str,
        endpoint: String,
        status: u16,
        /// MLflow's `error_code`, for example `RESOURCE_DOES_NOT_EXIST`.
        error_code: Option<String>,
        message: String,
        attempts: u32,
    },

    /// A 2xx answer whose body is not the JSON this client expects.
    #[error("{method} {endpoint}: unexpected response from MLflow")]
    Decode {
        method: &'static str,
        endpoint: String,
        #[source]
        source: serde_json::Error,
    },

    /// The registered model has no version under this alias (or does not exist).
    #[error("registered model {name:?} has no alias {alias:?}")]
    AliasNotFound {
        name: String,
        alias: String,
        #[source]
        source: Box<Error>,
    },

    /// `models:/...` text that is neither `models:/NAME@ALIAS` nor `models:/NAME/VERSION`.
    #[error(
        "invalid model URI {uri:?}: {reason} (expected models:/NAME@ALIAS or models:/NAME/VERSION)"
    )]
    InvalidModelUri { uri: String, reason: &'static str },

    /// An artifact location this client cannot reach through the server.
    #[error(
        "artifact URI {uri:?} is not served by the MLflow server's artifact proxy \
         (expected mlflow-artifacts:/...; start the server with --serve-artifacts)"
    )]
    UnsupportedArtifactUri { uri: String },

    /// A relative artifact path that would escape its root or is empty.
    #[error("invalid artifact path {path:?}: {reason}")]
    InvalidArtifactPath { path: String, reason: &'static str },

    /// JSON cannot carry NaN or infinity, and MLflow would reject them.
    #[error("metric {key:?} is {value}, which MLflow cannot store")]
    NonFiniteMetric { key: String, value: f64 },

    /// A local JSON file of this crate (the run record) that does not parse.
    #[error("{}: not a valid MLflow run record", path.display())]
    BadRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// Reading or writing a local file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// MLflow's `error_code` when the server answered with one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Error::Api { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }

    /// HTTP status when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the failure is one of the server or of the way to it, not of the data: MLflow
    /// unreachable (after the retry budget), an answer 5xx or 429 (overloaded or failing), or
    /// 401/403 (credentials missing, wrong or without the permission; a person fixes those,
    /// and the same call works afterwards). Calling again later, unchanged, may succeed;
    /// a stage maps these to its "retry later" exit status. Everything else (a 4xx such as a
    /// missing run, an invalid URI or path, a non-finite metric, a local file error) fails
    /// the same way every time until its input changes.
    ///
    /// The client itself retries only the unreachable, 5xx and 429 cases within its budget;
    /// 401 and 403 are reported at once.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Api { status, .. } => matches!(status, 401 | 403 | 429 | 500..=599),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> Error {
        Error::Api {
            method: "GET",
            endpoint: "/api/2.0/mlflow/runs/get".to_string(),
            status,
            error_code: None,
            message: String::new(),
            attempts: 1,
        }
    }

    #[test]
    fn transient_errors_are_the_server_and_the_way_to_it_not_the_data() {
        for status in [401, 403, 429, 500, 502, 503, 504, 599] {
            assert!(api(status).is_transient(), "HTTP {status}");
        }
        for status in [400, 404, 409, 422] {
            assert!(!api(status).is_transient(), "HTTP {status}");
        }
        let unreachable = Error::Unreachable {
            method: "POST",
            endpoint: "/api/2.0/mlflow/runs/create".to_string(),
            base: "http://127.0.0.1:1".to_string(),
            attempts: 3,
            elapsed: Duration::from_secs(1),
            source: Box::new(ureq::Error::ConnectionFailed),
        };
        assert!(unreachable.is_transient());

        let data = [
            Error::AliasNotFound {
                name: "clf".to_string(),
                alias: "production".to_string(),
                source: Box::new(api(404)),
            },
            Error::NonFiniteMetric {
                key: "loss".to_string(),
                value: f64::NAN,
            },
            Error::InvalidArtifactPath {
                path: "../x".to_string(),
                reason: "escapes",
            },
            Error::io("model.bin", std::io::Error::other("disk full")),
            Error::UnsupportedArtifactUri {
                uri: "s3://b/k".to_string(),
            },
        ];
        for err in data {
            assert!(!err.is_transient(), "{err}");
        }
    }
}
