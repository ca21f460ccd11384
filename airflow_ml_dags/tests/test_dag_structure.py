"""DAG structure and policy: tasks, edges, and how every task runs."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.providers.standard.operators.python import (
    PythonOperator,
    ShortCircuitOperator,
)
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import BaseSensorOperator
from common import STAGES, HardenedDockerOperator
from ml_dag_testing import CONTROL_TASKS, STACK_ENV, STAGE_TASKS
from monitoring import alert_on_verdict, needs_retraining, pick_day
from rollout import ReviewRequest, awaits_review

EXPECTED_EDGES = {
    "generate_data": {"generate": set()},
    "train_model": {
        "wait_for_data": {"preprocess"},
        "wait_for_target": {"preprocess"},
        "preprocess": {"split"},
        "split": {"train"},
        "train": {"validate"},
        "validate": {"promote"},
        "promote": {"needs_review"},
        "needs_review": {"approval"},
        "approval": {"record_review"},
        "record_review": set(),
    },
    "predict": {"wait_for_data": {"predict"}, "predict": set()},
    "set_production": {"set_production": set()},
    "monitor_model": {
        "pick_day": {"wait_for_predictions", "wait_for_labels"},
        "wait_for_predictions": {"monitor"},
        "wait_for_labels": {"monitor"},
        "monitor": {"alert", "needs_retraining"},
        "alert": set(),
        "needs_retraining": {"retrain"},
        "retrain": set(),
    },
}
EXPECTED_SCHEDULES = {
    "generate_data": "@daily",
    "train_model": "@weekly",
    "predict": "@daily",
    # Only a person (or the REST API) triggers it.
    "set_production": None,
    "monitor_model": "@daily",
}
# Stages that talk to MLflow get the task network; every other container has no network.
NETWORKED_STAGES = {
    "train",
    "validate",
    "predict",
    "promote",
    "review",
    "set-production",
    "monitor",
}
# The image of a stage that is a subcommand of another stage's binary (ml-promote review,
# ml-promote set-production); every other stage has an image of its own, ml-<stage>.
STAGE_IMAGES = {"review": "promote", "set-production": "promote"}
# Tasks that must not retry: a second try of the approval would open a second approval page
# (train_model.py says so where it sets retries=0); a failure there fails for good.
NO_RETRY_TASKS = {("train_model", "approval")}


def all_tasks(dags):
    return [task for dag in dags.values() for task in dag.tasks]


def docker_tasks(dags):
    """Every task that does work: all but the sensors and the CONTROL_TASKS, by id."""
    return [
        t
        for t in all_tasks(dags)
        if not isinstance(t, BaseSensorOperator)
        and (t.dag_id, t.task_id) not in CONTROL_TASKS
    ]


def stage_of(task) -> str:
    [stage] = [
        s for s, key in STAGE_TASKS.items() if key == (task.dag_id, task.task_id)
    ]
    return stage


def sensors(dags):
    return [t for t in all_tasks(dags) if isinstance(t, BaseSensorOperator)]


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_EDGES))
def test_tasks_and_edges(dags, dag_id):
    dag = dags[dag_id]
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == EXPECTED_EDGES[
        dag_id
    ]


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_SCHEDULES))
def test_schedule(dags, dag_id):
    assert dags[dag_id].schedule == EXPECTED_SCHEDULES[dag_id]


def test_dag_policy(dags):
    for dag in dags.values():
        assert dag.start_date.tzinfo is not None
        assert dag.start_date.utcoffset() == timedelta(0), dag.dag_id
        assert dag.start_date.tzinfo in (UTC,) or str(dag.start_date.tzinfo) == "UTC"
        # catchup is a decision, stated in the DAG's documentation.
        assert dag.catchup is False, dag.dag_id
        assert "catchup" in dag.doc_md, dag.dag_id
        assert dag.doc_md.strip().startswith(f"### {dag.dag_id}"), dag.dag_id
        assert 1 <= dag.max_active_runs <= 4, dag.dag_id
        assert dag.tags and "ml" in dag.tags, dag.dag_id
        assert dag.default_args["owner"] not in ("", "airflow"), dag.dag_id


def test_task_policy(dags):
    for task in all_tasks(dags):
        where = f"{task.dag_id}.{task.task_id}"
        assert task.owner == "ml-platform", where
        if (task.dag_id, task.task_id) in NO_RETRY_TASKS:
            assert task.retries == 0, where
        else:
            assert task.retries >= 1, where
        assert task.retry_delay >= timedelta(seconds=10), where
    assert NO_RETRY_TASKS <= {(t.dag_id, t.task_id) for t in all_tasks(dags)}


def test_sensors_wait_without_holding_a_worker(dags):
    assert {f"{t.dag_id}.{t.task_id}" for t in sensors(dags)} == {
        "train_model.wait_for_data",
        "train_model.wait_for_target",
        "predict.wait_for_data",
        "monitor_model.wait_for_predictions",
        "monitor_model.wait_for_labels",
    }
    for sensor in sensors(dags):
        where = f"{sensor.dag_id}.{sensor.task_id}"
        assert isinstance(sensor, FileSensor), where
        assert sensor.fs_conn_id == "fs_data", where
        assert sensor.deferrable or sensor.mode == "reschedule", where
        assert 10 <= sensor.poke_interval <= 300, where
        # BaseSensorOperator's default is seven days; ours is bounded by one day.
        assert 0 < sensor.timeout <= timedelta(days=1).total_seconds(), where


def test_every_task_that_does_work_is_the_hardened_docker_operator(dags):
    """Apart from the sensors, only the control tasks (the two in front of record_review,
    and monitor_model's four around its stage) run anything outside a container: each stage
    is one HardenedDockerOperator."""
    assert set(STAGE_TASKS) == set(STAGES)
    tasks = docker_tasks(dags)
    assert {(t.dag_id, t.task_id) for t in tasks} == set(STAGE_TASKS.values())
    for task in tasks:
        assert isinstance(task, HardenedDockerOperator), task.task_id
        assert isinstance(task, DockerOperator), task.task_id


def test_the_control_tasks_are_the_review_gate_and_the_monitors_reactions(dags):
    control = {
        (t.dag_id, t.task_id): t
        for t in all_tasks(dags)
        if (t.dag_id, t.task_id) in CONTROL_TASKS
    }
    assert set(control) == CONTROL_TASKS
    needs_review = control["train_model", "needs_review"]
    assert type(needs_review) is ShortCircuitOperator
    assert needs_review.python_callable is awaits_review
    # The callable gets the run's ds (by its parameter name) and nothing else.
    assert needs_review.determine_kwargs({"ds": "2026-01-04", "run_id": "r"}) == {
        "ds": "2026-01-04"
    }
    approval = control["train_model", "approval"]
    assert type(approval) is ReviewRequest
    assert isinstance(approval, HITLOperator)
    assert approval.options == ["Approve", "Reject"]
    # No answer in time is a rejection, never an approval.
    assert approval.defaults == ["Reject"]
    assert approval.multiple is False
    assert set(approval.params) == {"comment"}

    # monitor_model: plain Python around its stage, and the trigger of train_model.
    day = control["monitor_model", "pick_day"]
    assert type(day) is PythonOperator
    assert day.python_callable is pick_day
    alert = control["monitor_model", "alert"]
    assert type(alert) is PythonOperator
    assert alert.python_callable is alert_on_verdict
    decays = control["monitor_model", "needs_retraining"]
    assert type(decays) is ShortCircuitOperator
    assert decays.python_callable is needs_retraining
    retrain = control["monitor_model", "retrain"]
    assert type(retrain) is TriggerDagRunOperator
    assert retrain.trigger_dag_id == "train_model"
    assert retrain.trigger_dag_id in dags
    # Started, not waited for: the retraining may wait days for a person's approval.
    assert retrain.wait_for_completion is False
    assert retrain.skip_when_already_exists is True
    assert retrain.reset_dag_run is False
    for task in control.values():
        assert not isinstance(task, DockerOperator), task.task_id


# What each stage's container sees of the data directory: (path under /data, read-only).
# Written out here rather than derived, so a change in common.py shows up as a diff.
STAGE_MOUNTS = {
    "generate": [("raw", False)],
    "preprocess": [("raw/{{ ds }}", True), ("processed", False)],
    "split": [("processed/{{ ds }}", False)],
    "train": [("processed/{{ ds }}", True), ("models", False)],
    "validate": [("processed/{{ ds }}", True), ("models/{{ ds }}", False)],
    "predict": [
        ("raw/{{ ds }}", True),
        ("models", True),
        ("predictions", False),
        ("model-cache", False),
    ],
    "promote": [
        ("processed/{{ ds }}", True),
        ("models/{{ ds }}", False),
        ("model-cache", False),
    ],
    # Writes the answer into the day's promotion.json.
    "review": [("models/{{ ds }}", False)],
    # Downloads the version into the model cache to check that it loads.
    "set-production": [("model-cache", False)],
    # The day pick_day chose (not the run's own): its labels and features, its predictions;
    # the model (a directory, or the cache for a registry version); it writes its report
    # next to the earlier days' ones.
    "monitor": [
        ("raw/{{ ti.xcom_pull(task_ids='pick_day') }}", True),
        ("predictions/{{ ti.xcom_pull(task_ids='pick_day') }}", True),
        ("models", True),
        ("monitoring", False),
        ("model-cache", False),
    ],
}


def test_every_path_a_stage_is_given_lies_in_its_mounts(dags):
    """Each /data path in a stage's command is inside one of its binds, and a path it
    writes (--output-dir, --model-dir) inside a read-write one."""
    for task in docker_tasks(dags):
        mounts = STAGE_MOUNTS[stage_of(task)]
        command = list(task.command)
        for flag, value in pairwise(command):
            if not value.startswith("/data/"):
                continue
            inside = [
                read_only
                for path, read_only in mounts
                if value == f"/data/{path}" or value.startswith(f"/data/{path}/")
            ]
            assert inside, f"{task.task_id}: {flag} {value} is in none of its mounts"
            if flag in ("--output-dir", "--model-dir"):
                assert False in inside, f"{task.task_id}: {flag} {value} is read-only"


def test_the_stack_makes_every_kind_directory_the_mounts_name():
    """scripts/stack.sh env makes the kinds' directories (a bind source must exist)."""
    from common import DATA_KINDS

    stack_sh = (
        Path(__file__).resolve().parents[2] / "scripts" / "stack.sh"
    ).read_text()
    made = re.search(r'mkdir -p "\$data_dir"/\{([^}]*)\}', stack_sh)
    assert made, "scripts/stack.sh no longer makes the data directory's layout"
    assert made.group(1).split(",") == list(DATA_KINDS)
    for mounts in STAGE_MOUNTS.values():
        for path, _ in mounts:
            assert path.split("/")[0] in DATA_KINDS, path


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_container_settings(dags, stage):
    dag_id, task_id = STAGE_TASKS[stage]
    task = dags[dag_id].get_task(task_id)
    assert stage_of(task) == stage
    image = STAGE_IMAGES.get(stage, stage)
    assert task.image == f"ml-{image}:{STACK_ENV['ML_IMAGE_TAG']}"
    assert [dict(m) for m in task.mounts] == [
        {
            "Target": f"/data/{path}",
            "Source": f"{STACK_ENV['ML_HOST_DATA_DIR']}/{path}",
            "Type": "bind",
            "ReadOnly": read_only,
        }
        for path, read_only in STAGE_MOUNTS[stage]
    ]
    assert task.mount_tmp_dir is False
    assert task.auto_remove == "success"
    assert task.docker_url == STACK_ENV["ML_DOCKER_URL"]
    assert task.user == STACK_ENV["ML_TASK_USER"]
    assert task.mem_limit == STAGES[stage].mem_limit
    assert task.execution_timeout == timedelta(minutes=30)
    assert task.privileged is False
    assert not task.cap_add
    if stage in NETWORKED_STAGES:
        assert task.network_mode == STACK_ENV["ML_TASK_NETWORK"]
        assert task.environment == {
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "ML_MODEL_CACHE": "/data/model-cache",
        }
    else:
        assert task.network_mode == "none"
        assert task.environment == {}
    # The lock-down options DockerOperator has no parameter for (see test_hardened_operator).
    assert task.read_only is True
    assert task.cap_drop == ["ALL"]
    assert task.no_new_privileges is True
    assert task.pids_limit > 0
    assert 0 < task.cpu_limit <= 2


def test_task_user_is_never_root(dags, monkeypatch):
    for task in docker_tasks(dags):
        uid = str(task.user).split(":", 1)[0]
        assert uid not in ("", "0", "root"), task.task_id


# ---- deadline alerts ----------------------------------------------------------------------

# dag_id: (interval with none of the stack's variables set, the callback's path)
EXPECTED_DEADLINES = {
    "predict": (timedelta(minutes=120), "alerts.predictions_late"),
    "train_model": (timedelta(hours=24), "alerts.approval_reminder"),
}


def test_only_predict_and_train_model_have_deadlines(dags):
    assert {d for d, dag in dags.items() if dag.deadline} == set(EXPECTED_DEADLINES)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DEADLINES))
def test_deadline_alert(dags, dag_id):
    """Counted from when the run was queued, with common's interval, calling an async
    callback in alerts.py that the triggerer can import and await with the context."""
    import inspect

    import common
    from airflow._shared.module_loading import accepts_context, import_string
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    interval, path = EXPECTED_DEADLINES[dag_id]
    [alert] = dags[dag_id].deadline
    assert isinstance(alert, DeadlineAlert)
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == interval
    assert (
        alert.interval
        == {
            "predict": common.PREDICT_DEADLINE,
            "train_model": common.APPROVAL_REMINDER,
        }[dag_id]
    )
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == path
    assert alert.callback.kwargs == {}
    callback = import_string(path)
    assert inspect.iscoroutinefunction(callback)
    assert accepts_context(callback)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DEADLINES))
def test_the_scheduler_sees_the_deadline(dags, dag_id):
    from airflow.serialization.serialized_objects import DagSerialization

    interval, path = EXPECTED_DEADLINES[dag_id]
    [serialized] = DagSerialization.to_dict(dags[dag_id])["dag"]["deadline"]
    assert serialized["reference"] == {"reference_type": "DagRunQueuedAtDeadline"}
    assert serialized["interval"]["__data__"] == interval.total_seconds()
    assert serialized["callback"]["__classname__"].endswith(".AsyncCallback")
    assert serialized["callback"]["__data__"] == {"path": path, "kwargs": {}}


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, 7.0),
        ("", 7.0),
        ("30", 30.0),
        ("0.5", 0.5),
        ("0", 7.0),
        ("-5", 7.0),
        ("nan", 7.0),
        ("inf", 7.0),
        ("1e400", 7.0),
        ("ten", 7.0),
        ("30m", 7.0),
    ],
)
def test_positive_from_env_falls_back_for_bad_values(monkeypatch, value, expected):
    from common import positive_from_env

    if value is None:
        monkeypatch.delenv("ML_TEST_POSITIVE", raising=False)
    else:
        monkeypatch.setenv("ML_TEST_POSITIVE", value)
    assert positive_from_env("ML_TEST_POSITIVE", 7.0) == expected


def test_the_stack_sets_the_deadlines_when_the_dags_are_parsed(monkeypatch):
    """The intervals are read from the environment when common.py is imported (a DAG file's
    parse), in minutes and in hours; a bad value keeps the default."""
    import importlib.util
    import sys

    import common

    monkeypatch.setenv("ML_PREDICT_DEADLINE_MINUTES", "45")
    monkeypatch.setenv("ML_APPROVAL_REMINDER_HOURS", "0.5")
    # A second copy under its own name: the tests' `common` (and its classes) stay as they are.
    spec = importlib.util.spec_from_file_location(
        "common_parsed_again", common.__file__
    )
    fresh = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fresh)
    spec.loader.exec_module(fresh)
    assert fresh.PREDICT_DEADLINE == timedelta(minutes=45)
    assert fresh.APPROVAL_REMINDER == timedelta(minutes=30)

    monkeypatch.setenv("ML_PREDICT_DEADLINE_MINUTES", "-1")
    monkeypatch.setenv("ML_APPROVAL_REMINDER_HOURS", "soon")
    spec.loader.exec_module(fresh)
    assert fresh.PREDICT_DEADLINE == timedelta(minutes=120)
    assert fresh.APPROVAL_REMINDER == timedelta(hours=24)
