//! Registry models downloaded once per version: `ml-predict` runs daily, a model version's
//! files never change, so the second day reuses the first day's download.

use std::fs;
use std::path::{Path, PathBuf};

use crate::api::ModelVersion;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::uri::ModelUri;

/// Variable naming the model cache directory (`ml-predict`, `ml-promote`).
pub const MODEL_CACHE_ENV: &str = "ML_MODEL_CACHE";

/// The cache directory when none is configured: `TMPDIR/ml-model-cache`.
pub fn default_model_cache() -> PathBuf {
    std::env::temp_dir().join("ml-model-cache")
}

/// Marker written last into a complete cache entry.
const COMPLETE: &str = ".complete";

/// A model version and the local directory holding its files.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedModel {
    pub version: ModelVersion,
    pub dir: PathBuf,
    /// Whether the files came from the cache rather than the server.
    pub from_cache: bool,
}

impl Client {
    /// Resolves `uri` and makes its files available below `cache_dir/NAME/VERSION`,
    /// downloading them unless a complete copy is already there. A partial download never
    /// becomes a cache entry: files land in a temporary sibling that is renamed at the end.
    pub fn fetch_model(&self, uri: &ModelUri, cache_dir: &Path) -> Result<FetchedModel> {
        let version = self.resolve_model_uri(uri)?;
        let dir = cache_dir
            .join(sanitize(&version.name))
            .join(sanitize(&version.version));
        if dir.join(COMPLETE).is_file() {
            return Ok(FetchedModel {
                version,
                dir,
                from_cache: true,
            });
        }
        let source = self.get_model_version_download_uri(&version.name, &version.version)?;
        let parent = dir.parent().unwrap_or(cache_dir);
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        // A staging directory of its own, under a random name: task containers all run as
        // pid 1, so a name made from the process id would be shared by two predict tasks
        // fetching the same new version at once. Dropped (removed) on any error below.
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{}.part-", sanitize(&version.version)))
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        let files = self.download_tree(&source, staging.path())?;
        if files.is_empty() {
            return Err(Error::InvalidArtifactPath {
                path: source.clone(),
                reason: "the model version has no files",
            });
        }
        fs::write(staging.path().join(COMPLETE), files.join("\n"))
            .map_err(|e| Error::io(staging.path(), e))?;
        if dir.join(COMPLETE).is_file() {
            // Another process completed the same entry meanwhile: keep it (it may be
            // reading it now) and drop this copy.
            return Ok(FetchedModel {
                version,
                dir,
                from_cache: false,
            });
        }
        if dir.exists() {
            // An incomplete entry from an older crash: replace it.
            fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, &dir) {
            let _ = fs::remove_dir_all(&staged);
            // Another process may have completed the same entry meanwhile.
            if !dir.join(COMPLETE).is_file() {
                return Err(Error::io(&dir, e));
            }
        }
        Ok(FetchedModel {
            version,
            dir,
            from_cache: false,
        })
    }
}

/// A registry name or version as a single safe path component.
fn sanitize(component: &str) -> String {
    let cleaned: String = component
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "_".to_string(),
        _ => cleaned,
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn cache_components_stay_inside_the_cache() {
        assert_eq!(
            sanitize("heart-disease-classifier"),
            "heart-disease-classifier"
        );
        assert_eq!(sanitize("a/b c"), "a_b_c");
        assert_eq!(sanitize(".."), "_");
        assert_eq!(sanitize(""), "_");
    }
}
