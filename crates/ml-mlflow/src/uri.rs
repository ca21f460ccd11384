//! `models:/` URIs and artifact locations.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A model in the registry, named by alias or by version number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelUri {
    /// `models:/NAME@ALIAS`
    Alias { name: String, alias: String },
    /// `models:/NAME/VERSION`
    Version { name: String, version: String },
}

impl ModelUri {
    /// Whether `text` is meant as a registry URI rather than a path (it may still be invalid).
    pub fn is_model_uri(text: &str) -> bool {
        text.starts_with("models:")
    }

    pub fn name(&self) -> &str {
        match self {
            ModelUri::Alias { name, .. } | ModelUri::Version { name, .. } => name,
        }
    }
}

impl FromStr for ModelUri {
    type Err = Error;

    fn from_str(text: &str) -> Result<ModelUri> {
        let invalid = |reason| Error::InvalidModelUri {
            uri: text.to_string(),
            reason,
        };
        let rest = text
            .strip_prefix("models:/")
            .ok_or_else(|| invalid("it does not start with models:/"))?;
        if rest.starts_with('/') {
            return Err(invalid("a registry host (models://...) is not supported"));
        }
        if let Some((name, alias)) = rest.rsplit_once('@') {
            if name.is_empty() || name.contains('/') {
                return Err(invalid("the model name is empty or contains '/'"));
            }
            if alias.is_empty()
                || !alias
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(invalid("the alias must be letters, digits, '_' or '-'"));
            }
            return Ok(ModelUri::Alias {
                name: name.to_string(),
                alias: alias.to_string(),
            });
        }
        let (name, version) = rest
            .split_once('/')
            .ok_or_else(|| invalid("neither @ALIAS nor /VERSION follows the model name"))?;
        if name.is_empty() {
            return Err(invalid("the model name is empty"));
        }
        let number: u64 = version
            .parse()
            .map_err(|_| invalid("the version must be a positive whole number"))?;
        if number == 0 {
            return Err(invalid("the version must be a positive whole number"));
        }
        Ok(ModelUri::Version {
            name: name.to_string(),
            version: number.to_string(),
        })
    }
}

impl fmt::Display for ModelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelUri::Alias { name, alias } => write!(f, "models:/{name}@{alias}"),
            ModelUri::Version { name, version } => write!(f, "models:/{name}/{version}"),
        }
    }
}

/// The location below the artifact proxy's root that `artifact_uri` names:
/// `mlflow-artifacts:/1/abc/artifacts` and `mlflow-artifacts://host:5000/1/abc/artifacts`
/// both give `1/abc/artifacts`.
pub(crate) fn artifact_root(artifact_uri: &str) -> Result<String> {
    let unsupported = || Error::UnsupportedArtifactUri {
        uri: artifact_uri.to_string(),
    };
    let rest = artifact_uri
        .strip_prefix("mlflow-artifacts:")
        .ok_or_else(unsupported)?;
    let path = match rest.strip_prefix("//") {
        // An authority names the server; we always go through our own.
        Some(with_host) => with_host.find('/').map(|i| &with_host[i..]).unwrap_or(""),
        None => rest,
    };
    let path = path.trim_matches('/');
    validate_relative_path(path).map_err(|_| unsupported())?;
    Ok(path.to_string())
}

/// `root/relative` after checking that `relative` stays below `root`.
pub(crate) fn join_artifact_path(root: &str, relative: &str) -> Result<String> {
    let relative = relative.trim_matches('/');
    validate_relative_path(relative)?;
    Ok(if root.is_empty() {
        relative.to_string()
    } else {
        format!("{root}/{relative}")
    })
}

/// A non-empty `/`-separated path with no empty, `.` or `..` segment.
pub(crate) fn validate_relative_path(path: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidArtifactPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("it is empty"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(invalid("it contains a backslash or NUL"));
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(invalid("it has an empty segment or starts with '/'")),
            "." | ".." => return Err(invalid("'.' and '..' are not allowed")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_uris_parse_and_print_back() {
        let alias: ModelUri = "models:/heart-disease-classifier@production"
            .parse()
            .expect("valid");
        assert_eq!(
            alias,
            ModelUri::Alias {
                name: "heart-disease-classifier".into(),
                alias: "production".into()
            }
        );
        assert_eq!(
            alias.to_string(),
            "models:/heart-disease-classifier@production"
        );
        let version: ModelUri = "models:/clf/12".parse().expect("valid");
        assert_eq!(version.name(), "clf");
        assert_eq!(version.to_string(), "models:/clf/12");
    }

    #[test]
    fn bad_model_uris_say_what_is_expected() {
        for bad in [
            "models:/",
            "models:/clf",
            "models:/clf@",
            "models:/@prod",
            "models:/clf/0",
            "models:/clf/latest",
            "models:/clf/1/2",
            "models://host/clf/1",
            "models:/clf@pro duction",
            "runs:/abc/model",
            "/data/models/2026-01-05",
        ] {
            let err = bad.parse::<ModelUri>().expect_err(bad);
            assert!(err.to_string().contains("models:/NAME@ALIAS"), "{err}");
        }
        assert!(ModelUri::is_model_uri("models:/x@y"));
        assert!(!ModelUri::is_model_uri("/data/models"));
    }

    #[test]
    fn artifact_roots_come_from_proxy_uris_only() {
        assert_eq!(
            artifact_root("mlflow-artifacts:/1/abc/artifacts").expect("ok"),
            "1/abc/artifacts"
        );
        assert_eq!(
            artifact_root("mlflow-artifacts://mlflow:5000/1/abc/artifacts/").expect("ok"),
            "1/abc/artifacts"
        );
        for bad in [
            "file:///mlruns/1/abc/artifacts",
            "s3://bucket/1/abc",
            "mlflow-artifacts:/",
            "mlflow-artifacts:/1/../../etc",
        ] {
            assert!(
                matches!(
                    artifact_root(bad),
                    Err(Error::UnsupportedArtifactUri { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn relative_paths_cannot_escape() {
        assert_eq!(
            join_artifact_path("1/a", "model/model.bin").expect("ok"),
            "1/a/model/model.bin"
        );
        for bad in ["", "../x", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(join_artifact_path("1/a", bad).is_err(), "{bad:?}");
        }
    }
}
