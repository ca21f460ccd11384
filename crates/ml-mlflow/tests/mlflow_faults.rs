//! The client's retries against a real MLflow server with a [`FaultProxy`] in between: lost
//! answers, dropped connections, 503s and stalls. What must hold: a create that is retried
//! never makes a second object, and a server that stays away ends in a transient error.
//!
//! Like `mlflow_server.rs`, this target is `test = false`; run it with
//!   scripts/mlflow-test-server.sh cargo test --release -p ml-mlflow --test mlflow_faults
//! Every check of what exists goes to the server directly, not through the proxy.

use std::time::{Duration, Instant};

use ml_mlflow::testing::{server_uri, unique_name as unique, Fault, FaultProxy};
use ml_mlflow::{Client, Error, RetryPolicy, Run, Tag, CLIENT_REQUEST_ID_TAG};

fn quick_retry(budget_ms: u64) -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        budget: Duration::from_millis(budget_ms),
        request_timeout: Duration::from_secs(5),
    }
}

/// The server, directly.
fn direct() -> Client {
    Client::new(&server_uri()).expect("MLFLOW_TEST_URI is a valid URL")
}

/// A client that talks to the server through `proxy`, with the credentials (if any) of
/// `MLFLOW_TEST_URI`.
fn via(proxy: &FaultProxy, retry: RetryPolicy) -> Client {
    let uri = server_uri();
    let proxied = match uri
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
    {
        Some((userinfo, _)) => proxy.url().replacen("://", &format!("://{userinfo}@"), 1),
        None => proxy.url(),
    };
    Client::new(&proxied)
        .expect("the proxy URL is valid")
        .with_retry(retry)
}

/// The runs called `name` in `experiment_id`, read from the server directly.
fn runs_named(experiment_id: &str, name: &str) -> Vec<Run> {
    direct()
        .search_runs(
            experiment_id,
            &format!("tags.`mlflow.runName` = '{name}'"),
            100,
        )
        .expect("runs searched")
}

#[test]
fn a_lost_answer_to_create_run_returns_the_run_it_made() {
    let experiment = direct()
        .ensure_experiment(&unique("exp"))
        .expect("experiment");
    let proxy = FaultProxy::start(&server_uri());
    proxy.inject_for("POST", "/runs/create", Fault::DropResponse, 1);
    let client = via(&proxy, quick_retry(10_000));

    let name = unique("train");
    let run = client
        .create_run(
            &experiment.experiment_id,
            Some(&name),
            &[Tag::new("stage", "train")],
        )
        .expect("the run is found after its answer was lost");

    let stored = runs_named(&experiment.experiment_id, &name);
    assert_eq!(stored.len(), 1, "exactly one run: {stored:?}");
    assert_eq!(stored[0].info.run_id, run.info.run_id);
    assert_eq!(run.info.run_name, name);
    assert_eq!(run.tag("stage"), Some("train"));
    assert!(run
        .tag(CLIENT_REQUEST_ID_TAG)
        .is_some_and(|id| id.len() == 32));
    assert_eq!(
        proxy.hits("/runs/create"),
        1,
        "found by its tag, not created again: {:?}",
        proxy.exchanges()
    );
    assert_eq!(proxy.forwarded("/runs/search"), 1);
}

#[test]
fn a_dropped_or_refused_create_run_is_sent_again_and_makes_one_run() {
    let experiment = direct()
        .ensure_experiment(&unique("exp"))
        .expect("experiment");
    for fault in [Fault::Drop, Fault::Status(503)] {
        let proxy = FaultProxy::start(&server_uri());
        proxy.inject("/runs/create", fault, 1);
        let client = via(&proxy, quick_retry(10_000));
        let name = unique("train");
        let run = client
            .create_run(&experiment.experiment_id, Some(&name), &[])
            .expect("the second attempt creates the run");

        let stored = runs_named(&experiment.experiment_id, &name);
        assert_eq!(stored.len(), 1, "{fault:?}: exactly one run: {stored:?}");
        assert_eq!(stored[0].info.run_id, run.info.run_id);
        // The look-up found nothing, so the create went out again.
        assert_eq!(
            proxy.hits("/runs/create"),
            2,
            "{fault:?}: {:?}",
            proxy.exchanges()
        );
        assert_eq!(proxy.forwarded("/runs/create"), 1);
        assert_eq!(proxy.hits("/runs/search"), 1);
    }
}

#[test]
fn a_create_is_not_sent_again_before_a_look_up_succeeded() {
    let experiment = direct()
        .ensure_experiment(&unique("exp"))
        .expect("experiment");
    let proxy = FaultProxy::start(&server_uri());
    proxy.inject("/runs/create", Fault::DropResponse, 1);
    // The first look-ups fail too: not knowing whether the run exists is no reason to
    // start another.
    proxy.inject("/runs/search", Fault::Status(503), 2);
    let client = via(&proxy, quick_retry(10_000));
    let name = unique("train");
    let run = client
        .create_run(&experiment.experiment_id, Some(&name), &[])
        .expect("found by the third look-up");

    let stored = runs_named(&experiment.experiment_id, &name);
    assert_eq!(stored.len(), 1, "exactly one run: {stored:?}");
    assert_eq!(stored[0].info.run_id, run.info.run_id);
    assert_eq!(proxy.hits("/runs/create"), 1, "{:?}", proxy.exchanges());
    assert_eq!(proxy.hits("/runs/search"), 3);
}

#[test]
fn a_lost_answer_to_create_model_version_returns_the_version_it_made() {
    let server = direct();
    let experiment = server
        .ensure_experiment(&unique("exp"))
        .expect("experiment");
    let run = server
        .create_run(&experiment.experiment_id, None, &[])
        .expect("run");
    server
        .upload_artifact(&run.info.artifact_uri, "model/model.bin", b"model")
        .expect("upload");
    let model = unique("clf");
    server
        .ensure_registered_model(&model, "")
        .expect("registered model");

    for (fault, creates) in [(Fault::DropResponse, 1), (Fault::Drop, 2)] {
        let proxy = FaultProxy::start(&server_uri());
        proxy.inject("/model-versions/create", fault, 1);
        let client = via(&proxy, quick_retry(10_000));
        let version = client
            .create_model_version(
                &model,
                &format!("{}/model", run.info.artifact_uri),
                &run.info.run_id,
                &[Tag::new("data_date", "2026-01-05")],
            )
            .expect("version registered");
        assert_eq!(version.status, "READY");
        assert_eq!(version.run_id, run.info.run_id);
        assert_eq!(version.tag("data_date"), Some("2026-01-05"));
        assert_eq!(
            proxy.hits("/model-versions/create"),
            creates,
            "{fault:?}: {:?}",
            proxy.exchanges()
        );
        assert_eq!(proxy.forwarded("/model-versions/create"), 1, "{fault:?}");
    }

    // One version per call, two calls: nothing doubled.
    let versions = server
        .search_model_versions(&format!("name='{model}'"), 100)
        .expect("versions searched");
    let mut numbers: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    numbers.sort();
    assert_eq!(numbers, ["1", "2"], "{versions:?}");
    let for_run = server
        .search_model_versions(&format!("run_id='{}'", run.info.run_id), 100)
        .expect("versions searched");
    assert_eq!(for_run.len(), 2, "{for_run:?}");
}

#[test]
fn named_creates_whose_answer_was_lost_return_what_they_made() {
    let server = direct();
    let proxy = FaultProxy::start(&server_uri());
    proxy.inject("/experiments/create", Fault::DropResponse, 1);
    proxy.inject("/registered-models/create", Fault::DropResponse, 1);
    let client = via(&proxy, quick_retry(10_000));

    // The second attempt is answered RESOURCE_ALREADY_EXISTS for what the first one made.
    let name = unique("exp");
    let id = client
        .create_experiment(&name)
        .expect("the experiment the first attempt made");
    let stored = server
        .get_experiment_by_name(&name)
        .expect("read")
        .expect("exists");
    assert_eq!(stored.experiment_id, id);
    assert_eq!(proxy.hits("/experiments/create"), 2);

    let model = unique("clf");
    let created = client
        .create_registered_model(&model, "lost answer")
        .expect("the model the first attempt made");
    assert_eq!(created.name, model);
    assert_eq!(proxy.hits("/registered-models/create"), 2);

    // Without a lost answer, a taken name is still an error for a plain create...
    let err = client
        .create_experiment(&name)
        .expect_err("the name is taken");
    assert_eq!(err.error_code(), Some("RESOURCE_ALREADY_EXISTS"));
    // ...and ensure_* make nothing twice either.
    proxy.inject("/experiments/create", Fault::DropResponse, 1);
    let fresh = unique("exp");
    let ensured = client.ensure_experiment(&fresh).expect("ensured");
    assert_eq!(
        server
            .get_experiment_by_name(&fresh)
            .expect("read")
            .expect("exists")
            .experiment_id,
        ensured.experiment_id
    );
}

#[test]
fn a_get_answered_503_twice_is_retried_until_it_succeeds() {
    let name = unique("exp");
    let experiment = direct().ensure_experiment(&name).expect("experiment");
    let proxy = FaultProxy::start(&server_uri());
    proxy.inject_for("GET", "/experiments/get-by-name", Fault::Status(503), 2);
    let client = via(&proxy, quick_retry(10_000));
    let found = client
        .get_experiment_by_name(&name)
        .expect("third attempt succeeds")
        .expect("found");
    assert_eq!(found.experiment_id, experiment.experiment_id);
    assert_eq!(proxy.hits("/experiments/get-by-name"), 3);
    assert_eq!(proxy.faulted("/experiments/get-by-name"), 2);
}

#[test]
fn a_stalled_server_ends_in_a_transient_unreachable_error_within_the_budget() {
    let experiment = direct()
        .ensure_experiment(&unique("exp"))
        .expect("experiment");
    let run = direct()
        .create_run(&experiment.experiment_id, None, &[])
        .expect("run");
    let proxy = FaultProxy::start(&server_uri());
    proxy.inject("/runs/get", Fault::Stall(Duration::from_secs(30)), 100);
    let client = via(
        &proxy,
        RetryPolicy {
            request_timeout: Duration::from_millis(300),
            ..quick_retry(1_000)
        },
    );
    let started = Instant::now();
    let err = client
        .get_run(&run.info.run_id)
        .expect_err("never answered");
    let elapsed = started.elapsed();
    match &err {
        Error::Unreachable { attempts, .. } => assert!(*attempts >= 2, "retried: {attempts}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(err.is_transient(), "{err}");
    assert!(
        elapsed < Duration::from_secs(3),
        "bounded by the budget: {elapsed:?}"
    );
    assert!(
        err.to_string()
            .starts_with("GET /api/2.0/mlflow/runs/get: could not talk to MLflow at "),
        "{err}"
    );
    assert_eq!(proxy.forwarded("/runs/get"), 0);

    // Dropping the proxy ends the stalled connections at once.
    let started = Instant::now();
    drop(proxy);
    assert!(started.elapsed() < Duration::from_secs(2));
}
