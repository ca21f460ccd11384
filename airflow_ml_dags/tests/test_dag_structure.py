"""DAG structure and policy: tasks, edges, and how every task runs."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import BaseSensorOperator
from common import STAGES, HardenedDockerOperator
from ml_dag_testing import STACK_ENV

EXPECTED_EDGES = {
    "generate_data": {"generate": set()},
    "train_model": {
        "wait_for_data": {"preprocess"},
        "wait_for_target": {"preprocess"},
        "preprocess": {"split"},
        "split": {"train"},
        "train": {"validate"},
        "validate": {"promote"},
        "promote": set(),
    },
    "predict": {"wait_for_data": {"predict"}, "predict": set()},
}
EXPECTED_SCHEDULES = {
    "generate_data": "@daily",
    "train_model": "@weekly",
    "predict": "@daily",
}
# Stages that talk to MLflow get the task network; every other container has no network.
NETWORKED_STAGES = {"train", "validate", "predict", "promote"}


def all_tasks(dags):
    return [task for dag in dags.values() for task in dag.tasks]


def docker_tasks(dags):
    return [t for t in all_tasks(dags) if not isinstance(t, BaseSensorOperator)]


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
        assert task.retries >= 1, where
        assert task.retry_delay >= timedelta(seconds=10), where


def test_sensors_wait_without_holding_a_worker(dags):
    assert {f"{t.dag_id}.{t.task_id}" for t in sensors(dags)} == {
        "train_model.wait_for_data",
        "train_model.wait_for_target",
        "predict.wait_for_data",
    }
    for sensor in sensors(dags):
        where = f"{sensor.dag_id}.{sensor.task_id}"
        assert isinstance(sensor, FileSensor), where
        assert sensor.fs_conn_id == "fs_data", where
        assert sensor.deferrable or sensor.mode == "reschedule", where
        assert 10 <= sensor.poke_interval <= 300, where
        # BaseSensorOperator's default is seven days; ours is bounded by one day.
        assert 0 < sensor.timeout <= timedelta(days=1).total_seconds(), where


def test_every_other_task_is_the_hardened_docker_operator(dags):
    tasks = docker_tasks(dags)
    assert {t.task_id for t in tasks} == set(STAGES)
    for task in tasks:
        assert isinstance(task, HardenedDockerOperator)
        assert isinstance(task, DockerOperator)


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
}


def test_every_path_a_stage_is_given_lies_in_its_mounts(dags):
    """Each /data path in a stage's command is inside one of its binds, and a path it
    writes (--output-dir, --model-dir) inside a read-write one."""
    for task in docker_tasks(dags):
        mounts = STAGE_MOUNTS[task.task_id]
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
    [task] = [t for t in docker_tasks(dags) if t.task_id == stage]
    assert task.image == f"ml-{stage}:{STACK_ENV['ML_IMAGE_TAG']}"
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
