//! `ml-promote review` and `ml-promote set-production` against a real MLflow server
//! (`MLFLOW_TEST_URI`, started by `scripts/mlflow-test-server.sh`): approval moves
//! production and records the person, rejection and timeout move nothing, an approval whose
//! comparison is out of date is refused, a retry is harmless, and a hand-made rollback
//! records who and why. `test = false` in Cargo.toml: a plain `cargo test` does not build it.

mod common;

use std::path::{Path, PathBuf};

use common::{bin, logged_model, text, write_val, Quality};
use ml_mlflow::testing::{server_uri as server, unique_name as unique};
use ml_mlflow::Client;
use serde_json::Value;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

struct Registry {
    uri: String,
    client: Client,
    model: String,
    experiment: String,
    work: tempfile::TempDir,
}

impl Registry {
    fn new() -> Registry {
        let uri = server();
        let client = Client::new(&uri).expect("client");
        let work = tempfile::tempdir().expect("temp dir");
        write_val(work.path(), 300);
        Registry {
            uri,
            client,
            model: unique("clf"),
            experiment: unique("heart-disease"),
            work,
        }
    }

    fn cache(&self) -> PathBuf {
        self.work.path().join("cache")
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = bin()
            .args(args)
            .env("MLFLOW_TRACKING_URI", &self.uri)
            .env("ML_MODEL_CACHE", self.cache())
            .output()
            .expect("ml-promote runs");
        let (stdout, stderr) = text(&out);
        Run {
            code: out.status.code(),
            stdout,
            stderr,
        }
    }

    /// Trains a fixture model for `week` and runs the comparison in `mode`.
    fn week(&self, week: &str, quality: Quality, mode: &str) -> PathBuf {
        let dir = self.work.path().join("models").join(week);
        std::fs::create_dir_all(&dir).expect("mkdir");
        logged_model(&self.client, &self.experiment, &dir, quality);
        let val = self.work.path().to_str().expect("utf-8").to_string();
        let p = self.run(&[
            "--registered-model",
            &self.model,
            "--input-dir",
            &val,
            "--model-dir",
            dir.to_str().expect("utf-8"),
            "--mode",
            mode,
        ]);
        assert_eq!(p.code, Some(0), "{}", p.stderr);
        dir
    }

    fn review(&self, dir: &Path, answer: &str, by: &str, comment: &str) -> Run {
        self.run(&[
            "review",
            "--model-dir",
            dir.to_str().expect("utf-8"),
            "--answer",
            answer,
            "--by",
            by,
            "--comment",
            comment,
            "--responded-at",
            "2026-12-03T10:00:00+00:00",
        ])
    }

    fn set_production(&self, version: &str, reason: &str) -> Run {
        self.run(&[
            "set-production",
            "--registered-model",
            &self.model,
            "--version",
            version,
            "--reason",
            reason,
            "--by",
            "carol",
            "--at",
            "2026-12-03T11:00:00+00:00",
        ])
    }

    fn production(&self) -> Option<String> {
        self.client
            .get_model_version_by_alias(&self.model, "production")
            .map(|v| v.version)
            .ok()
    }

    fn tag(&self, version: &str, key: &str) -> Option<String> {
        self.client
            .get_model_version(&self.model, version)
            .expect("version")
            .tag(key)
            .map(str::to_string)
    }
}

fn decision(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("promotion.json")).expect("promotion.json"))
        .expect("JSON")
}

fn error_line(run: &Run) -> String {
    run.stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn approve_reject_timeout_and_a_stale_approval() {
    let r = Registry::new();
    // Version 1 is production (auto mode, no production yet).
    r.week("w1", Quality::Good, "auto");
    assert_eq!(r.production().as_deref(), Some("1"));

    // Version 2 awaits review; the decision links the challenger's run.
    let w2 = r.week("w2", Quality::Good, "manual");
    let d = decision(&w2);
    assert_eq!(d["outcome"], "awaiting_review");
    assert!(
        d["experiment_id"].as_str().is_some_and(|e| !e.is_empty()),
        "{d}"
    );
    assert_eq!(d["production"]["version"], "1");
    assert!(d["production"]["experiment_id"].is_string(), "{d}");

    // An answer without a person is a usage error of the DAG, refused before MLflow.
    let bad = r.review(&w2, "approve", "", "");
    assert_eq!(bad.code, Some(65), "{}", bad.stderr);
    assert_eq!(
        error_line(&bad),
        "error: --answer approve needs --by: the person who answered"
    );

    // Approve: production moves, the person and the comment are recorded everywhere.
    let ok = r.review(&w2, "approve", "alice", "fresher data, same quality");
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(
        ok.stdout.contains("review      approved by alice at 2026-12-03T10:00:00+00:00: fresher data, same quality"),
        "{}",
        ok.stdout
    );
    assert_eq!(r.production().as_deref(), Some("2"));
    let d = decision(&w2);
    assert_eq!(d["outcome"], "promoted");
    assert_eq!(d["review"]["answer"], "approve");
    assert_eq!(d["review"]["by"], "alice");
    assert_eq!(d["review"]["comment"], "fresher data, same quality");
    assert_eq!(d["review"]["production_before"], "1");
    assert_eq!(r.tag("2", "approval.answer").as_deref(), Some("approved"));
    assert_eq!(r.tag("2", "approval.by").as_deref(), Some("alice"));
    assert_eq!(
        r.tag("2", "approval.comment").as_deref(),
        Some("fresher data, same quality")
    );
    assert_eq!(
        r.tag("2", "approval.responded_at").as_deref(),
        Some("2026-12-03T10:00:00+00:00")
    );
    assert_eq!(r.tag("2", "promotion.outcome").as_deref(), Some("promoted"));
    assert_eq!(r.tag("1", "promotion.replaced_by").as_deref(), Some("2"));

    // An Airflow retry of the same answer changes nothing; another answer is refused.
    let again = r.review(&w2, "approve", "alice", "fresher data, same quality");
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stderr.contains("already recorded (re-run)"),
        "{}",
        again.stderr
    );
    let other = r.review(&w2, "reject", "bob", "");
    assert_eq!(other.code, Some(65), "{}", other.stderr);
    assert!(
        error_line(&other).contains("was already reviewed: approved by alice"),
        "{}",
        other.stderr
    );
    assert_eq!(r.production().as_deref(), Some("2"));

    // Reject: nothing moves, the rejection and its author are recorded.
    let w3 = r.week("w3", Quality::Good, "manual");
    let no = r.review(&w3, "reject", "bob", "not this week");
    assert_eq!(no.code, Some(0), "{}", no.stderr);
    assert_eq!(r.production().as_deref(), Some("2"));
    let d = decision(&w3);
    assert_eq!(d["outcome"], "rejected");
    assert_eq!(d["review"]["by"], "bob");
    assert_eq!(r.tag("3", "approval.answer").as_deref(), Some("rejected"));
    assert_eq!(r.tag("3", "approval.by").as_deref(), Some("bob"));
    assert_eq!(r.tag("3", "promotion.outcome").as_deref(), Some("rejected"));

    // Timeout: nobody answered; a rejection with nobody's name.
    let w4 = r.week("w4", Quality::Good, "manual");
    let late = r.review(&w4, "timeout", "", "");
    assert_eq!(late.code, Some(0), "{}", late.stderr);
    assert_eq!(r.production().as_deref(), Some("2"));
    let d = decision(&w4);
    assert_eq!(d["outcome"], "rejected");
    assert_eq!(d["review"]["answer"], "timeout");
    assert_eq!(d["review"]["by"], Value::Null);
    assert_eq!(r.tag("4", "approval.answer").as_deref(), Some("timed_out"));
    assert_eq!(r.tag("4", "approval.by").as_deref(), Some("nobody"));

    // A stale approval: version 5 was compared with production 2, then someone rolled
    // back to 1. Approving 5 now would skip a comparison: refused, nothing moves.
    let w5 = r.week("w5", Quality::Good, "manual");
    let back = r.set_production("1", "roll back for the test");
    assert_eq!(back.code, Some(0), "{}", back.stderr);
    let stale = r.review(&w5, "approve", "alice", "");
    assert_eq!(stale.code, Some(65), "{}", stale.stderr);
    assert_eq!(
        error_line(&stale),
        "error: version 5 was compared with production version 2, but production is version 1 now: the comparison is out of date and nothing was changed (train again, or set production by hand)"
    );
    assert_eq!(r.production().as_deref(), Some("1"));
    assert_eq!(decision(&w5)["outcome"], "awaiting_review");
    assert_eq!(r.tag("5", "approval.answer"), None);

    // A bad model awaiting review cannot be approved past the floor.
    let w6 = r.week("w6", Quality::Bad, "manual");
    let low = r.review(&w6, "approve", "alice", "");
    assert_eq!(low.code, Some(65), "{}", low.stderr);
    assert!(
        error_line(&low).contains("is below the floor 0.7500"),
        "{}",
        low.stderr
    );
    assert_eq!(r.production().as_deref(), Some("1"));

    // Reviewing a decision made in auto mode is refused.
    let auto = r.review(&r.work.path().join("models/w1"), "approve", "alice", "");
    assert_eq!(auto.code, Some(65), "{}", auto.stderr);
    assert!(
        error_line(&auto).contains("was decided in auto mode"),
        "{}",
        auto.stderr
    );
}

#[test]
fn set_production_rolls_back_and_records_who_and_why() {
    let r = Registry::new();
    r.week("w1", Quality::Good, "auto");
    r.week("w2", Quality::Good, "manual");
    let w2 = r.work.path().join("models/w2");
    assert_eq!(r.review(&w2, "approve", "alice", "").code, Some(0));
    assert_eq!(r.production().as_deref(), Some("2"));

    let back = r.set_production("1", "v2 misbehaves on live data");
    assert_eq!(back.code, Some(0), "{}", back.stderr);
    let change: Value =
        serde_json::from_str(back.stdout.lines().last().expect("a line")).expect("JSON");
    assert_eq!(change["version"], "1");
    assert_eq!(change["previous_version"], "2");
    assert_eq!(change["changed"], true);
    assert_eq!(change["by"], "carol");
    assert_eq!(r.production().as_deref(), Some("1"));
    assert_eq!(r.tag("1", "production.set_by").as_deref(), Some("carol"));
    assert_eq!(
        r.tag("1", "production.reason").as_deref(),
        Some("v2 misbehaves on live data")
    );
    assert_eq!(
        r.tag("1", "production.set_at").as_deref(),
        Some("2026-12-03T11:00:00+00:00")
    );
    assert_eq!(
        r.tag("1", "production.previous_version").as_deref(),
        Some("2")
    );
    assert_eq!(r.tag("2", "promotion.replaced_by").as_deref(), Some("1"));

    // Asking for the version that already is production moves nothing and says so.
    let same = r.set_production("1", "again");
    assert_eq!(same.code, Some(0), "{}", same.stderr);
    assert!(
        same.stderr.contains("already is production"),
        "{}",
        same.stderr
    );
    assert_eq!(
        r.tag("1", "production.reason").as_deref(),
        Some("v2 misbehaves on live data")
    );

    // An unknown version is refused and production stays.
    let missing = r.set_production("99", "typo");
    assert_eq!(missing.code, Some(65), "{}", missing.stderr);
    assert_eq!(
        error_line(&missing),
        format!(
            "error: registered model {} has no version 99; nothing was changed",
            r.model
        )
    );
    let empty = r.set_production("2", " ");
    assert_eq!(empty.code, Some(65), "{}", empty.stderr);
    assert_eq!(r.production().as_deref(), Some("1"));
}
