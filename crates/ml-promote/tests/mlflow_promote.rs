//! ml-promote against a real MLflow server (`MLFLOW_TEST_URI`, started by
//! `scripts/mlflow-test-server.sh`): the whole champion/challenger sequence, both outcomes
//! forced with a deliberately bad model, manual mode, and an Airflow-style re-run.
//! `test = false` in Cargo.toml: a plain `cargo test` does not build this target.

mod common;

use std::path::Path;

use common::{bin, logged_model, text, write_val, Quality};
use ml_mlflow::testing::{server_uri as server, unique_name as unique};
use ml_mlflow::Client;
use serde_json::Value;

struct Promotion {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    decision: Value,
}

fn promote(
    uri: &str,
    model: &str,
    val: &Path,
    model_dir: &Path,
    cache: &Path,
    extra: &[&str],
) -> Promotion {
    let out = bin()
        .args(["--registered-model", model, "--input-dir"])
        .arg(val)
        .arg("--model-dir")
        .arg(model_dir)
        .args(extra)
        .env("MLFLOW_TRACKING_URI", uri)
        .env("ML_MODEL_CACHE", cache)
        .output()
        .expect("ml-promote runs");
    let (stdout, stderr) = text(&out);
    let decision = std::fs::read(model_dir.join("promotion.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Promotion {
        code: out.status.code(),
        stdout,
        stderr,
        decision,
    }
}

#[test]
fn champion_challenger_through_registry_aliases() {
    let uri = server();
    let client = Client::new(&uri).expect("client");
    let model = unique("clf");
    let experiment = unique("heart-disease");
    let work = tempfile::tempdir().expect("temp dir");
    let val = work.path().join("processed");
    std::fs::create_dir_all(&val).expect("mkdir");
    write_val(&val, 400);
    let cache = work.path().join("cache");
    let model_dir = |week: &str| {
        let dir = work.path().join("models").join(week);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    };
    let alias = |name: &str| {
        client
            .get_model_version_by_alias(&model, name)
            .map(|v| v.version)
            .ok()
    };

    // Week 0: a bad model and no production yet: the floor still keeps it out.
    let w0 = model_dir("w0");
    logged_model(&client, &experiment, &w0, Quality::Bad);
    let p = promote(&uri, &model, &val, &w0, &cache, &[]);
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(p.decision["outcome"], "rejected", "{}", p.decision);
    assert!(
        p.decision["reason"]
            .as_str()
            .is_some_and(|r| r.ends_with("is below the floor 0.7500")),
        "{}",
        p.decision
    );
    assert_eq!(alias("production"), None);
    assert_eq!(alias("challenger").as_deref(), Some("1"));

    // Week 1: a bad model let in by a floor of 0 (there is no production yet).
    let w1 = model_dir("w1");
    let r1 = logged_model(&client, &experiment, &w1, Quality::Bad);
    let p = promote(&uri, &model, &val, &w1, &cache, &["--min-roc-auc", "0"]);
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(p.decision["outcome"], "promoted");
    assert_eq!(p.decision["version"], "2");
    let first_auc = p.decision["challenger_roc_auc"].as_f64().expect("auc");
    assert_eq!(
        p.decision["reason"],
        format!(
            "there is no production model yet; challenger ROC AUC {first_auc:.4} clears the floor 0.0000"
        )
    );
    assert_eq!(p.decision["production"], Value::Null);
    assert_eq!(p.decision["difference"], Value::Null);
    assert!(p.stdout.contains("outcome     promoted"), "{}", p.stdout);
    assert_eq!(alias("production").as_deref(), Some("2"));
    assert_eq!(alias("challenger").as_deref(), Some("2"));
    let v1 = client.get_model_version(&model, "2").expect("v2");
    assert_eq!(v1.run_id, r1.run_id);
    assert_eq!(v1.source, format!("{}/model", r1.artifact_uri));
    assert_eq!(v1.tag("promotion.outcome"), Some("promoted"));
    assert_eq!(v1.tag("promotion.production_version"), Some("none"));
    assert_eq!(v1.tag("promotion.min_roc_auc"), Some("0"));
    let bad_auc = p.decision["challenger_roc_auc"].as_f64().expect("auc");
    assert!(
        bad_auc < 0.5,
        "inverted labels score below chance: {bad_auc}"
    );
    let run = client.get_run(&r1.run_id).expect("run");
    assert_eq!(run.tag("registered_model_version"), Some("2"));
    assert_eq!(run.tag("promotion.outcome"), Some("promoted"));

    // Week 2: a good model beats it on the same val.csv, the whole interval above the margin.
    let w2 = model_dir("w2");
    logged_model(&client, &experiment, &w2, Quality::Good);
    let p = promote(
        &uri,
        &model,
        &val,
        &w2,
        &cache,
        &["--min-improvement", "0.05"],
    );
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(p.decision["outcome"], "promoted", "{}", p.decision);
    assert_eq!(p.decision["version"], "3");
    assert_eq!(p.decision["production"]["version"], "2");
    let prod_auc = p.decision["production"]["metrics"]["roc_auc"]
        .as_f64()
        .expect("scored production");
    assert!(
        (prod_auc - bad_auc).abs() < 1e-12,
        "production scored on the same data"
    );
    let good_auc = p.decision["challenger_roc_auc"].as_f64().expect("auc");
    assert!(good_auc > 0.8, "{good_auc}");
    let d = &p.decision["difference"];
    let (lower, estimate) = (
        d["lower"].as_f64().expect("lower"),
        d["estimate"].as_f64().expect("estimate"),
    );
    assert!(lower > 0.05 && lower <= estimate, "{d}");
    assert!((estimate - (good_auc - prod_auc)).abs() < 1e-12, "{d}");
    assert_eq!(d["resamples"], 2000);
    assert!(p.stderr.contains("95% interval ["), "{}", p.stderr);
    assert_eq!(alias("production").as_deref(), Some("3"));
    let v2 = client.get_model_version(&model, "3").expect("v3");
    assert_eq!(v2.tag("promotion.production_version"), Some("2"));
    assert_eq!(
        v2.tag("promotion.production_roc_auc"),
        Some(format!("{bad_auc:.4}").as_str())
    );
    assert_eq!(
        v2.tag("promotion.challenger_roc_auc"),
        Some(format!("{good_auc:.4}").as_str())
    );
    assert_eq!(
        v2.tag("promotion.auc_difference_interval"),
        Some(format!("[{lower:.4}, {:.4}]", d["upper"].as_f64().expect("upper")).as_str())
    );
    assert_eq!(v2.tag("promotion.min_improvement"), Some("0.05"));
    assert_eq!(
        client
            .get_model_version(&model, "2")
            .expect("v2")
            .tag("promotion.replaced_by"),
        Some("3")
    );

    // The same good model again: no better on these rows, so production stays (a tie is
    // not an improvement, and neither is noise).
    let w2b = model_dir("w2b");
    logged_model(&client, &experiment, &w2b, Quality::Good);
    let p = promote(&uri, &model, &val, &w2b, &cache, &[]);
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(p.decision["outcome"], "rejected", "{}", p.decision);
    assert_eq!(p.decision["difference"]["lower"], 0.0);
    assert_eq!(alias("production").as_deref(), Some("3"));
    assert_eq!(alias("challenger").as_deref(), Some("4"));

    // Week 3: a bad model again; production stays, the newcomer is only challenger.
    let w3 = model_dir("w3");
    logged_model(&client, &experiment, &w3, Quality::Bad);
    let p = promote(&uri, &model, &val, &w3, &cache, &[]);
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(p.decision["outcome"], "rejected");
    assert_eq!(alias("production").as_deref(), Some("3"));
    assert_eq!(alias("challenger").as_deref(), Some("5"));
    assert!(
        p.stderr.contains(&format!(
            "production (models:/{model}/3) ROC AUC on the same data: {good_auc:.4}"
        )),
        "{}",
        p.stderr
    );

    // Week 4: manual mode leaves production to a person.
    let w4 = model_dir("w4");
    logged_model(&client, &experiment, &w4, Quality::Good);
    let p = promote(&uri, &model, &val, &w4, &cache, &["--mode", "manual"]);
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(p.decision["outcome"], "awaiting_review");
    assert_eq!(alias("production").as_deref(), Some("3"));
    assert_eq!(alias("challenger").as_deref(), Some("6"));
    assert_eq!(
        client
            .get_model_version(&model, "6")
            .expect("v4")
            .tag("promotion.mode"),
        Some("manual")
    );

    // An Airflow retry of week 2: no new version, production untouched, same decision.
    let p = promote(
        &uri,
        &model,
        &val,
        &w2,
        &cache,
        &["--min-improvement", "0.05"],
    );
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(p.decision["version"], "3");
    assert_eq!(p.decision["outcome"], "promoted");
    assert_eq!(p.decision["rerun"], true);
    assert!(
        client.get_model_version(&model, "7").is_err(),
        "no new version on a re-run"
    );
    assert_eq!(alias("production").as_deref(), Some("3"));
}

#[test]
fn the_model_version_source_is_downloadable_as_inference_will_see_it() {
    let uri = server();
    let client = Client::new(&uri).expect("client");
    let model = unique("clf");
    let work = tempfile::tempdir().expect("temp dir");
    write_val(work.path(), 200);
    let cache = work.path().join("cache");
    logged_model(&client, &unique("exp"), work.path(), Quality::Good);
    let p = promote(&uri, &model, work.path(), work.path(), &cache, &[]);
    assert_eq!(p.code, Some(0), "{}", p.stderr);

    let production: ml_mlflow::ModelUri =
        format!("models:/{model}@production").parse().expect("uri");
    let fetched = client.fetch_model(&production, &cache).expect("fetched");
    let local = std::fs::read(work.path().join("model.bin")).expect("local model");
    let remote = std::fs::read(fetched.dir.join("model.bin")).expect("downloaded model");
    assert_eq!(
        local, remote,
        "the registry serves the bytes ml-train wrote"
    );
    ml_model::Model::load_dir(&fetched.dir).expect("loads as a model");
}
