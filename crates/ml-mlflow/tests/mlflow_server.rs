//! The client against a real MLflow server (never a mock): the server is started by
//! `scripts/mlflow-test-server.sh`, which exports its address as `MLFLOW_TEST_URI`.
//!
//! This target is `test = false` in Cargo.toml, so a plain `cargo test` skips it; run it with
//!   scripts/mlflow-test-server.sh cargo test --release -p ml-mlflow --test mlflow_server
//! Without `MLFLOW_TEST_URI` every test fails with a message saying exactly that.

use ml_mlflow::testing::{server_uri, unique_name as unique};
use ml_mlflow::{Client, Error, Metric, ModelUri, Param, RunStatus, Tag};

fn client() -> Client {
    Client::new(&server_uri()).expect("MLFLOW_TEST_URI is a valid URL")
}

#[test]
fn a_run_records_params_metrics_tags_and_its_final_status() {
    let client = client();
    let name = unique("exp");
    let experiment = client.ensure_experiment(&name).expect("experiment created");
    assert_eq!(experiment.name, name);
    let kind = experiment
        .tags
        .iter()
        .find(|t| t.key == ml_mlflow::EXPERIMENT_KIND_TAG)
        .map(|t| t.value.as_str());
    assert_eq!(
        kind,
        Some(ml_mlflow::EXPERIMENT_KIND_MODEL_TRAINING),
        "a new experiment opens in the UI's model-training view"
    );
    let again = client.ensure_experiment(&name).expect("experiment found");
    assert_eq!(
        again.experiment_id, experiment.experiment_id,
        "ensure is idempotent"
    );

    let run = client
        .create_run(
            &experiment.experiment_id,
            Some("train"),
            &[Tag::new("stage", "train")],
        )
        .expect("run created");
    assert_eq!(run.info.status, RunStatus::Running);
    assert_eq!(run.info.run_name, "train");

    // More params than one log-batch request may carry: the client splits them.
    let mut params: Vec<Param> = (0..250)
        .map(|i| Param::new(format!("p{i:03}"), i))
        .collect();
    params.push(Param::new("model", "logistic-regression"));
    let metrics = [Metric::now("roc_auc", 0.91), Metric::now("n_val", 120.0)];
    client
        .log_batch(
            &run.info.run_id,
            &metrics,
            &params,
            &[Tag::new("data_date", "2026-01-05")],
        )
        .expect("batch logged");

    let finished = client
        .set_run_status(&run.info.run_id, RunStatus::Finished)
        .expect("run finished");
    assert_eq!(finished.status, RunStatus::Finished);
    assert!(finished.end_time.is_some());

    let stored = client.get_run(&run.info.run_id).expect("run read back");
    assert_eq!(stored.metric("roc_auc"), Some(0.91));
    assert_eq!(stored.param("model"), Some("logistic-regression"));
    assert_eq!(stored.param("p249"), Some("249"));
    assert_eq!(stored.data.params.len(), 251);
    assert_eq!(stored.tag("data_date"), Some("2026-01-05"));
    assert_eq!(stored.tag("stage"), Some("train"));
    assert_eq!(stored.info.status, RunStatus::Finished);
}

#[test]
fn non_finite_metrics_are_refused_before_sending() {
    let client = client();
    let err = client
        .log_batch("any-run", &[Metric::now("log_loss", f64::NAN)], &[], &[])
        .expect_err("NaN refused");
    assert!(matches!(err, Error::NonFiniteMetric { .. }), "{err}");
}

#[test]
fn artifacts_go_up_and_come_back_through_the_proxy() {
    let client = client();
    let experiment = client
        .ensure_experiment(&unique("exp"))
        .expect("experiment");
    let run = client
        .create_run(&experiment.experiment_id, None, &[])
        .expect("run");
    let root = &run.info.artifact_uri;
    assert!(
        root.starts_with("mlflow-artifacts:"),
        "server proxies artifacts: {root}"
    );

    let model: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    client
        .upload_artifact(root, "model/model.bin", &model)
        .expect("binary uploaded");
    let dir = tempfile::tempdir().expect("temp dir");
    let descriptor = dir.path().join("descriptor.json");
    std::fs::write(&descriptor, br#"{"format": "ml-model", "version": 1}"#).expect("write");
    client
        .upload_file(root, "model/descriptor.json", &descriptor)
        .expect("file uploaded");
    client
        .upload_artifact(root, "model/extra/notes with space.txt", b"hi")
        .expect("nested uploaded");

    assert_eq!(
        client
            .download_artifact(root, "model/model.bin")
            .expect("downloaded"),
        model
    );

    let mut listing: Vec<String> = client
        .list_artifacts(root, Some("model"))
        .expect("listed")
        .into_iter()
        .map(|f| format!("{}{}", f.path, if f.is_dir { "/" } else { "" }))
        .collect();
    listing.sort();
    assert_eq!(listing, ["descriptor.json", "extra/", "model.bin"]);

    let out = dir.path().join("copy");
    let files = client
        .download_tree(&format!("{root}/model"), &out)
        .expect("tree downloaded");
    assert_eq!(
        files,
        ["descriptor.json", "extra/notes with space.txt", "model.bin"]
    );
    assert_eq!(std::fs::read(out.join("model.bin")).expect("read"), model);
    assert_eq!(
        std::fs::read(out.join("extra/notes with space.txt")).expect("read"),
        b"hi"
    );

    let missing = client
        .download_artifact(root, "model/nope.bin")
        .expect_err("missing artifact");
    assert_eq!(missing.status(), Some(404));
    assert_eq!(missing.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
    let text = missing.to_string();
    assert!(
        text.contains("GET /api/2.0/mlflow-artifacts/artifacts/"),
        "{text}"
    );
    assert!(text.contains("HTTP 404 RESOURCE_DOES_NOT_EXIST"), "{text}");

    let escape = client
        .upload_artifact(root, "../other-run/x", b"x")
        .expect_err("escape refused");
    assert!(
        matches!(escape, Error::InvalidArtifactPath { .. }),
        "{escape}"
    );
}

#[test]
fn versions_are_registered_aliased_tagged_and_resolved() {
    let client = client();
    let experiment = client
        .ensure_experiment(&unique("exp"))
        .expect("experiment");
    let model_name = unique("clf");
    let first = client
        .ensure_registered_model(&model_name, "test model")
        .expect("model created");
    assert_eq!(first.name, model_name);
    client
        .ensure_registered_model(&model_name, "test model")
        .expect("ensure is idempotent");

    let mut versions = Vec::new();
    for i in 0..2 {
        let run = client
            .create_run(&experiment.experiment_id, None, &[])
            .expect("run");
        let bytes = format!("model {i}").into_bytes();
        client
            .upload_artifact(&run.info.artifact_uri, "model/model.bin", &bytes)
            .expect("upload");
        let source = format!("{}/model", run.info.artifact_uri);
        let version = client
            .create_model_version(
                &model_name,
                &source,
                &run.info.run_id,
                &[Tag::new("data_date", i)],
            )
            .expect("version registered");
        assert_eq!(version.status, "READY");
        assert_eq!(version.run_id, run.info.run_id);
        assert_eq!(version.tag("data_date"), Some(i.to_string().as_str()));
        versions.push(version);
    }
    assert_eq!(versions[0].version, "1");
    assert_eq!(versions[1].version, "2");

    client
        .set_alias(&model_name, "production", "1")
        .expect("alias set");
    client
        .set_alias(&model_name, "challenger", "2")
        .expect("alias set");
    let production = client
        .get_model_version_by_alias(&model_name, "production")
        .expect("resolved");
    assert_eq!(production.version, "1");
    assert_eq!(production.aliases, ["production"]);

    // Moving the alias is how a challenger gets promoted.
    client
        .set_alias(&model_name, "production", "2")
        .expect("alias moved");
    let uri: ModelUri = format!("models:/{model_name}@production")
        .parse()
        .expect("uri");
    assert_eq!(
        client.resolve_model_uri(&uri).expect("resolved").version,
        "2"
    );
    let pinned: ModelUri = format!("models:/{model_name}/1").parse().expect("uri");
    let v1 = client.resolve_model_uri(&pinned).expect("resolved");
    assert_eq!(v1.version, "1");
    assert!(
        v1.aliases.is_empty(),
        "alias left version 1: {:?}",
        v1.aliases
    );

    client
        .set_model_version_tag(&model_name, "2", "decision", "promoted")
        .expect("tagged");
    let v2 = client
        .get_model_version(&model_name, "2")
        .expect("read back");
    assert_eq!(v2.tag("decision"), Some("promoted"));
    let mut aliases = v2.aliases.clone();
    aliases.sort();
    assert_eq!(aliases, ["challenger", "production"]);

    let model = client
        .get_registered_model(&model_name)
        .expect("read")
        .expect("exists");
    let mut by_alias: Vec<(String, String)> = model
        .aliases
        .into_iter()
        .map(|a| (a.alias, a.version))
        .collect();
    by_alias.sort();
    assert_eq!(
        by_alias,
        [
            ("challenger".into(), "2".into()),
            ("production".into(), "2".into())
        ]
    );

    // Download through the registry, cached per version.
    let cache = tempfile::tempdir().expect("temp dir");
    let fetched = client.fetch_model(&uri, cache.path()).expect("fetched");
    assert_eq!(fetched.version.version, "2");
    assert!(!fetched.from_cache);
    assert_eq!(
        std::fs::read(fetched.dir.join("model.bin")).expect("read"),
        b"model 1"
    );
    let again = client
        .fetch_model(&uri, cache.path())
        .expect("fetched again");
    assert!(again.from_cache);
    assert_eq!(again.dir, fetched.dir);
    let old = client
        .fetch_model(&pinned, cache.path())
        .expect("fetched v1");
    assert_eq!(
        std::fs::read(old.dir.join("model.bin")).expect("read"),
        b"model 0"
    );

    // Several fetches of the same new version at once, from one process (so one pid, as
    // every task container is pid 1): each gets a complete copy, none fails.
    let shared = tempfile::tempdir().expect("temp dir");
    let fetched: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| client.fetch_model(&uri, shared.path())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for one in fetched {
        let one = one.expect("a concurrent fetch");
        assert_eq!(
            std::fs::read(one.dir.join("model.bin")).expect("read"),
            b"model 1"
        );
    }
    let left: Vec<_> = std::fs::read_dir(shared.path().join(&model_name))
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["2"], "staging directories left behind: {left:?}");
}

#[test]
fn a_missing_alias_or_model_is_a_clear_error() {
    let client = client();
    let model_name = unique("clf");
    client
        .ensure_registered_model(&model_name, "")
        .expect("model created");

    let err = client
        .get_model_version_by_alias(&model_name, "production")
        .expect_err("no alias yet");
    assert!(matches!(err, Error::AliasNotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("registered model {model_name:?} has no alias \"production\"")
    );
    assert_eq!(
        client
            .find_model_version_by_alias(&model_name, "production")
            .expect("ok"),
        None
    );

    let err = client
        .get_model_version_by_alias("no-such-model-anywhere", "production")
        .expect_err("no model");
    assert!(matches!(err, Error::AliasNotFound { .. }), "{err:?}");
    assert_eq!(
        client
            .get_registered_model("no-such-model-anywhere")
            .expect("ok"),
        None
    );

    let err = client
        .get_model_version(&model_name, "7")
        .expect_err("no version");
    assert_eq!(err.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
    assert!(
        err.to_string()
            .starts_with("GET /api/2.0/mlflow/model-versions/get: MLflow answered HTTP 404"),
        "{err}"
    );

    let cache = tempfile::tempdir().expect("temp dir");
    let uri: ModelUri = format!("models:/{model_name}@production")
        .parse()
        .expect("uri");
    assert!(matches!(
        client.fetch_model(&uri, cache.path()),
        Err(Error::AliasNotFound { .. })
    ));
    assert_eq!(
        std::fs::read_dir(cache.path()).expect("list").count(),
        0,
        "nothing cached"
    );
}

#[test]
fn client_errors_are_not_retried() {
    let client = client();
    let started = std::time::Instant::now();
    let err = client.get_run("no-such-run").expect_err("unknown run");
    match &err {
        Error::Api {
            status,
            attempts,
            endpoint,
            ..
        } => {
            assert_eq!(*status, 404);
            assert_eq!(*attempts, 1);
            assert_eq!(endpoint, "/api/2.0/mlflow/runs/get");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
