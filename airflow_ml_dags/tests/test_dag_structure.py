"""DAG structure and policy: tasks, edges, and how every task runs."""

from __future__ import annotations

from datetime import UTC, timedelta

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


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_container_settings(dags, stage):
    [task] = [t for t in docker_tasks(dags) if t.task_id == stage]
    assert task.image == f"ml-{stage}:{STACK_ENV['ML_IMAGE_TAG']}"
    assert [dict(m) for m in task.mounts] == [
        {
            "Target": "/data",
            "Source": STACK_ENV["ML_HOST_DATA_DIR"],
            "Type": "bind",
            "ReadOnly": False,
        }
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
