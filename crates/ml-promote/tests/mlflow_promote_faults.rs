//! ml-promote fails closed: a real MLflow server (`MLFLOW_TEST_URI`) behind the test's own
//! fault-injecting proxy (`ml_mlflow::testing::FaultProxy`), which answers 503, stalls or
//! drops the connection on the production alias lookup and on the artifact download.
//! Production is a deliberately bad model and the challenger a good one, so a stage that
//! promoted whenever production could not be scored would move the alias here.
//! `test = false` in Cargo.toml: run with
//!   scripts/mlflow-test-server.sh cargo test --release -p ml-promote --test mlflow_promote_faults

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{bin, logged_model, text, write_model, write_val, Quality};
use ml_mlflow::testing::{server_uri, unique_name as unique, Fault, FaultProxy};
use ml_mlflow::{Client, Tag};
use serde_json::Value;

struct Setup {
    client: Client,
    model: String,
    experiment: String,
    work: tempfile::TempDir,
    val: PathBuf,
}

impl Setup {
    /// A registered model whose production alias holds a bad model (let in with a floor of
    /// 0, as a first model), and a val.csv.
    fn new() -> Setup {
        let client = Client::new(&server_uri()).expect("client");
        let work = tempfile::tempdir().expect("temp dir");
        let val = work.path().join("processed");
        std::fs::create_dir_all(&val).expect("mkdir");
        write_val(&val, 400);
        let setup = Setup {
            client,
            model: unique("clf"),
            experiment: unique("exp"),
            work,
            val,
        };
        let first = setup.model_dir("first");
        logged_model(&setup.client, &setup.experiment, &first, Quality::Bad);
        let out = setup.promote(
            &server_uri(),
            &first,
            &setup.cache("setup"),
            &["--min-roc-auc", "0"],
        );
        assert_eq!(out.0, Some(0), "{}", out.2);
        assert_eq!(setup.alias("production").as_deref(), Some("1"));
        setup
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        let dir = self.work.path().join("models").join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    fn cache(&self, name: &str) -> PathBuf {
        self.work.path().join("cache").join(name)
    }

    fn alias(&self, name: &str) -> Option<String> {
        self.client
            .get_model_version_by_alias(&self.model, name)
            .map(|v| v.version)
            .ok()
    }

    /// Runs ml-promote against `uri`; (exit code, stdout, stderr).
    fn promote(
        &self,
        uri: &str,
        model_dir: &Path,
        cache: &Path,
        extra: &[&str],
    ) -> (Option<i32>, String, String) {
        let out = bin()
            .args(["--registered-model", &self.model, "--input-dir"])
            .arg(&self.val)
            .arg("--model-dir")
            .arg(model_dir)
            .args(extra)
            .env("MLFLOW_TRACKING_URI", uri)
            .env("ML_MODEL_CACHE", cache)
            // Short enough for a test, long enough for a loaded machine.
            .env("MLFLOW_HTTP_RETRY_BUDGET", "2")
            .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "1.5")
            .output()
            .expect("ml-promote runs");
        let (stdout, stderr) = text(&out);
        (out.status.code(), stdout, stderr)
    }
}

fn decision(model_dir: &Path) -> Value {
    let bytes = std::fs::read(model_dir.join("promotion.json")).expect("promotion.json");
    serde_json::from_slice(&bytes).expect("valid JSON")
}

#[test]
fn production_that_cannot_be_judged_moves_nothing_and_exits_75() {
    let setup = Setup::new();
    let proxy = FaultProxy::start(&server_uri());
    let cases = [
        ("registered-models/alias", Fault::Status(503)),
        (
            "registered-models/alias",
            Fault::Stall(Duration::from_secs(3)),
        ),
        ("registered-models/alias", Fault::Drop),
        ("mlflow-artifacts/artifacts", Fault::Status(503)),
        (
            "mlflow-artifacts/artifacts",
            Fault::Stall(Duration::from_secs(3)),
        ),
        ("mlflow-artifacts/artifacts", Fault::Drop),
    ];
    let challenger = setup.model_dir("challenger");
    logged_model(&setup.client, &setup.experiment, &challenger, Quality::Good);
    for (i, (path, fault)) in cases.iter().enumerate() {
        proxy.clear();
        proxy.inject(path, *fault, 10_000);
        // A fresh cache every time: production's files must come from the server.
        let cache = setup.cache(&format!("case-{i}"));
        let (code, stdout, stderr) = setup.promote(&proxy.url(), &challenger, &cache, &[]);
        let case = format!("{fault:?} on {path}");
        assert_eq!(code, Some(75), "{case}: {stderr}");
        assert!(proxy.faulted(path) > 0, "{case}: the fault was hit");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{case}: {stderr}");
        assert!(errors[0].contains("MLflow"), "{case}: {}", errors[0]);
        assert!(stdout.is_empty(), "{case}: {stdout}");
        assert!(!challenger.join("promotion.json").exists(), "{case}");
        assert_eq!(setup.alias("production").as_deref(), Some("1"), "{case}");
        assert_eq!(setup.alias("challenger").as_deref(), Some("1"), "{case}");
    }

    // The same challenger once MLflow answers again: judged for real, and it wins.
    proxy.clear();
    let (code, _, stderr) = setup.promote(&proxy.url(), &challenger, &setup.cache("ok"), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let d = decision(&challenger);
    assert_eq!(d["outcome"], "promoted", "{d}");
    assert_eq!(
        d["version"], "2",
        "one version for all the failed tries: {d}"
    );
    assert!(
        d["difference"]["lower"].as_f64().expect("lower") > 0.0,
        "{d}"
    );
    assert_eq!(setup.alias("production").as_deref(), Some("2"));
}

#[test]
fn a_lost_answer_to_the_registration_makes_one_version() {
    let setup = Setup::new();
    let proxy = FaultProxy::start(&server_uri());
    proxy.inject_for("POST", "model-versions/create", Fault::DropResponse, 1);
    let challenger = setup.model_dir("challenger");
    let record = logged_model(&setup.client, &setup.experiment, &challenger, Quality::Good);
    let (code, _, stderr) = setup.promote(&proxy.url(), &challenger, &setup.cache("c"), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(proxy.faulted("model-versions/create"), 1);
    let versions = setup
        .client
        .search_model_versions(
            &format!("name='{}' and run_id='{}'", setup.model, record.run_id),
            100,
        )
        .expect("searched");
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(decision(&challenger)["version"], versions[0].version);
}

#[test]
fn an_unusable_production_model_is_replaced_and_the_decision_says_so() {
    let setup = Setup::new();
    // A production version whose model file this build cannot read: the envelope of an
    // older format, registered and aliased by hand as an older release would have.
    let old = setup.model_dir("old-format");
    write_model(&old, Quality::Good);
    let mut bytes = std::fs::read(old.join("model.bin")).expect("model");
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(old.join("model.bin"), &bytes).expect("rewrite");
    let record = ml_mlflow::testing::log_model_dir(&setup.client, &setup.experiment, &old);
    let version = setup
        .client
        .create_model_version(
            &setup.model,
            &record.model_source(),
            &record.run_id,
            &[Tag::new("note", "older format")],
        )
        .expect("registered");
    setup
        .client
        .set_alias(&setup.model, "production", &version.version)
        .expect("alias");

    let challenger = setup.model_dir("challenger");
    logged_model(&setup.client, &setup.experiment, &challenger, Quality::Good);
    let (code, stdout, stderr) = setup.promote(&server_uri(), &challenger, &setup.cache("u"), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let d = decision(&challenger);
    assert_eq!(d["outcome"], "promoted", "{d}");
    assert_eq!(d["production_unusable"], true, "{d}");
    assert_eq!(d["production"]["version"], version.version);
    let reason = d["reason"].as_str().expect("reason");
    assert!(
        reason.contains(&format!(
            "production version {} is unusable by this build",
            version.version
        )) && reason.contains("format version 1"),
        "{reason}"
    );
    assert!(stdout.contains("unusable"), "{stdout}");
    assert_eq!(
        setup.alias("production"),
        d["version"].as_str().map(String::from)
    );
    let tagged = setup
        .client
        .get_model_version(&setup.model, d["version"].as_str().expect("version"))
        .expect("version");
    assert_eq!(tagged.tag("promotion.production_unusable"), Some("true"));
}

#[test]
fn a_damaged_cached_copy_is_downloaded_again_not_replaced() {
    let setup = Setup::new();
    let cache = setup.cache("damaged");
    // The cached copy of production (version 1) is damaged on this disk.
    let entry = cache.join(&setup.model).join("1");
    std::fs::create_dir_all(&entry).expect("mkdir");
    std::fs::write(entry.join("model.bin"), b"MLMODEL\0garbage").expect("damaged copy");
    std::fs::write(entry.join(".complete"), "model.bin").expect("marker");

    let challenger = setup.model_dir("challenger");
    logged_model(&setup.client, &setup.experiment, &challenger, Quality::Good);
    let (code, _, stderr) = setup.promote(&server_uri(), &challenger, &cache, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("downloading it again"), "{stderr}");
    let d = decision(&challenger);
    assert_eq!(d["production_unusable"], false, "{d}");
    assert!(d["production"]["metrics"]["roc_auc"].is_number(), "{d}");
    assert!(d["difference"].is_object(), "{d}");
}
