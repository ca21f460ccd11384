//! The create policy: which `POST /containers/create` bodies become containers.
//!
//! A body passes when it describes a container that `airflow_ml_dags/dags/common.py`
//! (HardenedDockerOperator) would ask for: one of the pipeline's images, a numeric non-root
//! user, a read-only root, every capability dropped, `no-new-privileges`, no host namespace,
//! no device, the network `none` or the task network, the data directory bound at `/data`
//! and a tmpfs at `/tmp`, and memory, CPU and process limits.
//!
//! # Fail closed, and forward only what was checked
//!
//! The engine decodes the body with Go's `encoding/json`, which matches field names
//! *case-insensitively* (and with Unicode folding: `ſ` matches `s`), takes the last of two
//! equal keys, and still reads some host-config fields from the top level of the body. So
//! the guard never forwards the client's bytes: it parses the body, walks every object it
//! knows field by field against a table of exactly spelled field names, and re-serializes
//! what it checked. A field it does not know (or knows under another spelling) is dropped
//! when its value is empty (`null`, `false`, `0`, `""`, `[]` or `{}`), so the engine never
//! sees it, and refused by name otherwise. A known field that has no use
//! in a task container is refused unless empty.
//!
//! Two fields are special because an *empty* value weakens the container:
//! `HostConfig.MaskedPaths` and `HostConfig.ReadonlyPaths` set to `[]` unmask `/proc` and
//! `/sys` paths; `Entrypoint` set to `[]` or `[""]` drops the image's entrypoint so that
//! `Cmd` names the program. These must be absent or `null`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Map, Value};

/// The label the guard puts on every container it lets be created, and looks for before a
/// per-container call.
pub const GUARD_LABEL: &str = "ml.docker-guard";
pub const GUARD_LABEL_VALUE: &str = "allowed";

/// Largest create body the guard reads (docker-py's for a stage task is about 1.5 KB).
pub const MAX_CREATE_BODY: usize = 1024 * 1024;

/// Why a create was refused: one sentence naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(message.into()))
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "--data-dir {0:?} must be a clean absolute path other than / (no ., .., // or trailing /)"
    )]
    DataDir(String),
    #[error("--image is required at least once")]
    NoImages,
    #[error("--image {0:?} is empty or has white space")]
    Image(String),
    #[error("--task-network {0:?} must be a network name, not none, host, bridge or default")]
    TaskNetwork(String),
}

/// What a create body is checked against (the guard's command line).
#[derive(Debug, Clone)]
pub struct CreatePolicy {
    images: BTreeSet<String>,
    data_dir: String,
    data_dir_view: Option<PathBuf>,
    task_network: String,
}

impl CreatePolicy {
    /// `data_dir` is the data directory's path on the Docker host (bind sources are host
    /// paths). Subdirectories of it may be bound only when `data_dir_view` says where the
    /// guard itself sees that directory, so that it can refuse a path through a symbolic
    /// link: the engine follows links in a bind source on the host, and anything that can
    /// write to the data directory could otherwise point `data/x` at `/`.
    pub fn new(
        images: impl IntoIterator<Item = String>,
        data_dir: &str,
        data_dir_view: Option<PathBuf>,
        task_network: &str,
    ) -> Result<Self, PolicyError> {
        let images: BTreeSet<String> = images.into_iter().collect();
        if images.is_empty() {
            return Err(PolicyError::NoImages);
        }
        if let Some(bad) = images
            .iter()
            .find(|i| i.is_empty() || i.contains(char::is_whitespace))
        {
            return Err(PolicyError::Image(bad.clone()));
        }
        if !is_clean_absolute(data_dir) || data_dir == "/" {
            return Err(PolicyError::DataDir(data_dir.to_string()));
        }
        if task_network.is_empty()
            || ["none", "host", "bridge", "default"].contains(&task_network)
            || task_network.contains(':')
            || task_network.contains(char::is_whitespace)
        {
            return Err(PolicyError::TaskNetwork(task_network.to_string()));
        }
        Ok(Self {
            images,
            data_dir: data_dir.to_string(),
            data_dir_view,
            task_network: task_network.to_string(),
        })
    }

    /// Checks a create body; returns the body to forward: what was checked, with the guard's
    /// label set.
    pub fn check(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let value: Value = serde_json::from_slice(body)
            .or_else(|err| refuse(format!("the create body is not JSON: {err}")))?;
        let checked = self.check_value(value)?;
        serde_json::to_vec(&checked).or_else(|err| refuse(format!("cannot re-encode: {err}")))
    }

    /// [`CreatePolicy::check`] on a parsed body.
    pub fn check_value(&self, body: Value) -> Result<Value, Refusal> {
        let Value::Object(body) = body else {
            return refuse(format!("the create body is not an object: {}", show(&body)));
        };
        let mut body = walk(self, "", body, TOP_LEVEL)?;
        require(&body, "", "Image")?;
        require(&body, "", "User")?;
        require(&body, "", "HostConfig")?;
        self.check_networking(&body)?;
        let labels = body
            .entry("Labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if labels.is_null() {
            *labels = Value::Object(Map::new());
        }
        if let Value::Object(labels) = labels {
            labels.insert(GUARD_LABEL.into(), GUARD_LABEL_VALUE.into());
        }
        Ok(Value::Object(body))
    }

    /// The endpoints of `NetworkingConfig` must be the container's one network, and only
    /// when that network is the task network.
    fn check_networking(&self, body: &Map<String, Value>) -> Result<(), Refusal> {
        let mode = body
            .get("HostConfig")
            .and_then(|h| h.get("NetworkMode"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let endpoints = body
            .get("NetworkingConfig")
            .and_then(|n| n.get("EndpointsConfig"))
            .and_then(Value::as_object);
        for name in endpoints.into_iter().flat_map(|e| e.keys()) {
            if name != &self.task_network || mode != self.task_network {
                return refuse(format!(
                    "NetworkingConfig.EndpointsConfig names network {name:?}: only the task network {:?}, and only as the NetworkMode, is allowed",
                    self.task_network
                ));
            }
        }
        Ok(())
    }

    fn check_bind_source(&self, field: &str, source: &str) -> Result<(), Refusal> {
        if !is_clean_absolute(source) {
            return refuse(format!(
                "{field} {source:?} is not a clean absolute path (no ., .., // or trailing /)"
            ));
        }
        if source == self.data_dir {
            return Ok(());
        }
        let Some(below) = source
            .strip_prefix(&self.data_dir)
            .and_then(|r| r.strip_prefix('/'))
        else {
            return refuse(format!(
                "{field} {source:?} is not the data directory {:?} or below it",
                self.data_dir
            ));
        };
        let Some(view) = &self.data_dir_view else {
            return refuse(format!(
                "{field} {source:?} is below the data directory: subdirectories are allowed only when the guard sees the data directory (--data-dir-view) to check them for symbolic links"
            ));
        };
        let mut path = view.clone();
        for part in below.split('/') {
            path.push(part);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return refuse(format!(
                        "{field} {source:?} passes through a symbolic link ({part:?})"
                    ))
                }
                Ok(_) => {}
                // Nothing to follow: `Binds` create a missing source as plain directories,
                // `Mounts` fail on it.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(err) => return refuse(format!("{field} {source:?} cannot be checked: {err}")),
            }
        }
        Ok(())
    }
}

/// How one known field is checked: given the policy, the field's full name and its
/// (non-null) value, returns the value to forward.
type Check = fn(&CreatePolicy, &str, Value) -> Result<Value, Refusal>;

/// The create body's top level: Go's `container.Config` plus `HostConfig` and
/// `NetworkingConfig`. Not here, so empty or refused: `Domainname`, `MacAddress`,
/// `Healthcheck`, `StopSignal`, `StopTimeout`, `OnBuild`, `Shell`, `ArgsEscaped`, and the
/// host-config fields the engine still reads at the top level for old clients (`Memory`,
/// `CpuShares`, `Cpuset`, `Binds`, `Privileged`...).
const TOP_LEVEL: &[(&str, Check)] = &[
    ("Hostname", string),
    ("User", user),
    ("AttachStdin", boolean),
    ("AttachStdout", boolean),
    ("AttachStderr", boolean),
    ("Tty", boolean),
    ("OpenStdin", boolean),
    ("StdinOnce", boolean),
    ("NetworkDisabled", boolean),
    ("ExposedPorts", empty),
    ("Env", strings),
    ("Cmd", command),
    ("Image", image),
    ("Volumes", empty),
    ("WorkingDir", string),
    ("Entrypoint", never),
    ("Labels", labels),
    ("HostConfig", host_config),
    ("NetworkingConfig", networking_config),
    // docker-py's ContainerConfig puts `runtime` here; the engine reads it into the
    // top-level host config it keeps for old clients.
    ("Runtime", runtime),
];

/// Go's `container.HostConfig` as of API 1.47, less what a task container has no use for.
const HOST_CONFIG: &[(&str, Check)] = &[
    // What HardenedDockerOperator sets.
    ("ReadonlyRootfs", must_be_true),
    ("CapDrop", cap_drop),
    ("SecurityOpt", security_opt),
    ("PidsLimit", positive),
    ("NanoCpus", non_negative),
    ("Tmpfs", tmpfs),
    ("Memory", positive),
    ("NetworkMode", network_mode),
    ("Mounts", mounts),
    ("AutoRemove", boolean),
    // What DockerOperator always sends, empty for our tasks.
    ("CapAdd", empty),
    ("Privileged", must_be_false),
    ("PortBindings", empty),
    ("Dns", empty),
    ("DnsSearch", empty),
    ("ExtraHosts", empty),
    ("DeviceRequests", empty),
    ("LogConfig", log_config),
    ("IpcMode", ipc_mode),
    // Raising a ulimit (memlock, nofile) takes nothing from the host's safety but is no
    // task's business either: ours sends [].
    ("Ulimits", empty),
    ("CpuShares", non_negative),
    ("ShmSize", non_negative),
    // Resource limits a task may tighten.
    ("CpuPeriod", non_negative),
    ("CpuQuota", non_negative),
    ("CpusetCpus", string),
    ("CpusetMems", string),
    ("MemoryReservation", non_negative),
    ("MemorySwap", memory_swap),
    ("MemorySwappiness", swappiness),
    ("BlkioWeight", blkio_weight),
    ("OomScoreAdj", oom_score_adj),
    ("Init", boolean),
    ("ConsoleSize", integers),
    ("RestartPolicy", restart_policy),
    ("Isolation", isolation),
    // Namespaces: the container's own only.
    ("PidMode", private_namespace),
    ("UTSMode", private_namespace),
    ("UsernsMode", private_namespace),
    ("CgroupnsMode", cgroupns_mode),
    ("Runtime", runtime),
    ("OomKillDisable", must_be_false),
    ("PublishAllPorts", must_be_false),
    ("Binds", binds),
    ("MaskedPaths", never),
    ("ReadonlyPaths", never),
    // Named in the issue; refused unless empty (as every field not listed here is).
    ("Devices", empty),
    ("DeviceCgroupRules", empty),
    ("DnsOptions", empty),
    ("Links", empty),
    ("VolumesFrom", empty),
    ("VolumeDriver", empty),
    ("Sysctls", empty),
    ("CgroupParent", empty),
    ("Cgroup", empty),
    ("GroupAdd", empty),
    ("StorageOpt", empty),
    ("Annotations", empty),
    ("CpuRealtimePeriod", empty),
    ("CpuRealtimeRuntime", empty),
    ("KernelMemory", empty),
    ("KernelMemoryTCP", empty),
    ("ContainerIDFile", empty),
];

const NETWORKING_CONFIG: &[(&str, Check)] = &[("EndpointsConfig", endpoints)];

/// An endpoint's settings: none may be set (aliases, links, a fixed address or MAC), as
/// DockerOperator sets none.
const ENDPOINT: &[(&str, Check)] = &[];

const LOG_CONFIG: &[(&str, Check)] = &[("Type", log_driver), ("Config", log_options)];

const MOUNT: &[(&str, Check)] = &[
    ("Type", string),
    ("Source", string),
    ("Target", string),
    ("ReadOnly", boolean),
    ("Consistency", string),
    ("BindOptions", empty),
    ("VolumeOptions", empty),
    ("ImageOptions", empty),
    ("ClusterOptions", empty),
    ("TmpfsOptions", tmpfs_options),
];

const TMPFS_OPTIONS: &[(&str, Check)] = &[
    ("SizeBytes", non_negative),
    ("Mode", non_negative),
    ("Options", any_array),
];

const RESTART_POLICY: &[(&str, Check)] = &[("Name", restart_name), ("MaximumRetryCount", empty)];

/// Checks the fields of one object against `table`; see the module docs.
fn walk(
    policy: &CreatePolicy,
    prefix: &str,
    object: Map<String, Value>,
    table: &[(&str, Check)],
) -> Result<Map<String, Value>, Refusal> {
    let mut out = Map::new();
    for (key, value) in object {
        let field = format!("{prefix}{key}");
        match table.iter().find(|(name, _)| *name == key) {
            Some((_, _)) if value.is_null() => {
                out.insert(key, Value::Null);
            }
            Some((_, check)) => {
                let value = check(policy, &field, value)?;
                out.insert(key, value);
            }
            None if is_empty(&value) => {}
            None => {
                let known = table
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(&key))
                    .map(|(name, _)| format!(" (the engine would read it as {prefix}{name})"))
                    .unwrap_or_default();
                return refuse(format!(
                    "{field} is not a field the guard allows{known}: {}",
                    show(&value)
                ));
            }
        }
    }
    Ok(out)
}

fn object(
    policy: &CreatePolicy,
    field: &str,
    value: Value,
    table: &[(&str, Check)],
) -> Result<Map<String, Value>, Refusal> {
    match value {
        Value::Object(map) => walk(policy, &format!("{field}."), map, table),
        other => refuse(format!("{field} must be an object, got {}", show(&other))),
    }
}

fn require(object: &Map<String, Value>, prefix: &str, key: &str) -> Result<(), Refusal> {
    match object.get(key) {
        Some(v) if !v.is_null() => Ok(()),
        _ => refuse(format!("{prefix}{key} is required")),
    }
}

/// `null`, `false`, `0`, `""`, `[]` or `{}`. Not an object of those: in a map such as
/// `Volumes` or `ExposedPorts` the keys are the content (`{"/data": {}}` is a volume).
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// A value for a message: compact JSON, cut at 120 characters.
fn show(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

fn is_clean_absolute(path: &str) -> bool {
    path == "/"
        || (path.starts_with('/')
            && !path.ends_with('/')
            && !path.chars().any(|c| c.is_control() || c == ':' || c == ',')
            && path[1..]
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".."))
}

fn is_data_target(target: &str) -> bool {
    is_clean_absolute(target) && (target == "/data" || target.starts_with("/data/"))
}

// Checks, one per kind of field. Each gets a non-null value.

fn string(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match value {
        Value::String(_) => Ok(value),
        other => refuse(format!("{field} must be a string, got {}", show(&other))),
    }
}

fn boolean(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match value {
        Value::Bool(_) => Ok(value),
        other => refuse(format!(
            "{field} must be true or false, got {}",
            show(&other)
        )),
    }
}

fn must_be_true(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match value {
        Value::Bool(true) => Ok(value),
        other => refuse(format!("{field} must be true, got {}", show(&other))),
    }
}

fn must_be_false(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match value {
        Value::Bool(false) => Ok(value),
        other => refuse(format!("{field} must be false, got {}", show(&other))),
    }
}

fn empty(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    if is_empty(&value) {
        Ok(value)
    } else {
        refuse(format!("{field} must be empty, got {}", show(&value)))
    }
}

fn never(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    refuse(format!(
        "{field} must be absent or null, got {}",
        show(&value)
    ))
}

fn integer(field: &str, value: &Value) -> Result<i64, Refusal> {
    value.as_i64().map_or_else(
        || refuse(format!("{field} must be an integer, got {}", show(value))),
        Ok,
    )
}

fn in_range(
    field: &str,
    value: Value,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Value, Refusal> {
    let n = integer(field, &value)?;
    if range.contains(&n) {
        Ok(value)
    } else {
        refuse(format!(
            "{field} must be between {} and {}, got {n}",
            range.start(),
            range.end()
        ))
    }
}

fn positive(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let n = integer(field, &value)?;
    if n > 0 {
        Ok(value)
    } else {
        refuse(format!("{field} must be a limit above 0, got {n}"))
    }
}

fn non_negative(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    in_range(field, value, 0..=i64::MAX)
}

fn memory_swap(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    in_range(field, value, -1..=i64::MAX)
}

fn swappiness(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    in_range(field, value, -1..=100)
}

fn blkio_weight(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    in_range(field, value, 0..=1000)
}

/// A task may make itself the OOM killer's first choice, never the host's processes.
fn oom_score_adj(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    in_range(field, value, 0..=1000)
}

fn integers(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match &value {
        Value::Array(items) if items.iter().all(|v| v.as_u64().is_some()) => Ok(value),
        other => refuse(format!(
            "{field} must be a list of integers, got {}",
            show(other)
        )),
    }
}

fn any_array(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match value {
        Value::Array(_) => Ok(value),
        other => refuse(format!("{field} must be a list, got {}", show(&other))),
    }
}

fn strings(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match &value {
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(value),
        other => refuse(format!(
            "{field} must be a list of strings, got {}",
            show(other)
        )),
    }
}

/// `Cmd`: the arguments of the image's own entrypoint (a string or a list, as Go's
/// `StrSlice` reads it).
fn command(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match value {
        Value::String(_) => Ok(value),
        other => strings(policy, field, other),
    }
}

fn labels(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match &value {
        Value::Object(map) if map.values().all(Value::is_string) => Ok(value),
        other => refuse(format!(
            "{field} must map names to strings, got {}",
            show(other)
        )),
    }
}

fn image(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match value.as_str() {
        Some(name) if policy.images.contains(name) => Ok(value),
        _ => refuse(format!(
            "{field} {} is not one of the pipeline's images ({})",
            show(&value),
            policy.images.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// A numeric `uid` or `uid:gid`, neither 0: a name would be looked up in the image's
/// /etc/passwd (the stage images have none) and could name root.
fn user(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let text = value.as_str().unwrap_or_default();
    let id = |s: &str| {
        Some(s)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u32>().ok())
    };
    let (uid, gid) = match text.split_once(':') {
        Some((u, g)) => (id(u), id(g).map(Some)),
        None => (id(text), Some(None)),
    };
    match (uid, gid) {
        (Some(0), _) | (_, Some(Some(0))) => {
            refuse(format!("{field} {} is root (uid or gid 0)", show(&value)))
        }
        (Some(_), Some(_)) => Ok(value),
        _ => refuse(format!(
            "{field} must be a numeric non-root uid or uid:gid, got {}",
            show(&value)
        )),
    }
}

fn host_config(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let config = object(policy, field, value, HOST_CONFIG)?;
    let prefix = format!("{field}.");
    for key in [
        "ReadonlyRootfs",
        "CapDrop",
        "SecurityOpt",
        "NetworkMode",
        "Memory",
        "PidsLimit",
    ] {
        require(&config, &prefix, key)?;
    }
    let nnp = config
        .get("SecurityOpt")
        .and_then(Value::as_array)
        .is_some_and(|opts| !opts.is_empty());
    if !nnp {
        return refuse(format!(
            "{field}.SecurityOpt must contain no-new-privileges"
        ));
    }
    let cpu = |key: &str| config.get(key).and_then(Value::as_i64).unwrap_or(0) > 0;
    if !cpu("NanoCpus") && !cpu("CpuQuota") {
        return refuse(format!(
            "{field}.NanoCpus or {field}.CpuQuota must be a limit above 0, got neither"
        ));
    }
    Ok(Value::Object(config))
}

fn cap_drop(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let all = value.as_array().is_some_and(|caps| {
        caps.iter()
            .any(|c| c.as_str().is_some_and(|c| c.eq_ignore_ascii_case("ALL")))
    });
    if all
        && value
            .as_array()
            .is_some_and(|c| c.iter().all(Value::is_string))
    {
        Ok(value)
    } else {
        refuse(format!("{field} must contain ALL, got {}", show(&value)))
    }
}

/// Only `no-new-privileges`: every other option (`seccomp=`, `apparmor=`, `label=`,
/// `systempaths=`) would replace or loosen a default profile.
fn security_opt(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let Some(opts) = value.as_array() else {
        return refuse(format!("{field} must be a list, got {}", show(&value)));
    };
    for opt in opts {
        match opt.as_str() {
            Some("no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true") => {}
            _ => {
                return refuse(format!(
                    "{field} may hold only no-new-privileges, got {}",
                    show(opt)
                ))
            }
        }
    }
    Ok(value)
}

fn one_of(field: &str, value: Value, allowed: &[&str]) -> Result<Value, Refusal> {
    if value.as_str().is_some_and(|s| allowed.contains(&s)) {
        Ok(value)
    } else {
        let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        refuse(format!(
            "{field} must be one of {}, got {}",
            allowed.join(", "),
            show(&value)
        ))
    }
}

fn private_namespace(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    one_of(field, value, &[""])
}

fn ipc_mode(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    one_of(field, value, &["", "private", "none"])
}

fn cgroupns_mode(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    one_of(field, value, &["", "private"])
}

fn runtime(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    one_of(field, value, &["", "runc"])
}

fn isolation(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    one_of(field, value, &["", "default"])
}

fn restart_name(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    one_of(field, value, &["", "no"])
}

fn restart_policy(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    object(policy, field, value, RESTART_POLICY).map(Value::Object)
}

fn network_mode(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    match value.as_str() {
        Some(mode) if mode == "none" || mode == policy.task_network => Ok(value),
        _ => refuse(format!(
            "{field} must be \"none\" or the task network {:?}, got {}",
            policy.task_network,
            show(&value)
        )),
    }
}

fn networking_config(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    object(policy, field, value, NETWORKING_CONFIG).map(Value::Object)
}

fn endpoints(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let Value::Object(map) = value else {
        return refuse(format!("{field} must be an object, got {}", show(&value)));
    };
    let mut out = Map::new();
    for (name, settings) in map {
        let settings = if settings.is_null() {
            Value::Null
        } else {
            object(policy, &format!("{field}.{name}"), settings, ENDPOINT).map(Value::Object)?
        };
        out.insert(name, settings);
    }
    Ok(Value::Object(out))
}

/// The default driver, with size and rotation options at most: no driver that ships the
/// output elsewhere or writes to a host path.
fn log_config(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    object(policy, field, value, LOG_CONFIG).map(Value::Object)
}

fn log_driver(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    one_of(field, value, &["", "json-file", "local"])
}

fn log_options(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let Value::Object(map) = &value else {
        return refuse(format!("{field} must be an object, got {}", show(&value)));
    };
    for (key, option) in map {
        if !["max-size", "max-file", "compress"].contains(&key.as_str()) || !option.is_string() {
            return refuse(format!(
                "{field} may set max-size, max-file and compress only, got {key:?}: {}",
                show(option)
            ));
        }
    }
    Ok(value)
}

fn tmpfs(_: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let Value::Object(map) = &value else {
        return refuse(format!("{field} must be an object, got {}", show(&value)));
    };
    for (path, options) in map {
        if path != "/tmp" || !options.is_string() {
            return refuse(format!(
                "{field} may mount /tmp only, got {path:?}: {}",
                show(options)
            ));
        }
    }
    Ok(value)
}

fn tmpfs_options(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    object(policy, field, value, TMPFS_OPTIONS).map(Value::Object)
}

/// `HostConfig.Binds`: `SOURCE:TARGET[:ro|rw]`, the source the data directory or below, the
/// target `/data` or below. No other option (`z`, `Z`, propagation, `nocopy`).
fn binds(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let Some(items) = value.as_array() else {
        return refuse(format!("{field} must be a list, got {}", show(&value)));
    };
    for (i, item) in items.iter().enumerate() {
        let here = format!("{field}[{i}]");
        let Some(bind) = item.as_str() else {
            return refuse(format!("{here} must be a string, got {}", show(item)));
        };
        let parts: Vec<&str> = bind.split(':').collect();
        let (source, target, options) = match parts.as_slice() {
            [s, t] => (*s, *t, ""),
            [s, t, o] => (*s, *t, *o),
            _ => {
                return refuse(format!(
                    "{here} {bind:?} is not SOURCE:TARGET or SOURCE:TARGET:ro|rw"
                ))
            }
        };
        policy.check_bind_source(&here, source)?;
        if !is_data_target(target) {
            return refuse(format!("{here} target {target:?} is not /data or below it"));
        }
        if !options.is_empty() {
            if let Some(bad) = options.split(',').find(|o| !["ro", "rw"].contains(o)) {
                return refuse(format!("{here} option {bad:?} is not ro or rw"));
            }
        }
    }
    Ok(value)
}

/// `HostConfig.Mounts`: binds as in [`binds`], or a tmpfs at `/tmp`. No volume (a local
/// volume's driver options can bind any host path), image or cluster mount.
fn mounts(policy: &CreatePolicy, field: &str, value: Value) -> Result<Value, Refusal> {
    let Value::Array(items) = value else {
        return refuse(format!("{field} must be a list, got {}", show(&value)));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let here = format!("{field}[{i}]");
        let mount = object(policy, &here, item, MOUNT)?;
        let text = |key: &str| mount.get(key).and_then(Value::as_str).unwrap_or_default();
        match text("Type") {
            "bind" => {
                policy.check_bind_source(&format!("{here}.Source"), text("Source"))?;
                if !is_data_target(text("Target")) {
                    return refuse(format!(
                        "{here}.Target {:?} is not /data or below it",
                        text("Target")
                    ));
                }
                if mount.get("TmpfsOptions").is_some_and(|o| !is_empty(o)) {
                    return refuse(format!("{here}.TmpfsOptions must be empty for a bind"));
                }
            }
            "tmpfs" => {
                if text("Target") != "/tmp" {
                    return refuse(format!(
                        "{here}.Target {:?}: a tmpfs may be mounted at /tmp only",
                        text("Target")
                    ));
                }
                if !text("Source").is_empty() {
                    return refuse(format!("{here}.Source must be empty for a tmpfs"));
                }
            }
            other => {
                return refuse(format!(
                    "{here}.Type {other:?} is not allowed (bind of the data directory or tmpfs at /tmp only)"
                ))
            }
        }
        out.push(Value::Object(mount));
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// docker-py 7's body for the `train` task (a network, a bind of the data dir) and for
    /// `generate` (network none), as HardenedDockerOperator sends them; see
    /// tests/fixtures/generate.py.
    const TRAIN: &str = include_str!("../tests/fixtures/create-train.json");
    const GENERATE: &str = include_str!("../tests/fixtures/create-generate.json");

    const STAGES: [&str; 7] = [
        "generate",
        "preprocess",
        "split",
        "train",
        "validate",
        "predict",
        "promote",
    ];

    fn policy_with_view(view: Option<PathBuf>) -> CreatePolicy {
        CreatePolicy::new(
            STAGES.iter().map(|s| format!("ml-{s}:0.1.0")),
            "/srv/ml-test/data",
            view,
            "ml-test-tasks",
        )
        .expect("policy")
    }

    /// The policy as the stack runs it: with a view of the data directory (an empty one,
    /// so every subdirectory bind of the fixtures finds no symbolic link).
    fn policy() -> CreatePolicy {
        static VIEW: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
        let view = VIEW.get_or_init(|| tempfile::tempdir().expect("tempdir"));
        policy_with_view(Some(view.path().to_path_buf()))
    }

    fn train() -> Value {
        serde_json::from_str(TRAIN).expect("fixture")
    }

    fn check(body: Value) -> Result<Value, Refusal> {
        policy().check_value(body)
    }

    /// The train body changed by `change` is refused, with a message holding every piece.
    #[track_caller]
    fn assert_refused(change: impl FnOnce(&mut Value), pieces: &[&str]) {
        let mut body = train();
        change(&mut body);
        let Err(Refusal(message)) = check(body) else {
            panic!("allowed, expected a refusal naming {pieces:?}");
        };
        for piece in pieces {
            assert!(message.contains(piece), "{piece:?} not in {message:?}");
        }
    }

    fn host(body: &mut Value) -> &mut Map<String, Value> {
        body["HostConfig"].as_object_mut().expect("HostConfig")
    }

    fn set(key: &str, value: Value) -> impl FnOnce(&mut Value) + '_ {
        move |body| {
            host(body).insert(key.to_string(), value);
        }
    }

    fn unset(key: &str) -> impl FnOnce(&mut Value) + '_ {
        move |body| {
            host(body).remove(key);
        }
    }

    fn bind_mount(source: &str, target: &str) -> Value {
        json!([{ "Target": target, "Source": source, "Type": "bind", "ReadOnly": false }])
    }

    #[test]
    fn docker_operators_bodies_pass_with_the_label_added_and_nothing_else_changed() {
        for fixture in [TRAIN, GENERATE] {
            let body: Value = serde_json::from_str(fixture).expect("fixture");
            let checked = check(body.clone()).expect("allowed");
            let mut expected = body;
            expected["Labels"][GUARD_LABEL] = json!(GUARD_LABEL_VALUE);
            assert_eq!(checked, expected);
        }
    }

    #[test]
    fn the_fixtures_are_what_common_py_asks_for() {
        let body = train();
        let h = &body["HostConfig"];
        assert_eq!(body["Image"], "ml-train:0.1.0");
        assert_eq!(body["User"], "4321:4321");
        assert_eq!(h["ReadonlyRootfs"], true);
        assert_eq!(h["CapDrop"], json!(["ALL"]));
        assert_eq!(h["SecurityOpt"], json!(["no-new-privileges"]));
        assert_eq!(h["NetworkMode"], "ml-test-tasks");
        assert_eq!(
            h["Mounts"],
            json!([
                {
                    "Target": "/data/processed/2026-01-05",
                    "Source": "/srv/ml-test/data/processed/2026-01-05",
                    "Type": "bind",
                    "ReadOnly": true
                },
                {
                    "Target": "/data/models",
                    "Source": "/srv/ml-test/data/models",
                    "Type": "bind",
                    "ReadOnly": false
                }
            ])
        );
        let generate: Value = serde_json::from_str(GENERATE).expect("fixture");
        assert_eq!(generate["HostConfig"]["NetworkMode"], "none");
    }

    #[test]
    fn a_label_the_client_sets_for_itself_is_overwritten() {
        let mut body = train();
        body["Labels"][GUARD_LABEL] = json!("forged");
        let checked = check(body).expect("allowed");
        assert_eq!(checked["Labels"][GUARD_LABEL], GUARD_LABEL_VALUE);
        let mut body = train();
        body["Labels"] = Value::Null;
        let checked = check(body).expect("allowed");
        assert_eq!(checked["Labels"], json!({ GUARD_LABEL: GUARD_LABEL_VALUE }));
    }

    #[test]
    fn privileged() {
        assert_refused(
            set("Privileged", json!(true)),
            &["HostConfig.Privileged", "true"],
        );
    }

    #[test]
    fn cap_add() {
        assert_refused(
            set("CapAdd", json!(["SYS_ADMIN"])),
            &["HostConfig.CapAdd must be empty", "SYS_ADMIN"],
        );
    }

    #[test]
    fn cap_drop_without_all() {
        assert_refused(
            set("CapDrop", json!(["NET_RAW"])),
            &["HostConfig.CapDrop must contain ALL"],
        );
        assert_refused(unset("CapDrop"), &["HostConfig.CapDrop is required"]);
    }

    #[test]
    fn bind_of_the_root() {
        assert_refused(
            set("Mounts", bind_mount("/", "/data")),
            &[
                "HostConfig.Mounts[0].Source",
                "\"/\"",
                "not the data directory",
            ],
        );
        assert_refused(
            set("Binds", json!(["/:/data"])),
            &["HostConfig.Binds[0]", "\"/\"", "not the data directory"],
        );
    }

    #[test]
    fn bind_of_the_docker_socket() {
        assert_refused(
            set(
                "Mounts",
                bind_mount("/var/run/docker.sock", "/data/docker.sock"),
            ),
            &["HostConfig.Mounts[0].Source", "/var/run/docker.sock"],
        );
        assert_refused(
            set(
                "Binds",
                json!(["/var/run/docker.sock:/var/run/docker.sock"]),
            ),
            &["HostConfig.Binds[0]", "/var/run/docker.sock"],
        );
    }

    #[test]
    fn binds_that_only_look_like_the_data_dir() {
        for source in [
            "/srv/ml-test/data-other",
            "/srv/ml-test/data/../../../etc",
            "/srv/ml-test/data/./x",
            "/srv/ml-test//data",
            "/srv/ml-test/data/",
            "srv/ml-test/data",
        ] {
            assert_refused(set("Mounts", bind_mount(source, "/data")), &[source]);
        }
        assert_refused(
            set("Mounts", bind_mount("/srv/ml-test/data", "/etc")),
            &["HostConfig.Mounts[0].Target", "/etc"],
        );
        assert_refused(
            set("Binds", json!(["/srv/ml-test/data:/data:rshared"])),
            &["option \"rshared\""],
        );
        assert_refused(
            set("Binds", json!(["/srv/ml-test/data:/usr/bin"])),
            &["target \"/usr/bin\""],
        );
        let mut bind = bind_mount("/srv/ml-test/data", "/data");
        bind[0]["BindOptions"] = json!({ "Propagation": "rshared" });
        assert_refused(
            set("Mounts", bind),
            &["HostConfig.Mounts[0].BindOptions must be empty"],
        );
    }

    #[test]
    fn the_data_dir_may_be_bound_read_only_and_at_a_subdirectory_of_data() {
        let mut body = train();
        host(&mut body).insert(
            "Binds".into(),
            json!([
                "/srv/ml-test/data:/data/in:ro",
                "/srv/ml-test/data:/data/out:rw"
            ]),
        );
        let mut mount = bind_mount("/srv/ml-test/data", "/data/x");
        mount[0]["ReadOnly"] = json!(true);
        host(&mut body).insert("Mounts".into(), mount);
        check(body).expect("allowed");
    }

    #[test]
    fn subdirectories_of_the_data_dir_need_a_view_and_no_symbolic_link() {
        let mut body = train();
        set("Mounts", bind_mount("/srv/ml-test/data/raw", "/data/raw"))(&mut body);
        let Err(Refusal(message)) = policy_with_view(None).check_value(body) else {
            panic!("a subdirectory bind allowed without a view");
        };
        assert!(message.contains("below the data directory"), "{message}");
        assert!(message.contains("--data-dir-view"), "{message}");
        let view = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(view.path().join("raw/2026-01-05")).expect("mkdir");
        std::os::unix::fs::symlink("/", view.path().join("evil")).expect("symlink");
        std::os::unix::fs::symlink("/etc", view.path().join("raw/link")).expect("symlink");
        let policy = policy_with_view(Some(view.path().to_path_buf()));
        let with = |source: &str| {
            let mut body = train();
            host(&mut body).insert("Mounts".into(), bind_mount(source, "/data/x"));
            policy.check_value(body)
        };
        with("/srv/ml-test/data/raw/2026-01-05").expect("a plain subdirectory");
        with("/srv/ml-test/data/models/2026-01-05").expect("a missing one (created by the engine)");
        for source in [
            "/srv/ml-test/data/evil",
            "/srv/ml-test/data/evil/etc",
            "/srv/ml-test/data/raw/link",
        ] {
            let Err(Refusal(message)) = with(source) else {
                panic!("{source} allowed");
            };
            assert!(message.contains("symbolic link"), "{message}");
        }
    }

    #[test]
    fn volumes_and_other_mount_types() {
        assert_refused(
            set(
                "Mounts",
                json!([{ "Type": "volume", "Source": "x", "Target": "/data",
                         "VolumeOptions": { "DriverConfig": { "Name": "local",
                           "Options": { "type": "none", "o": "bind", "device": "/" } } } }]),
            ),
            &["HostConfig.Mounts[0].VolumeOptions must be empty"],
        );
        assert_refused(
            set(
                "Mounts",
                json!([{ "Type": "volume", "Source": "x", "Target": "/data" }]),
            ),
            &["HostConfig.Mounts[0].Type \"volume\" is not allowed"],
        );
        assert_refused(
            set("Mounts", json!([{ "Type": "tmpfs", "Target": "/data" }])),
            &["/tmp only"],
        );
        assert_refused(
            set("Tmpfs", json!({ "/dev/shm": "rw" })),
            &["HostConfig.Tmpfs may mount /tmp only", "/dev/shm"],
        );
        assert_refused(
            |b| b["Volumes"] = json!({ "/data": {} }),
            &["Volumes must be empty"],
        );
        let mut body = train();
        host(&mut body).insert(
            "Mounts".into(),
            json!([{ "Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": { "SizeBytes": 1024 } }]),
        );
        check(body).expect("a tmpfs at /tmp");
    }

    #[test]
    fn host_network() {
        assert_refused(
            set("NetworkMode", json!("host")),
            &["HostConfig.NetworkMode", "\"host\""],
        );
        for mode in ["bridge", "default", "container:postgres", ""] {
            assert_refused(set("NetworkMode", json!(mode)), &["HostConfig.NetworkMode"]);
        }
        assert_refused(
            unset("NetworkMode"),
            &["HostConfig.NetworkMode is required"],
        );
    }

    #[test]
    fn networking_config_names_only_the_task_network_and_sets_nothing() {
        let mut body = train();
        body["NetworkingConfig"] = json!({ "EndpointsConfig": { "ml-test-tasks": {} } });
        check(body).expect("the task network, empty settings");
        assert_refused(
            |b| {
                b["NetworkingConfig"] =
                    json!({ "EndpointsConfig": { "ml-test-tasks": { "Aliases": ["mlflow"] } } })
            },
            &[
                "NetworkingConfig.EndpointsConfig.ml-test-tasks.Aliases",
                "mlflow",
            ],
        );
        assert_refused(
            |b| b["NetworkingConfig"] = json!({ "EndpointsConfig": { "docker-api": {} } }),
            &["NetworkingConfig.EndpointsConfig names network \"docker-api\""],
        );
        let mut body: Value = serde_json::from_str(GENERATE).expect("fixture");
        body["NetworkingConfig"] = json!({ "EndpointsConfig": { "ml-test-tasks": {} } });
        assert!(
            check(body).is_err(),
            "an endpoint while NetworkMode is none"
        );
    }

    #[test]
    fn host_namespaces() {
        assert_refused(
            set("PidMode", json!("host")),
            &["HostConfig.PidMode", "\"host\""],
        );
        assert_refused(
            set("PidMode", json!("container:postgres")),
            &["HostConfig.PidMode", "container:postgres"],
        );
        assert_refused(set("IpcMode", json!("host")), &["HostConfig.IpcMode"]);
        assert_refused(set("IpcMode", json!("shareable")), &["HostConfig.IpcMode"]);
        assert_refused(set("UTSMode", json!("host")), &["HostConfig.UTSMode"]);
        assert_refused(set("UsernsMode", json!("host")), &["HostConfig.UsernsMode"]);
        assert_refused(
            set("CgroupnsMode", json!("host")),
            &["HostConfig.CgroupnsMode"],
        );
        let mut body = train();
        host(&mut body).insert("IpcMode".into(), json!("private"));
        host(&mut body).insert("CgroupnsMode".into(), json!("private"));
        check(body).expect("private namespaces");
    }

    #[test]
    fn root_user() {
        for user in ["root", "0", "0:0", "0:4321", "4321:0", "00"] {
            assert_refused(|b| b["User"] = json!(user), &["User", user]);
        }
    }

    #[test]
    fn empty_or_named_user() {
        for user in [
            "",
            "nobody",
            "4321:nogroup",
            "4321:",
            ":4321",
            "-1",
            " 4321",
            "99999999999",
        ] {
            assert_refused(
                |b| b["User"] = json!(user),
                &["User must be a numeric non-root uid"],
            );
        }
        assert_refused(
            |b| {
                b.as_object_mut().expect("object").remove("User");
            },
            &["User is required"],
        );
        assert_refused(|b| b["User"] = Value::Null, &["User is required"]);
    }

    #[test]
    fn foreign_image() {
        for image in [
            "alpine:latest",
            "ml-train:latest",
            "ml-train",
            "docker.io/library/ml-train:0.1.0",
        ] {
            assert_refused(
                |b| b["Image"] = json!(image),
                &["Image", image, "not one of the pipeline's images"],
            );
        }
    }

    #[test]
    fn no_read_only_root() {
        assert_refused(
            set("ReadonlyRootfs", json!(false)),
            &["HostConfig.ReadonlyRootfs must be true, got false"],
        );
        assert_refused(
            unset("ReadonlyRootfs"),
            &["HostConfig.ReadonlyRootfs is required"],
        );
    }

    #[test]
    fn missing_limits() {
        assert_refused(unset("Memory"), &["HostConfig.Memory is required"]);
        assert_refused(
            set("Memory", json!(0)),
            &["HostConfig.Memory must be a limit above 0"],
        );
        assert_refused(unset("PidsLimit"), &["HostConfig.PidsLimit is required"]);
        assert_refused(set("PidsLimit", json!(-1)), &["HostConfig.PidsLimit", "-1"]);
        assert_refused(
            unset("NanoCpus"),
            &["HostConfig.NanoCpus or HostConfig.CpuQuota"],
        );
        let mut body = train();
        host(&mut body).remove("NanoCpus");
        host(&mut body).insert("CpuQuota".into(), json!(100_000));
        check(body).expect("a CPU quota instead of NanoCpus");
    }

    #[test]
    fn unknown_host_config_key_with_a_value() {
        assert_refused(
            set("FutureEscapeHatch", json!(true)),
            &[
                "HostConfig.FutureEscapeHatch is not a field the guard allows",
                "true",
            ],
        );
        // The engine reads field names case-insensitively.
        assert_refused(
            set("privileged", json!(true)),
            &[
                "HostConfig.privileged",
                "the engine would read it as HostConfig.Privileged",
            ],
        );
        assert_refused(
            set("\u{17f}ecurityOpt", json!(["seccomp=unconfined"])),
            &["is not a field the guard allows"],
        );
    }

    #[test]
    fn unknown_keys_with_empty_values_are_dropped_not_forwarded() {
        let mut body = train();
        host(&mut body).insert("FutureFlag".into(), json!(false));
        host(&mut body).insert("privileged".into(), json!(false));
        body["Domainname"] = json!("");
        let checked = check(body).expect("allowed");
        assert!(checked["HostConfig"].get("FutureFlag").is_none());
        assert!(checked["HostConfig"].get("privileged").is_none());
        assert!(checked.get("Domainname").is_none());
    }

    #[test]
    fn host_config_fields_at_the_top_level_are_refused() {
        // The engine still reads a host config at the top level of the body (old clients).
        assert_refused(
            |b| b["Privileged"] = json!(true),
            &["Privileged is not a field the guard allows"],
        );
        assert_refused(
            |b| b["Binds"] = json!(["/:/host"]),
            &["Binds is not a field the guard allows"],
        );
        assert_refused(
            |b| {
                b.as_object_mut().expect("object").remove("HostConfig");
            },
            &["HostConfig is required"],
        );
    }

    #[test]
    fn entrypoint_override() {
        for entrypoint in [
            json!(["/bin/sh", "-c", "id"]),
            json!("/bin/sh"),
            json!([]),
            json!([""]),
        ] {
            assert_refused(
                |b| b["Entrypoint"] = entrypoint,
                &["Entrypoint must be absent or null"],
            );
        }
        let mut body = train();
        body["Entrypoint"] = Value::Null;
        check(body).expect("null is the image's own entrypoint");
    }

    #[test]
    fn seccomp_unconfined() {
        assert_refused(
            set(
                "SecurityOpt",
                json!(["no-new-privileges", "seccomp=unconfined"]),
            ),
            &[
                "HostConfig.SecurityOpt may hold only no-new-privileges",
                "seccomp=unconfined",
            ],
        );
        for opt in [
            "apparmor=unconfined",
            "label=disable",
            "systempaths=unconfined",
            "no-new-privileges=false",
        ] {
            assert_refused(
                set("SecurityOpt", json!(["no-new-privileges", opt])),
                &["HostConfig.SecurityOpt", opt],
            );
        }
        assert_refused(
            set("SecurityOpt", json!([])),
            &["HostConfig.SecurityOpt must contain no-new-privileges"],
        );
        for nnp in ["no-new-privileges:true", "no-new-privileges=true"] {
            let mut body = train();
            host(&mut body).insert("SecurityOpt".into(), json!([nnp]));
            check(body).expect(nnp);
        }
    }

    #[test]
    fn empty_masked_paths_unmask_proc() {
        assert_refused(
            set("MaskedPaths", json!([])),
            &["HostConfig.MaskedPaths must be absent"],
        );
        assert_refused(
            set("ReadonlyPaths", json!([])),
            &["HostConfig.ReadonlyPaths must be absent"],
        );
    }

    #[test]
    fn devices_and_host_tricks() {
        for (key, value) in [
            (
                "Devices",
                json!([{ "PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm" }]),
            ),
            (
                "DeviceRequests",
                json!([{ "Count": -1, "Capabilities": [["gpu"]] }]),
            ),
            ("DeviceCgroupRules", json!(["b 8:* rmw"])),
            ("ExtraHosts", json!(["mlflow:10.0.0.1"])),
            ("Dns", json!(["10.0.0.1"])),
            ("DnsSearch", json!(["evil"])),
            ("DnsOptions", json!(["ndots:9"])),
            ("Links", json!(["postgres:db"])),
            (
                "PortBindings",
                json!({ "22/tcp": [{ "HostPort": "2222" }] }),
            ),
            ("VolumesFrom", json!(["postgres"])),
            ("Sysctls", json!({ "kernel.shm_rmid_forced": "1" })),
            (
                "Ulimits",
                json!([{ "Name": "memlock", "Soft": -1, "Hard": -1 }]),
            ),
            ("CgroupParent", json!("/")),
            ("GroupAdd", json!(["0"])),
        ] {
            assert_refused(
                set(key, value),
                &[&format!("HostConfig.{key} must be empty")],
            );
        }
        assert_refused(
            set("PublishAllPorts", json!(true)),
            &["HostConfig.PublishAllPorts must be false"],
        );
        assert_refused(
            set("OomKillDisable", json!(true)),
            &["HostConfig.OomKillDisable must be false"],
        );
        assert_refused(
            set("OomScoreAdj", json!(-1000)),
            &["HostConfig.OomScoreAdj", "-1000"],
        );
        assert_refused(
            set("Runtime", json!("runsc-host")),
            &["HostConfig.Runtime", "runsc-host"],
        );
        assert_refused(|b| b["Runtime"] = json!("nvidia"), &["Runtime", "nvidia"]);
        assert_refused(
            set("RestartPolicy", json!({ "Name": "always" })),
            &["HostConfig.RestartPolicy.Name", "always"],
        );
        assert_refused(
            set(
                "LogConfig",
                json!({ "Type": "syslog", "Config": { "syslog-address": "tcp://evil:514" } }),
            ),
            &["HostConfig.LogConfig", "syslog"],
        );
        assert_refused(
            set("LogConfig", json!({ "Type": "syslog" })),
            &["HostConfig.LogConfig.Type", "\"syslog\""],
        );
        assert_refused(
            set(
                "LogConfig",
                json!({ "Type": "json-file", "Config": { "path": "/etc/x" } }),
            ),
            &["HostConfig.LogConfig.Config", "path"],
        );
        let mut body = train();
        host(&mut body).insert("Init".into(), json!(true));
        host(&mut body).insert("Runtime".into(), json!("runc"));
        host(&mut body).insert("AutoRemove".into(), json!(true));
        host(&mut body).insert(
            "LogConfig".into(),
            json!({ "Type": "json-file", "Config": { "max-size": "10m", "max-file": "3" } }),
        );
        check(body).expect("init, runc, auto-remove and log rotation");
    }

    #[test]
    fn not_json_or_not_an_object() {
        assert!(policy().check(b"{\"Image\":").is_err());
        assert!(policy().check(b"[]").is_err());
        assert!(policy().check(b"{} trailing").is_err());
        let Err(Refusal(message)) = policy().check(b"null") else {
            panic!("allowed");
        };
        assert!(message.contains("not an object"), "{message}");
    }

    #[test]
    fn check_re_encodes_what_it_checked() {
        // Two spellings of one field: the engine would take the last; the guard forwards only
        // the field it checked.
        let body = br#"{"Image":"ml-generate:0.1.0","User":"1:1","HostConfig":{"ReadonlyRootfs":true,"CapDrop":["ALL"],"SecurityOpt":["no-new-privileges"],"NetworkMode":"none","Memory":1,"PidsLimit":1,"NanoCpus":1,"Privileged":false,"privileged":false}}"#;
        let out = policy().check(body).expect("allowed");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(!text.contains("\"privileged\""), "{text}");
        assert!(
            text.contains(&format!("\"{GUARD_LABEL}\":\"{GUARD_LABEL_VALUE}\"")),
            "{text}"
        );
    }

    #[test]
    fn policy_flags_are_checked() {
        let new = |images: Vec<&str>, dir: &str, net: &str| {
            CreatePolicy::new(images.into_iter().map(String::from), dir, None, net)
        };
        assert!(matches!(new(vec![], "/d", "n"), Err(PolicyError::NoImages)));
        assert!(matches!(
            new(vec!["a b"], "/d", "n"),
            Err(PolicyError::Image(_))
        ));
        for dir in ["/", "d", "/d/", "/d/../e", ""] {
            assert!(
                matches!(new(vec!["a"], dir, "n"), Err(PolicyError::DataDir(_))),
                "{dir}"
            );
        }
        for net in ["", "host", "none", "bridge", "container:x"] {
            assert!(
                matches!(new(vec!["a"], "/d", net), Err(PolicyError::TaskNetwork(_))),
                "{net}"
            );
        }
    }
}
