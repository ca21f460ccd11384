"""The pipeline end to end on the real stack: Airflow schedules the real stage images.

Runs against the compose stack of the ``stack`` fixture (conftest.py) and drives it through
Airflow's REST API with the client of scripts/run_pipeline.py. Nothing is mocked: the
scheduler starts real containers through the Docker socket, the sensors really wait, and
the files checked are the ones the containers wrote into the stack's data directory.

Dates are chosen around "now" on purpose. Unpausing a DAG can let the scheduler start the
run of its latest tick (catchup is off; Airflow does it when that tick is recent): today for
the daily DAGs, the last Sunday for the weekly one. The test trains on the last Sunday before
today and predicts today, so such a scheduled run is one of the runs the test asks for (it
adopts it), and nothing else competes with them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import docker
import pytest
from conftest import REPO, Stack

sys.path.insert(0, str(REPO / "scripts"))
from pipeline_runs import AUTO_MODE_SKIPS, version_tags
from run_pipeline import DAG_IDS, AirflowClient

RUN_TIMEOUT = 900

TODAY = datetime.now(UTC).date()
# The last Sunday strictly before today: the training date.
TRAIN_DAY = TODAY - timedelta(days=(TODAY.weekday() + 1) % 7 or 7)
DATES = [TRAIN_DAY - timedelta(days=n) for n in range(7, -1, -1)]
PREDICT_DAY = TODAY

TASKS = {
    "generate_data": {"generate"},
    "train_model": {
        "wait_for_data",
        "wait_for_target",
        "preprocess",
        "split",
        "train",
        "validate",
        "promote",
        "needs_review",
        "approval",
        "record_review",
    },
    "predict": {"wait_for_data", "predict"},
}


def rows(path: Path) -> int:
    """Data rows of a CSV file (without its header)."""
    with path.open(newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def log_step(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


@pytest.fixture(scope="module")
def airflow(stack: Stack) -> AirflowClient:
    client = AirflowClient(stack.airflow_url, stack.username, stack.password)
    client.wait_for_dags(DAG_IDS)
    return client


def first_container_start(run_id: str, since: float) -> float | None:
    """When the first task container of a DAG run started, from the daemon's event log."""
    events = docker.from_env().events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        filters={
            "type": "container",
            "event": "start",
            "label": [f"ml.pipeline.run_id={run_id}"],
        },
        decode=True,
    )
    starts = [event["timeNano"] / 1e9 for event in events]
    return min(starts) if starts else None


def ask(
    airflow: AirflowClient, wanted: list[tuple[str, date]]
) -> dict[tuple[str, date], dict]:
    """Triggers (or adopts) one run per (dag_id, day); remembers when it was asked for."""
    asked = {}
    for dag_id, day in wanted:
        asked_at = time.time()
        run = airflow.ensure_run(dag_id, day)
        asked[(dag_id, day)] = {"run_id": run["dag_run_id"], "asked_at": asked_at}
    return asked


def wait_all(airflow: AirflowClient, asked: dict[tuple[str, date], dict]) -> dict:
    """Waits until every asked-for run has finished; (dag_id, day) -> final run."""

    def progress(dag_id: str, run_id: str, state: str, run: dict) -> None:
        log_step(f"{dag_id} {run['logical_date'][:10]} {state}")

    keys = {key: (key[0], value["run_id"]) for key, value in asked.items()}
    final = airflow.wait_for_runs(keys.values(), RUN_TIMEOUT, on_change=progress)
    return {key: {**final[run_key], **asked[key]} for key, run_key in keys.items()}


def run_all(airflow: AirflowClient, wanted: list[tuple[str, date]]) -> dict:
    return wait_all(airflow, ask(airflow, wanted))


REGISTERED = "heart-disease-classifier"
PRODUCTION_URI = f"models:/{REGISTERED}@production"
ALIAS = {"name": REGISTERED, "alias": "production"}


def train_week(airflow: AirflowClient, day: date) -> dict:
    """Data for ``day`` and a successful train_model run for it; the promotion decision."""
    runs = run_all(airflow, [("generate_data", day)])
    runs.update(run_all(airflow, [("train_model", day)]))
    for (dag_id, _), run in runs.items():
        assert run["state"] == "success", f"{dag_id} {day}: {run['state']}"
    promotion = airflow.task_log(
        "train_model", runs[("train_model", day)]["dag_run_id"], "promote", 1
    )
    decision = [line for line in promotion.splitlines() if "outcome" in line]
    log_step(f"train_model {day}: {decision[-1].strip() if decision else '?'}")
    return runs[("train_model", day)]


def assert_all_tasks_succeeded(airflow: AirflowClient, dag_id: str, run: dict) -> None:
    instances = airflow.task_instances(dag_id, run["dag_run_id"])
    states = {ti["task_id"]: ti["state"] for ti in instances}
    assert set(states) == TASKS[dag_id], states
    expected = {
        task: "skipped" if task in AUTO_MODE_SKIPS else "success"
        for task in TASKS[dag_id]
    }
    assert states == expected, f"{dag_id} {run['dag_run_id']}: {states}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_provenance(stack: Stack, day: date, version: dict, model_dir: Path) -> dict:
    """predictions/<day>/provenance.json names the registry version that scored the day
    (checked against MLflow) and the checksums and row counts of the model, the input and
    the predictions; predictions.csv carries data.csv's ids, in order."""
    raw = stack.data_dir / "raw" / day.isoformat()
    out = stack.data_dir / "predictions" / day.isoformat()
    provenance = json.loads((out / "provenance.json").read_text())
    model = provenance["model"]
    assert model["uri"] == PRODUCTION_URI, model
    assert model["registered_model"] == REGISTERED
    assert model["alias"] == "production"
    assert model["version"] == version["version"], (model, version)
    assert model["run_id"] == version["run_id"], (model, version)
    assert model["sha256"] == sha256(model_dir / model["file"]), model
    assert provenance["input"]["sha256"] == sha256(raw / "data.csv")
    assert provenance["input"]["rows"] == rows(raw / "data.csv")
    assert provenance["predictions"]["sha256"] == sha256(out / "predictions.csv")
    assert provenance["predictions"]["rows"] == rows(out / "predictions.csv")
    assert provenance["keyed_by"] == "id"
    with (raw / "data.csv").open() as f:
        ids = [row["id"] for row in csv.DictReader(f)]
    with (out / "predictions.csv").open() as f:
        assert [row["id"] for row in csv.DictReader(f)] == ids
    return provenance


def test_pipeline_end_to_end(stack: Stack, airflow: AirflowClient) -> None:
    started = time.monotonic()
    data = stack.data_dir
    log_step(
        f"generate_data {DATES[0]}..{DATES[-1]} and {PREDICT_DAY}, train_model {TRAIN_DAY}"
    )

    # 1. Eight days of data and the day to predict; the training run starts with them and
    #    its sensors wait for the Sunday's files.
    for dag_id in ("generate_data", "train_model"):
        airflow.set_paused(dag_id, False)
    generated = ask(airflow, [("generate_data", d) for d in [*DATES, PREDICT_DAY]])
    trained = ask(airflow, [("train_model", TRAIN_DAY)])
    runs = wait_all(airflow, generated)
    for (dag_id, day), run in runs.items():
        assert run["state"] == "success", f"{dag_id} {day}: {run['state']}"
    runs.update(wait_all(airflow, trained))
    for (dag_id, day), run in runs.items():
        assert run["state"] == "success", f"{dag_id} {day}: {run['state']}"
        assert run["logical_date"].startswith(day.isoformat())
        assert_all_tasks_succeeded(airflow, dag_id, run)

    for day in [*DATES, PREDICT_DAY]:
        raw = data / "raw" / day.isoformat()
        assert rows(raw / "data.csv") > 0
        assert rows(raw / "target.csv") == rows(raw / "data.csv"), day

    processed = data / "processed" / TRAIN_DAY.isoformat()
    n_train_data = rows(processed / "train_data.csv")
    assert 0 < n_train_data <= rows(data / "raw" / TRAIN_DAY.isoformat() / "data.csv")
    n_train, n_val = rows(processed / "train.csv"), rows(processed / "val.csv")
    assert n_train + n_val == n_train_data
    assert abs(n_val - 0.2 * n_train_data) <= 1, (n_train, n_val)

    model_dir = data / "models" / TRAIN_DAY.isoformat()
    assert (model_dir / "model.bin").stat().st_size > 0
    json.loads((model_dir / "params.json").read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics, "metrics.json is empty"

    # The model went to MLflow, and as the first version it is production.
    record = json.loads((model_dir / "mlflow_run.json").read_text())
    promotion = json.loads((model_dir / "promotion.json").read_text())
    assert promotion["outcome"] == "promoted", promotion
    assert promotion["run_id"] == record["run_id"]
    production = stack.mlflow_rest("GET", "registered-models/alias", **ALIAS)[
        "model_version"
    ]
    assert production["run_id"] == record["run_id"]

    # 2. predict follows the registry's production alias (the Variable's default).
    assert airflow.get_variable("model_path") == PRODUCTION_URI
    airflow.set_paused("predict", False)
    [predicted] = run_all(airflow, [("predict", PREDICT_DAY)]).values()
    assert predicted["state"] == "success"
    assert_all_tasks_succeeded(airflow, "predict", predicted)
    predictions = data / "predictions" / PREDICT_DAY.isoformat() / "predictions.csv"
    assert rows(predictions) == rows(
        data / "raw" / PREDICT_DAY.isoformat() / "data.csv"
    )
    log = airflow.task_log("predict", predicted["dag_run_id"], "predict", 1)
    assert (
        f"{PRODUCTION_URI} is {REGISTERED} version {production['version']} "
        f"(run {record['run_id']})" in log
    ), log[-2000:]
    check_provenance(stack, PREDICT_DAY, production, model_dir)

    # Orchestration latency: trigger -> first task container running, per generate_data run.
    latencies = []
    for (dag_id, _day), run in runs.items():
        if dag_id == "generate_data" and run["run_type"] == "manual":
            start = first_container_start(run["dag_run_id"], run["asked_at"])
            if start is not None:
                latencies.append(start - run["asked_at"])
    # A figure to print, not a pass/fail criterion: under load the daemon's event window can
    # miss the starts, which says nothing about the pipeline's correctness.
    if latencies:
        latencies.sort()
        log_step(
            f"trigger -> first container start over {len(latencies)} generate_data runs: "
            f"min {latencies[0]:.1f} s, median {latencies[len(latencies) // 2]:.1f} s, "
            f"max {latencies[-1]:.1f} s (runs queue behind max_active_runs=4)"
        )
    else:
        log_step("trigger -> first container start: no container start events found")
    log_step(f"pipeline part took {time.monotonic() - started:.0f} s")


def test_predict_account_reads_the_registry_but_cannot_change_it(stack: Stack) -> None:
    """predict signs in as MLflow's `predict` account (mlflow-init): it resolved the
    production alias above, and it gets 403 for moving an alias, deleting one and
    creating a version of the pipeline's registered model."""
    predict = stack.mlflow_api("predict")
    api = f"{stack.mlflow_url}/api/2.0/mlflow"
    production = predict.get(f"{api}/registered-models/alias", params=ALIAS, timeout=30)
    assert production.status_code == 200, production.text
    version = production.json()["model_version"]
    changes = {
        "move the alias": (
            "post",
            "registered-models/alias",
            {**ALIAS, "version": "1"},
        ),
        "delete the alias": ("delete", "registered-models/alias", ALIAS),
        "create a version": (
            "post",
            "model-versions/create",
            {
                "name": REGISTERED,
                "source": version["source"],
                "run_id": version["run_id"],
            },
        ),
        "tag a version": (
            "post",
            "model-versions/set-tag",
            {
                "name": REGISTERED,
                "version": version["version"],
                "key": "k",
                "value": "v",
            },
        ),
    }
    for what, (method, endpoint, body) in changes.items():
        answer = predict.request(method, f"{api}/{endpoint}", json=body, timeout=30)
        assert answer.status_code == 403, (what, answer.status_code, answer.text)
    still = stack.mlflow_rest("GET", "registered-models/alias", **ALIAS)[
        "model_version"
    ]
    assert still["version"] == version["version"]


WEAK_TRAIN_ARGS = (
    "--model random-forest --n-trees 1 --max-depth 1 --feature-fraction 0.1"
)


def test_champion_challenger_on_the_stack(stack: Stack, airflow: AirflowClient) -> None:
    """Two more weekly trainings after the first (production) one, forcing both outcomes:
    a deliberately weak challenger (one depth-1 tree, set through the Variable train_args)
    is rejected and production stays; after a person rolls production back to that weak
    version, a normal model beats it and takes production. predict then scores with the
    new production version, and MLflow holds every run with its params, metrics and model."""
    weak_day, good_day = TRAIN_DAY - timedelta(days=7), TRAIN_DAY - timedelta(days=14)
    first = stack.mlflow_rest("GET", "registered-models/alias", **ALIAS)[
        "model_version"
    ]
    airflow.set_paused("train_model", False)

    # A weak challenger is registered as `challenger` and rejected.
    airflow.set_variable("train_args", WEAK_TRAIN_ARGS)
    try:
        train_week(airflow, weak_day)
    finally:
        airflow.set_variable("train_args", "")
    weak = json.loads(
        (
            stack.data_dir / "models" / weak_day.isoformat() / "promotion.json"
        ).read_text()
    )
    assert weak["outcome"] == "rejected", weak
    assert weak["production"]["version"] == first["version"]
    assert weak["challenger_roc_auc"] < weak["production"]["metrics"]["roc_auc"], weak
    tags = version_tags(stack, weak["version"])
    assert tags["promotion.outcome"] == "rejected"
    assert float(tags["promotion.challenger_roc_auc"]) < float(
        tags["promotion.production_roc_auc"]
    )
    alias = stack.mlflow_rest("GET", "registered-models/alias", **ALIAS)[
        "model_version"
    ]
    assert alias["version"] == first["version"], (
        "a rejected challenger moved production"
    )
    challenger = stack.mlflow_rest(
        "GET",
        "registered-models/alias",
        name=REGISTERED,
        alias="challenger",
    )["model_version"]
    assert challenger["version"] == weak["version"]

    # A person rolls production back to the weak version; the next normal model wins.
    stack.mlflow_rest(
        "POST",
        "registered-models/alias",
        name=REGISTERED,
        alias="production",
        version=weak["version"],
    )
    train_week(airflow, good_day)
    good = json.loads(
        (
            stack.data_dir / "models" / good_day.isoformat() / "promotion.json"
        ).read_text()
    )
    assert good["outcome"] == "promoted", good
    assert good["production"]["version"] == weak["version"]
    assert good["challenger_roc_auc"] > good["production"]["metrics"]["roc_auc"], good
    alias = stack.mlflow_rest("GET", "registered-models/alias", **ALIAS)[
        "model_version"
    ]
    assert alias["version"] == good["version"]
    assert (
        version_tags(stack, weak["version"])["promotion.replaced_by"] == good["version"]
    )

    # predict scores with the new production version.
    day = DATES[1]
    [predicted] = run_all(airflow, [("predict", day)]).values()
    assert predicted["state"] == "success"
    log = airflow.task_log("predict", predicted["dag_run_id"], "predict", 1)
    assert f"{PRODUCTION_URI} is {REGISTERED} version {good['version']} " in log, log[
        -2000:
    ]
    good_version = stack.mlflow_rest(
        "GET", "model-versions/get", name=REGISTERED, version=good["version"]
    )["model_version"]
    check_provenance(
        stack, day, good_version, stack.data_dir / "models" / good_day.isoformat()
    )

    # MLflow shows every training run, finished, with params, metrics and the model files.
    experiment = stack.mlflow_rest(
        "GET", "experiments/get-by-name", experiment_name="heart-disease"
    )["experiment"]
    # ml-train created it as a model-training experiment: the UI opens on runs and metrics.
    tags = {t["key"]: t["value"] for t in experiment.get("tags", [])}
    assert tags.get("mlflow.experimentKind") == "custom_model_development", tags
    found = stack.mlflow_rest(
        "POST",
        "runs/search",
        experiment_ids=[experiment["experiment_id"]],
        max_results=100,
    )["runs"]
    by_name = {run["info"]["run_name"]: run for run in found}
    for day, kind in [
        (TRAIN_DAY, "logistic-regression"),
        (weak_day, "random-forest"),
        (good_day, "logistic-regression"),
    ]:
        run = by_name[f"train-{day.isoformat()}"]
        assert run["info"]["status"] == "FINISHED", run["info"]
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert params["model"] == kind
        assert params["data_date"] == day.isoformat()
        assert {"roc_auc", "log_loss", "accuracy", "train_rows"} <= set(metrics)
        files = stack.mlflow_rest(
            "GET",
            "artifacts/list",
            run_id=run["info"]["run_id"],
            path="model",
        )["files"]
        assert {"model/model.bin", "model/MLmodel", "model/params.json"} <= {
            f["path"] for f in files
        }
    # The UI itself answers (the runs above are what its pages show).
    assert stack.mlflow_api().get(stack.mlflow_url, timeout=30).status_code == 200


def test_predict_without_a_model_fails_clearly(
    stack: Stack, airflow: AirflowClient
) -> None:
    """Pointing model_path at a directory with no model fails the task with the stage's
    error in its log, and no predictions are written."""
    day = DATES[0]  # its data exists (previous test); it has no predictions yet
    empty = stack.data_dir / "models" / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    output = stack.data_dir / "predictions" / day.isoformat()
    assert not output.exists()

    airflow.set_variable("model_path", "/data/models/empty")
    airflow.set_paused("predict", False)
    started = time.monotonic()
    [run] = run_all(airflow, [("predict", day)]).values()
    log_step(
        f"predict with no model: {run['state']} after {time.monotonic() - started:.0f} s"
    )

    assert run["state"] == "failed"
    states = {
        ti["task_id"]: ti for ti in airflow.task_instances("predict", run["dag_run_id"])
    }
    assert states["wait_for_data"]["state"] == "success"
    predict = states["predict"]
    assert predict["state"] == "failed"
    log = airflow.task_log(
        "predict", run["dag_run_id"], "predict", predict["try_number"]
    )
    print(f"--- end of the failed predict log (try {predict['try_number']}) ---")
    print("\n".join(log.splitlines()[-12:]))
    assert "/data/models/empty" in log
    assert "error" in log.lower()
    assert not (output / "predictions.csv").exists()
    assert not output.exists() or not any(output.iterdir()), list(output.iterdir())


def test_hardened_operator_on_the_real_daemon(tmp_path: Path) -> None:
    """The DAGs' operator against the real Docker daemon: the container really runs
    read-only, without capabilities or network, non-root, with no-new-privileges and
    limits, and can write only to /data."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="ml-e2e-airflow-"))
    sys.path.insert(0, str(REPO / "airflow_ml_dags" / "dags"))
    from common import HardenedDockerOperator

    image = "ml-debian-base:bookworm"  # has a shell; the stage images have only their binary
    client = docker.from_env()
    client.images.get(image)  # built by scripts/images.sh
    tmp_path.chmod(0o777)
    probe = (
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; echo uid=$(id -u);"
        " echo net=$(ls /sys/class/net | tr '\\n' ' ');"
        " touch /probe 2>/dev/null && echo rootfs=writable || echo rootfs=read-only;"
        " touch /data/probe && echo data=writable"
    )
    operator = HardenedDockerOperator(
        task_id="probe",
        image=image,
        entrypoint=["/bin/sh", "-c"],
        command=[probe],
        mounts=[docker.types.Mount(target="/data", source=str(tmp_path), type="bind")],
        mount_tmp_dir=False,
        auto_remove="never",
        user="10001:10001",
        mem_limit="256m",
        network_mode="none",
        xcom_all=True,
    )
    context = {"run_id": "e2e-probe", "ti": SimpleNamespace(try_number=1)}
    try:
        lines = operator.execute(context)
        host_config = client.api.inspect_container(operator.container["Id"])[
            "HostConfig"
        ]
    finally:
        if operator.container:
            client.api.remove_container(operator.container["Id"], force=True)

    output = "\n".join(lines)
    print(output)
    assert "CapEff:\t0000000000000000" in output
    assert "NoNewPrivs:\t1" in output
    assert "uid=10001" in output
    assert "net=lo" in output
    assert "rootfs=read-only" in output
    assert "data=writable" in output
    assert (tmp_path / "probe").exists()
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert host_config["SecurityOpt"] == ["no-new-privileges"]
    assert host_config["Memory"] == 256 * 1024 * 1024
    assert host_config["NanoCpus"] == 10**9
    assert host_config["PidsLimit"] == 256
    assert host_config["NetworkMode"] == "none"
