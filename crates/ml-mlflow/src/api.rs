//! Typed endpoints of MLflow 3's REST API (`/api/2.0/mlflow/...`) and of the server's
//! artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{artifact_proxy_path, Body, Client, Method, Replay, Request, ALREADY_EXISTS};
use crate::error::{Error, Result};
use crate::request_id::{new_request_id, CLIENT_REQUEST_ID_TAG};
use crate::uri::{artifact_root, join_artifact_path, validate_relative_path, ModelUri};

/// Experiment tag MLflow 3's UI reads to choose an experiment's view. Without it the UI opens
/// the GenAI (traces) view, which hides the params, metrics and charts a training run logs.
pub const EXPERIMENT_KIND_TAG: &str = "mlflow.experimentKind";
/// The value of [`EXPERIMENT_KIND_TAG`] for classic model training ("Model training" view).
pub const EXPERIMENT_KIND_MODEL_TRAINING: &str = "custom_model_development";

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    #[serde(default)]
    pub artifact_location: String,
    #[serde(default)]
    pub lifecycle_stage: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    #[serde(default)]
    pub run_name: String,
    pub status: RunStatus,
    /// Where the run's artifacts live, for example `mlflow-artifacts:/1/<run id>/artifacts`.
    pub artifact_uri: String,
    #[serde(default)]
    pub start_time: Option<i64>,
    #[serde(default)]
    pub end_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default)]
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Metric {
    /// A metric stamped now, at step 0.
    pub fn now(key: impl Into<String>, value: f64) -> Metric {
        Metric {
            key: key.into(),
            value,
            timestamp: now_millis(),
            step: 0,
        }
    }
}

impl Param {
    pub fn new(key: impl Into<String>, value: impl ToString) -> Param {
        Param {
            key: key.into(),
            value: value.to_string(),
        }
    }
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl ToString) -> Tag {
        Tag {
            key: key.into(),
            value: value.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunData {
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default)]
    pub params: Vec<Param>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    pub info: RunInfo,
    #[serde(default)]
    pub data: RunData,
}

impl Run {
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.data
            .metrics
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value)
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        find(&self.data.params, key, |p| (&p.key, &p.value))
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        find(&self.data.tags, key, |t| (&t.key, &t.value))
    }
}

/// One entry of an artifact listing; `path` is relative to the listed directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileInfo {
    pub path: String,
    #[serde(default)]
    pub is_dir: bool,
    #[serde(default)]
    pub file_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AliasEntry {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RegisteredModel {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub aliases: Vec<AliasEntry>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub run_id: String,
    /// `READY`, `PENDING_REGISTRATION` or `FAILED_REGISTRATION`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl ModelVersion {
    pub fn tag(&self, key: &str) -> Option<&str> {
        find(&self.tags, key, |t| (&t.key, &t.value))
    }
}

fn find<'a, T>(
    items: &'a [T],
    key: &str,
    kv: impl Fn(&'a T) -> (&'a String, &'a String),
) -> Option<&'a str> {
    items
        .iter()
        .map(kv)
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v.as_str())
}

/// MLflow's per-request limits of `runs/log-batch`.
const BATCH_MAX_METRICS: usize = 1000;
const BATCH_MAX_PARAMS: usize = 100;
const BATCH_MAX_TAGS: usize = 100;

const NOT_FOUND: &str = "RESOURCE_DOES_NOT_EXIST";

fn is_not_found(err: &Error) -> bool {
    err.error_code() == Some(NOT_FOUND) || err.status() == Some(404)
}

/// Milliseconds since the Unix epoch, as MLflow stamps runs and metrics.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct Empty {}

impl Client {
    // ---- experiments ------------------------------------------------------------------

    /// The experiment called `name`, or `None` if there is none.
    pub fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        #[derive(Deserialize)]
        struct Answer {
            experiment: Experiment,
        }
        match self.get_json::<Answer>(
            "/api/2.0/mlflow/experiments/get-by-name",
            &[("experiment_name", name)],
        ) {
            Ok(answer) => Ok(Some(answer.experiment)),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Creates an experiment and returns its id. It is tagged as a model-training experiment,
    /// so MLflow's UI opens it on its runs, params and metrics. A name that is taken is an
    /// error (`RESOURCE_ALREADY_EXISTS`), except when an earlier attempt of this call may have
    /// taken it (its answer was lost): then the experiment of that name is returned.
    pub fn create_experiment(&self, name: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct Answer {
            experiment_id: String,
        }
        let find = |client: &Client| -> Result<Option<Answer>> {
            Ok(client
                .get_experiment_by_name(name)?
                .filter(|e| e.lifecycle_stage != "deleted")
                .map(|e| Answer {
                    experiment_id: e.experiment_id,
                }))
        };
        let answer: Answer = self.create_json(
            Replay::UniqueName,
            "/api/2.0/mlflow/experiments/create",
            &json!({
                "name": name,
                "tags": [{ "key": EXPERIMENT_KIND_TAG, "value": EXPERIMENT_KIND_MODEL_TRAINING }],
            }),
            &find,
        )?;
        Ok(answer.experiment_id)
    }

    /// The experiment called `name`, created if missing and restored if deleted. Safe when
    /// two stages race to create it, and when a create or restore is retried after its
    /// answer was lost.
    pub fn ensure_experiment(&self, name: &str) -> Result<Experiment> {
        let vanished = || Error::Api {
            method: "GET",
            endpoint: "/api/2.0/mlflow/experiments/get-by-name".to_string(),
            status: 404,
            error_code: Some(NOT_FOUND.to_string()),
            message: format!("experiment {name:?} vanished right after it was created"),
            attempts: 1,
        };
        let found = match self.get_experiment_by_name(name)? {
            Some(found) => found,
            None => {
                match self.create_experiment(name) {
                    Ok(_) => {}
                    Err(err) if err.error_code() == Some(ALREADY_EXISTS) => {}
                    Err(err) => return Err(err),
                }
                self.get_experiment_by_name(name)?.ok_or_else(vanished)?
            }
        };
        if found.lifecycle_stage != "deleted" {
            return Ok(found);
        }
        let restored: Result<Empty> = self.send_json(
            Method::Post,
            "/api/2.0/mlflow/experiments/restore",
            &json!({ "experiment_id": found.experiment_id }),
        );
        match restored {
            Ok(_) => self.get_experiment_by_name(name)?.ok_or_else(vanished),
            // A restore sent again after its answer was lost finds no deleted experiment of
            // that id (MLflow 3 answers 404), as does one that lost a race with another
            // restore: what counts is whether the experiment is active now.
            Err(err) if err.status().is_some_and(|s| (400..500).contains(&s)) => {
                match self.get_experiment_by_name(name)? {
                    Some(now) if now.lifecycle_stage != "deleted" => Ok(now),
                    _ => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    // ---- runs -------------------------------------------------------------------------

    /// Starts a run (status `RUNNING`) in `experiment_id`.
    ///
    /// The run is tagged [`CLIENT_REQUEST_ID_TAG`] with an id unique to this call: when an
    /// attempt's answer is lost, the run it made is found by that tag and returned, and no
    /// second run is started.
    pub fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        tags: &[Tag],
    ) -> Result<Run> {
        #[derive(Deserialize)]
        struct Answer {
            run: Run,
        }
        let request_id = new_request_id();
        let tags = with_request_id(tags, &request_id);
        let mut body = json!({
            "experiment_id": experiment_id,
            "start_time": now_millis(),
            "tags": tags,
        });
        if let Some(name) = run_name {
            body["run_name"] = json!(name);
        }
        let find = |client: &Client| -> Result<Option<Answer>> {
            let filter = format!("tags.`{CLIENT_REQUEST_ID_TAG}` = '{request_id}'");
            let found = client.search_runs(experiment_id, &filter, 1)?;
            Ok(found.into_iter().next().map(|run| Answer { run }))
        };
        let answer: Answer = self.create_json(
            Replay::NewObject,
            "/api/2.0/mlflow/runs/create",
            &body,
            &find,
        )?;
        Ok(answer.run)
    }

    pub fn get_run(&self, run_id: &str) -> Result<Run> {
        #[derive(Deserialize)]
        struct Answer {
            run: Run,
        }
        let answer: Answer = self.get_json("/api/2.0/mlflow/runs/get", &[("run_id", run_id)])?;
        Ok(answer.run)
    }

    /// Logs metrics, params and tags, split into as many requests as MLflow's limits need.
    /// Metrics must be finite (JSON has no NaN); params are write-once in MLflow.
    pub fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()> {
        if let Some(bad) = metrics.iter().find(|m| !m.value.is_finite()) {
            return Err(Error::NonFiniteMetric {
                key: bad.key.clone(),
                value: bad.value,
            });
        }
        let mut metrics = metrics.chunks(BATCH_MAX_METRICS);
        let mut params = params.chunks(BATCH_MAX_PARAMS);
        let mut tags = tags.chunks(BATCH_MAX_TAGS);
        loop {
            let (m, p, t) = (metrics.next(), params.next(), tags.next());
            if m.is_none() && p.is_none() && t.is_none() {
                return Ok(());
            }
            let body = json!({
                "run_id": run_id,
                "metrics": m.unwrap_or_default(),
                "params": p.unwrap_or_default(),
                "tags": t.unwrap_or_default(),
            });
            let _: Empty = self.send_json(Method::Post, "/api/2.0/mlflow/runs/log-batch", &body)?;
        }
    }

    /// Sets a run's status; a terminal status also stamps its end time.
    pub fn set_run_status(&self, run_id: &str, status: RunStatus) -> Result<RunInfo> {
        #[derive(Deserialize)]
        struct Answer {
            run_info: RunInfo,
        }
        let mut body = json!({ "run_id": run_id, "status": status });
        if matches!(
            status,
            RunStatus::Finished | RunStatus::Failed | RunStatus::Killed
        ) {
            body["end_time"] = json!(now_millis());
        }
        let answer: Answer = self.send_json(Method::Post, "/api/2.0/mlflow/runs/update", &body)?;
        Ok(answer.run_info)
    }

    /// Runs of `experiment_id` matching `filter` (MLflow's search syntax, for example
    /// ``attributes.status = 'RUNNING'``), newest first, at most `max_results`.
    pub fn search_runs(
        &self,
        experiment_id: &str,
        filter: &str,
        max_results: u32,
    ) -> Result<Vec<Run>> {
        #[derive(Deserialize)]
        struct Answer {
            // Left out of the answer when nothing matches.
            #[serde(default)]
            runs: Vec<Run>,
        }
        let answer: Answer = self.send_json(
            Method::Post,
            "/api/2.0/mlflow/runs/search",
            &json!({
                "experiment_ids": [experiment_id],
                "filter": filter,
                "max_results": max_results,
                "order_by": ["attributes.start_time DESC"],
            }),
        )?;
        Ok(answer.runs)
    }

    // ---- artifacts (through the server's proxy) ----------------------------------------

    /// Uploads `bytes` as `relative_path` below `artifact_uri` (a run's artifact URI).
    pub fn upload_artifact(
        &self,
        artifact_uri: &str,
        relative_path: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let location = join_artifact_path(&artifact_root(artifact_uri)?, relative_path)?;
        self.send(Request {
            method: Method::Put,
            path: artifact_proxy_path(&location),
            query: &[],
            body: Some(Body::Bytes(bytes)),
            replay: Replay::Safe,
        })?;
        Ok(())
    }

    /// Uploads the local file `local` as `relative_path` below `artifact_uri`.
    pub fn upload_file(&self, artifact_uri: &str, relative_path: &str, local: &Path) -> Result<()> {
        let bytes = fs::read(local).map_err(|e| Error::io(local, e))?;
        self.upload_artifact(artifact_uri, relative_path, &bytes)
    }

    /// The content of the artifact `relative_path` below `artifact_uri`.
    pub fn download_artifact(&self, artifact_uri: &str, relative_path: &str) -> Result<Vec<u8>> {
        let location = join_artifact_path(&artifact_root(artifact_uri)?, relative_path)?;
        self.send(Request {
            method: Method::Get,
            path: artifact_proxy_path(&location),
            query: &[],
            body: None,
            replay: Replay::Safe,
        })
    }

    /// Downloads one artifact to `dest`, atomically: `dest` either appears whole or not at all.
    pub fn download_file(
        &self,
        artifact_uri: &str,
        relative_path: &str,
        dest: &Path,
    ) -> Result<()> {
        let bytes = self.download_artifact(artifact_uri, relative_path)?;
        write_atomically(dest, &bytes)
    }

    /// The entries directly below `relative_dir` (the root when `None`).
    pub fn list_artifacts(
        &self,
        artifact_uri: &str,
        relative_dir: Option<&str>,
    ) -> Result<Vec<FileInfo>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            files: Vec<FileInfo>,
        }
        let root = artifact_root(artifact_uri)?;
        let location = match relative_dir {
            Some(dir) => join_artifact_path(&root, dir)?,
            None => root,
        };
        let answer: Answer = self.get_json(
            "/api/2.0/mlflow-artifacts/artifacts",
            &[("path", location.as_str())],
        )?;
        Ok(answer.files)
    }

    /// Downloads every file below `artifact_uri` into `dest_dir`, keeping the tree. Returns
    /// the relative paths written, sorted.
    pub fn download_tree(&self, artifact_uri: &str, dest_dir: &Path) -> Result<Vec<String>> {
        let mut written = Vec::new();
        let mut pending: Vec<Option<String>> = vec![None];
        while let Some(dir) = pending.pop() {
            for entry in self.list_artifacts(artifact_uri, dir.as_deref())? {
                // Listings name entries relative to the listed directory; guard anyway
                // against a server that would hand us `..`.
                let name = entry
                    .path
                    .rsplit('/')
                    .next()
                    .unwrap_or(&entry.path)
                    .to_string();
                let relative = match &dir {
                    Some(d) => format!("{d}/{name}"),
                    None => name,
                };
                validate_relative_path(&relative)?;
                if entry.is_dir {
                    pending.push(Some(relative));
                } else {
                    let dest = dest_dir.join(&relative);
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                    }
                    self.download_file(artifact_uri, &relative, &dest)?;
                    written.push(relative);
                }
            }
        }
        written.sort();
        Ok(written)
    }

    // ---- model registry ----------------------------------------------------------------

    /// The registered model called `name`, or `None`.
    pub fn get_registered_model(&self, name: &str) -> Result<Option<RegisteredModel>> {
        #[derive(Deserialize)]
        struct Answer {
            registered_model: RegisteredModel,
        }
        match self.get_json::<Answer>("/api/2.0/mlflow/registered-models/get", &[("name", name)]) {
            Ok(answer) => Ok(Some(answer.registered_model)),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Creates the registered model `name`. A name that is taken is an error
    /// (`RESOURCE_ALREADY_EXISTS`), except when an earlier attempt of this call may have
    /// taken it (its answer was lost): then the model of that name is returned.
    pub fn create_registered_model(
        &self,
        name: &str,
        description: &str,
    ) -> Result<RegisteredModel> {
        #[derive(Deserialize)]
        struct Answer {
            registered_model: RegisteredModel,
        }
        let find = |client: &Client| -> Result<Option<Answer>> {
            Ok(client
                .get_registered_model(name)?
                .map(|registered_model| Answer { registered_model }))
        };
        let answer: Answer = self.create_json(
            Replay::UniqueName,
            "/api/2.0/mlflow/registered-models/create",
            &json!({ "name": name, "description": description }),
            &find,
        )?;
        Ok(answer.registered_model)
    }

    /// The registered model called `name`, created (with `description`) if missing.
    pub fn ensure_registered_model(
        &self,
        name: &str,
        description: &str,
    ) -> Result<RegisteredModel> {
        if let Some(found) = self.get_registered_model(name)? {
            return Ok(found);
        }
        match self.create_registered_model(name, description) {
            Ok(created) => Ok(created),
            Err(err) if err.error_code() == Some(ALREADY_EXISTS) => {
                self.get_registered_model(name)?.ok_or(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Registers `source` (an artifact URI inside the run `run_id`) as a new version of
    /// `name`, and waits until the registry says it is `READY`.
    ///
    /// The version is tagged [`CLIENT_REQUEST_ID_TAG`] with an id unique to this call: when
    /// an attempt's answer is lost, the version it made is found by that tag and returned,
    /// and no second version is registered.
    pub fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &[Tag],
    ) -> Result<ModelVersion> {
        #[derive(Deserialize)]
        struct Answer {
            model_version: ModelVersion,
        }
        let request_id = new_request_id();
        let tags = with_request_id(tags, &request_id);
        let find = |client: &Client| -> Result<Option<Answer>> {
            // The id is unique on its own; filtering by name here would need quoting rules
            // that MLflow's filter syntax does not have for names with both kinds of quotes.
            let filter = format!("tags.`{CLIENT_REQUEST_ID_TAG}` = '{request_id}'");
            let found = client.search_model_versions(&filter, 10)?;
            Ok(found
                .into_iter()
                .find(|v| v.name == name)
                .map(|model_version| Answer { model_version }))
        };
        let answer: Answer = self.create_json(
            Replay::NewObject,
            "/api/2.0/mlflow/model-versions/create",
            &json!({ "name": name, "source": source, "run_id": run_id, "tags": tags }),
            &find,
        )?;
        let mut version = answer.model_version;
        // Our server registers synchronously; stores that copy artifacts first answer
        // PENDING_REGISTRATION and finish later.
        let deadline = Instant::now() + self.retry_policy().budget;
        while version.status == "PENDING_REGISTRATION" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            version = self.get_model_version(name, &version.version)?;
        }
        Ok(version)
    }

    pub fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        #[derive(Deserialize)]
        struct Answer {
            model_version: ModelVersion,
        }
        let answer: Answer = self.get_json(
            "/api/2.0/mlflow/model-versions/get",
            &[("name", name), ("version", version)],
        )?;
        Ok(answer.model_version)
    }

    /// Like [`Client::get_model_version`], with `None` when the server says there is no such
    /// version (or no such registered model).
    pub fn find_model_version(&self, name: &str, version: &str) -> Result<Option<ModelVersion>> {
        match self.get_model_version(name, version) {
            Ok(found) => Ok(Some(found)),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Versions matching an MLflow search `filter`, for example `name='clf' and run_id='abc'`
    /// (first page of up to `max_results`).
    pub fn search_model_versions(
        &self,
        filter: &str,
        max_results: u32,
    ) -> Result<Vec<ModelVersion>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            model_versions: Vec<ModelVersion>,
        }
        let max = max_results.to_string();
        let answer: Answer = self.get_json(
            "/api/2.0/mlflow/model-versions/search",
            &[("filter", filter), ("max_results", max.as_str())],
        )?;
        Ok(answer.model_versions)
    }

    /// Where the files of a model version can be downloaded from (an artifact URI).
    pub fn get_model_version_download_uri(&self, name: &str, version: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct Answer {
            artifact_uri: String,
        }
        let answer: Answer = self.get_json(
            "/api/2.0/mlflow/model-versions/get-download-uri",
            &[("name", name), ("version", version)],
        )?;
        Ok(answer.artifact_uri)
    }

    pub fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let _: Empty = self.send_json(
            Method::Post,
            "/api/2.0/mlflow/model-versions/set-tag",
            &json!({ "name": name, "version": version, "key": key, "value": value }),
        )?;
        Ok(())
    }

    /// Points `alias` of `name` at `version` (moving it if it pointed elsewhere).
    pub fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        let _: Empty = self.send_json(
            Method::Post,
            "/api/2.0/mlflow/registered-models/alias",
            &json!({ "name": name, "alias": alias, "version": version }),
        )?;
        Ok(())
    }

    /// The version `alias` points at; [`Error::AliasNotFound`] when there is none.
    pub fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        #[derive(Deserialize)]
        struct Answer {
            model_version: ModelVersion,
        }
        match self.get_json::<Answer>(
            "/api/2.0/mlflow/registered-models/alias",
            &[("name", name), ("alias", alias)],
        ) {
            Ok(answer) => Ok(answer.model_version),
            // MLflow 3 answers a missing alias with 400 INVALID_PARAMETER_VALUE and a missing
            // model with 404 RESOURCE_DOES_NOT_EXIST; both mean "nothing under that alias".
            Err(err)
                if is_not_found(&err)
                    || (err.status() == Some(400)
                        && err.error_code() == Some("INVALID_PARAMETER_VALUE")) =>
            {
                Err(Error::AliasNotFound {
                    name: name.to_string(),
                    alias: alias.to_string(),
                    source: Box::new(err),
                })
            }
            Err(err) => Err(err),
        }
    }

    /// Like [`Client::get_model_version_by_alias`], with `None` for a missing alias.
    pub fn find_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersion>> {
        match self.get_model_version_by_alias(name, alias) {
            Ok(version) => Ok(Some(version)),
            Err(Error::AliasNotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The model version a `models:/` URI names.
    pub fn resolve_model_uri(&self, uri: &ModelUri) -> Result<ModelVersion> {
        match uri {
            ModelUri::Alias { name, alias } => self.get_model_version_by_alias(name, alias),
            ModelUri::Version { name, version } => self.get_model_version(name, version),
        }
    }
}

/// `tags` plus [`CLIENT_REQUEST_ID_TAG`] = `request_id` (replacing a caller's tag of that key).
fn with_request_id(tags: &[Tag], request_id: &str) -> Vec<Tag> {
    tags.iter()
        .filter(|t| t.key != CLIENT_REQUEST_ID_TAG)
        .cloned()
        .chain([Tag::new(CLIENT_REQUEST_ID_TAG, request_id)])
        .collect()
}

/// Writes `bytes` to a hidden sibling of `dest` under a random name (task containers all
/// run as pid 1, so a name from the process id could be shared), syncs it, and renames it
/// into place; the sibling is removed on any error.
pub(crate) fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "artifact".to_string());
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut partial = tempfile::Builder::new()
        .prefix(&format!(".{file_name}.part-"))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dest, e))?;
    partial
        .write_all(bytes)
        .and_then(|()| partial.as_file().sync_all())
        .map_err(|e| Error::io(dest, e))?;
    partial
        .persist(dest)
        .map(drop)
        .map_err(|e| Error::io(dest, e.error))
}
