"""Rendered templates: for one logical date, the exact commands and paths each task uses."""

from __future__ import annotations

import pytest
from ml_dag_testing import MODEL_PATH, SAMPLE_DATE

DS = SAMPLE_DATE.strftime("%Y-%m-%d")  # 2026-01-05

EXPECTED_COMMANDS = {
    ("generate_data", "generate"): ["--output-dir", f"/data/raw/{DS}", "--date", DS],
    ("train_model", "preprocess"): [
        "--input-dir",
        f"/data/raw/{DS}",
        "--output-dir",
        f"/data/processed/{DS}",
    ],
    ("train_model", "split"): [
        "--input-dir",
        f"/data/processed/{DS}",
        "--output-dir",
        f"/data/processed/{DS}",
    ],
    ("train_model", "train"): [
        "--input-dir",
        f"/data/processed/{DS}",
        "--output-dir",
        f"/data/models/{DS}",
    ],
    ("train_model", "validate"): [
        "--input-dir",
        f"/data/processed/{DS}",
        "--model-dir",
        f"/data/models/{DS}",
    ],
    ("train_model", "promote"): [
        "--input-dir",
        f"/data/processed/{DS}",
        "--model-dir",
        f"/data/models/{DS}",
        "--mode",
        "auto",
        "--min-improvement",
        "0",
        "--min-roc-auc",
        "0.75",
    ],
    ("predict", "predict"): [
        "--input-dir",
        f"/data/raw/{DS}",
        "--model",
        MODEL_PATH,
        "--output-dir",
        f"/data/predictions/{DS}",
    ],
}

EXPECTED_SENSOR_PATHS = {
    ("train_model", "wait_for_data"): f"/data/raw/{DS}/data.csv",
    ("train_model", "wait_for_target"): f"/data/raw/{DS}/target.csv",
    ("predict", "wait_for_data"): f"/data/raw/{DS}/data.csv",
}


def test_every_task_is_covered(dags):
    covered = set(EXPECTED_COMMANDS) | set(EXPECTED_SENSOR_PATHS)
    assert covered == {(d.dag_id, t.task_id) for d in dags.values() for t in d.tasks}


@pytest.mark.parametrize("key", sorted(EXPECTED_COMMANDS), ids="{0[0]}.{0[1]}".format)
def test_rendered_command(dags, render, key):
    dag_id, task_id = key
    task, context = render(dags[dag_id].get_task(task_id))
    assert context["ds"] == DS
    assert task.command == EXPECTED_COMMANDS[key]


@pytest.mark.parametrize(
    "key", sorted(EXPECTED_SENSOR_PATHS), ids="{0[0]}.{0[1]}".format
)
def test_rendered_sensor_path(dags, render, key):
    dag_id, task_id = key
    sensor, _ = render(dags[dag_id].get_task(task_id))
    assert sensor.filepath == EXPECTED_SENSOR_PATHS[key]
    # The path the sensor really checks: the fs_data connection (AIRFLOW_CONN_FS_DATA, as
    # the stack sets it) has base path "/", so it is the rendered path itself.
    assert sensor.path == EXPECTED_SENSOR_PATHS[key]


def test_model_path_comes_from_the_variable_at_run_time(dags, render, monkeypatch):
    """Switching the Variable switches the model of the next run; nothing is cached at
    parse time."""
    task = dags["predict"].get_task("predict")
    monkeypatch.setenv("AIRFLOW_VAR_MODEL_PATH", "/data/models/2025-12-28")
    rendered, _ = render(task)
    assert (
        rendered.command[rendered.command.index("--model") + 1]
        == "/data/models/2025-12-28"
    )
    # The DAG itself holds the template, not a value.
    assert "{{ var.value.model_path }}" in task.command


def test_promotion_settings_come_from_variables_at_run_time(dags, render, monkeypatch):
    """promotion_mode=manual stops at the challenger alias; the margin and the floor are
    Variables too."""
    task = dags["train_model"].get_task("promote")
    monkeypatch.setenv("AIRFLOW_VAR_PROMOTION_MODE", "manual")
    monkeypatch.setenv("AIRFLOW_VAR_PROMOTION_MIN_IMPROVEMENT", "0.05")
    monkeypatch.setenv("AIRFLOW_VAR_PROMOTION_MIN_ROC_AUC", "0.8")
    rendered, _ = render(task)
    assert rendered.command[-6:] == [
        "--mode",
        "manual",
        "--min-improvement",
        "0.05",
        "--min-roc-auc",
        "0.8",
    ]


def test_train_args_variable_adds_flags_at_run_time(dags, render, monkeypatch):
    """The Variable train_args (split like a shell would) is appended to ml-train's command
    when the task runs; unset, the command is the plain one."""
    task = dags["train_model"].get_task("train")
    rendered, _ = render(task)
    assert rendered.extra_arguments == ""
    monkeypatch.setenv("AIRFLOW_VAR_TRAIN_ARGS", "--model random-forest --n-trees 3")
    rendered, _ = render(task)
    assert rendered.extra_arguments == "--model random-forest --n-trees 3"
    assert task.extra_arguments == "{{ var.value.get('train_args', '') }}"


def test_mlflow_credentials_reach_only_the_mlflow_stages(dags, monkeypatch):
    """With MLflow's basic auth on, the stack hands the stages' credentials to the tasks
    that talk to MLflow, under MLflow's own variable names; predict gets the read-only
    account, and never the pipeline's when its own is unset."""
    import common

    monkeypatch.setenv("ML_TASK_MLFLOW_TRACKING_USERNAME", "stages")
    monkeypatch.setenv("ML_TASK_MLFLOW_TRACKING_PASSWORD", "s3cret")
    promote = common.STAGES["promote"]
    predict = common.STAGES["predict"]
    assert common.mlflow_credentials(promote) == {
        "MLFLOW_TRACKING_USERNAME": "stages",
        "MLFLOW_TRACKING_PASSWORD": "s3cret",
    }
    assert common.mlflow_credentials(predict) == {}
    monkeypatch.setenv("ML_TASK_PREDICT_MLFLOW_TRACKING_USERNAME", "reader")
    monkeypatch.setenv("ML_TASK_PREDICT_MLFLOW_TRACKING_PASSWORD", "r3ad")
    assert common.mlflow_credentials(predict) == {
        "MLFLOW_TRACKING_USERNAME": "reader",
        "MLFLOW_TRACKING_PASSWORD": "r3ad",
    }
    task = common.stage_task("promote", ["--help"])
    assert task._private_environment == common.mlflow_credentials(promote)
    assert "private_environment" not in task.template_fields
    assert "MLFLOW_TRACKING_PASSWORD" not in task.environment
    assert common.stage_task("predict", ["--help"])._private_environment == {
        "MLFLOW_TRACKING_USERNAME": "reader",
        "MLFLOW_TRACKING_PASSWORD": "r3ad",
    }
    assert common.stage_task("split", ["--help"])._private_environment == {}
    monkeypatch.delenv("ML_TASK_MLFLOW_TRACKING_PASSWORD")
    monkeypatch.delenv("ML_TASK_MLFLOW_TRACKING_USERNAME")
    assert common.mlflow_credentials(promote) == {}


def test_another_date_gives_other_paths(dags, render):
    from datetime import UTC, datetime

    task = dags["generate_data"].get_task("generate")
    rendered, _ = render(task, datetime(2026, 2, 28, tzinfo=UTC))
    assert rendered.command == [
        "--output-dir",
        "/data/raw/2026-02-28",
        "--date",
        "2026-02-28",
    ]
