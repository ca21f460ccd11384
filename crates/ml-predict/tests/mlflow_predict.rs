//! ml-predict with registry models against a real MLflow server (`MLFLOW_TEST_URI`, started
//! by `scripts/mlflow-test-server.sh`): `models:/NAME@ALIAS` and `models:/NAME/VERSION`
//! score exactly like the model directory they came from, the second run uses the cache,
//! and a missing alias or server is one clear error that writes nothing.
//! `test = false` in Cargo.toml: a plain `cargo test` does not build this target.

use std::path::Path;
use std::process::{Command, Output};

use ml_mlflow::testing::{log_model_dir, server_uri, unique_name};
use ml_mlflow::Client;
use ml_model::testing::{labeled, save_fitted_model};
use ml_model::Hyperparameters;

const BIN: &str = env!("CARGO_BIN_EXE_ml-predict");

fn predict(raw: &Path, model: &str, out: &Path, cache: &Path, uri: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--input-dir")
        .arg(raw)
        .args(["--model", model, "--output-dir"])
        .arg(out)
        .env("ML_MODEL_CACHE", cache)
        .env_remove("MLFLOW_TRACKING_URI");
    if let Some(uri) = uri {
        cmd.env("MLFLOW_TRACKING_URI", uri);
    }
    cmd.output().expect("run ml-predict")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn registry_models_score_like_their_directory_and_are_cached_per_version() {
    let uri = server_uri();
    let client = Client::new(&uri).expect("client");
    let name = unique_name("clf");
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let raw = root.join("raw");
    ml_data::io::write_features(&raw.join("data.csv"), &labeled(700, 9).features)
        .expect("data.csv");
    let model_dir = root.join("model");
    save_fitted_model(
        &model_dir,
        &Hyperparameters::LogisticRegression(Default::default()),
        4,
    );
    let record = log_model_dir(&client, &unique_name("predict"), &model_dir);
    client
        .ensure_registered_model(&name, "test")
        .expect("registered model");
    let version = client
        .create_model_version(&name, &record.model_source(), &record.run_id, &[])
        .expect("version");
    client
        .set_alias(&name, "production", &version.version)
        .expect("alias");
    let cache = root.join("cache");

    let from_dir = predict(
        &raw,
        model_dir.to_str().expect("utf-8"),
        &root.join("a"),
        &cache,
        None,
    );
    assert!(from_dir.status.success(), "{}", text(&from_dir));

    let alias = format!("models:/{name}@production");
    let first = predict(&raw, &alias, &root.join("b"), &cache, Some(&uri));
    let log = text(&first);
    assert!(first.status.success(), "{log}");
    let says = format!(
        "{alias} is {name} version {} (run {})",
        version.version, record.run_id
    );
    assert!(log.contains(&says), "{log}");
    assert!(log.contains("downloaded to"), "{log}");

    let pinned = format!("models:/{name}/{}", version.version);
    let second = predict(&raw, &pinned, &root.join("c"), &cache, Some(&uri));
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("cached in"), "{}", text(&second));

    let expected = std::fs::read(root.join("a/predictions.csv")).expect("a");
    for dir in ["b", "c"] {
        let got = std::fs::read(root.join(dir).join("predictions.csv")).expect("predictions");
        assert_eq!(got, expected, "{dir}");
    }

    // provenance.json names what the URI resolved to; the model file is the one logged.
    let provenance = |dir: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(root.join(dir).join("provenance.json"))
            .expect("provenance.json");
        serde_json::from_str(&text).expect("JSON")
    };
    let model_sha = ml_cli::testing::sha256(&model_dir.join("model.bin"));
    for (dir, uri, alias) in [
        ("b", alias.as_str(), serde_json::json!("production")),
        ("c", pinned.as_str(), serde_json::Value::Null),
    ] {
        let p = provenance(dir);
        let model = &p["model"];
        assert_eq!(model["uri"], uri, "{dir}: {p}");
        assert_eq!(model["registered_model"], name.as_str(), "{dir}: {p}");
        assert_eq!(model["version"], version.version.as_str(), "{dir}: {p}");
        assert_eq!(model["alias"], alias, "{dir}: {p}");
        assert_eq!(model["run_id"], record.run_id.as_str(), "{dir}: {p}");
        assert_eq!(model["file"], "model.bin", "{dir}: {p}");
        assert_eq!(model["sha256"], model_sha.as_str(), "{dir}: {p}");
        // Same input, same model, same predictions: only the model's naming differs.
        for part in ["input", "predictions", "keyed_by", "format"] {
            assert_eq!(p[part], provenance("a")[part], "{dir}: {part}");
        }
    }
    // The model directory: no registry names, but its run record (written when it was
    // logged) gives the run.
    let local = provenance("a");
    assert_eq!(local["model"]["uri"], model_dir.to_str().expect("utf-8"));
    for field in ["registered_model", "version", "alias"] {
        assert_eq!(local["model"][field], serde_json::Value::Null, "{field}");
    }
    assert_eq!(local["model"]["run_id"], record.run_id.as_str());
    assert_eq!(local["model"]["sha256"], model_sha.as_str());
    assert_eq!(local["keyed_by"], "row_number");
    assert_eq!(local["input"]["rows"], 700);
}

#[test]
fn a_missing_alias_or_tracking_uri_is_one_clear_error_and_writes_nothing() {
    let uri = server_uri();
    let client = Client::new(&uri).expect("client");
    let name = unique_name("clf");
    client
        .ensure_registered_model(&name, "test")
        .expect("registered model");
    let tmp = tempfile::tempdir().expect("temp dir");
    let raw = tmp.path().join("raw");
    ml_data::io::write_features(&raw.join("data.csv"), &labeled(50, 9).features).expect("data.csv");
    let out_dir = tmp.path().join("out");
    let cache = tmp.path().join("cache");
    let model = format!("models:/{name}@production");

    for (uri, expect) in [
        (Some(uri.as_str()), vec![model.as_str(), "production"]),
        (None, vec![model.as_str(), "MLFLOW_TRACKING_URI"]),
    ] {
        let out = predict(&raw, &model, &out_dir, &cache, uri);
        let err = text(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        for piece in &expect {
            assert!(
                errors[0].contains(piece),
                "{piece:?} not in {:?}",
                errors[0]
            );
        }
        assert!(!out_dir.exists(), "nothing may be written");
    }
}
