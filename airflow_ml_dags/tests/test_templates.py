"""Rendered templates: for one logical date, the exact commands and paths each task uses."""

from __future__ import annotations

import jinja2
import pytest
from ml_dag_testing import (
    MODEL_PATH,
    RENDER_INPUTS,
    SAMPLE_ANSWER,
    SAMPLE_DATE,
    SAMPLE_MONITORED_DAY,
    SAMPLE_SET_PRODUCTION,
)

DS = SAMPLE_DATE.strftime("%Y-%m-%d")  # 2026-01-05
# What monitor_model evaluates in the run of DS: the day its pick_day returned (RENDER_INPUTS).
DAY = SAMPLE_MONITORED_DAY  # 2026-01-04

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
    # With the approval's answer (SAMPLE_ANSWER) in its XCom.
    ("train_model", "record_review"): [
        "review",
        "--model-dir",
        f"/data/models/{DS}",
        "--answer=approve",
        "--by=alice",
        "--comment=better on every metric; ship it",
        "--responded-at=2026-01-06T09:30:00+00:00",
    ],
    # Triggered by alice with SAMPLE_SET_PRODUCTION's form (run_after: SAMPLE_DATE).
    ("set_production", "set_production"): [
        "set-production",
        "--registered-model",
        "heart-disease-classifier",
        "--version=3",
        "--reason=roll back: version 4 drifts on new data",
        "--by=alice",
        "--at=2026-01-05T00:00:00+00:00",
    ],
    # With pick_day's day (DAY) in its XCom, and the Variables' defaults.
    ("monitor_model", "monitor"): [
        "--predictions-dir",
        f"/data/predictions/{DAY}",
        "--labels-dir",
        f"/data/raw/{DAY}",
        "--output-dir",
        f"/data/monitoring/{DAY}",
        "--psi-threshold",
        "0.2",
        "--auc-margin",
        "0.03",
        "--min-roc-auc",
        "0.75",
    ],
}

EXPECTED_SENSOR_PATHS = {
    ("train_model", "wait_for_data"): f"/data/raw/{DS}/data.csv",
    ("train_model", "wait_for_target"): f"/data/raw/{DS}/target.csv",
    ("predict", "wait_for_data"): f"/data/raw/{DS}/data.csv",
    # monitor_model waits for the day pick_day chose, not for its own.
    (
        "monitor_model",
        "wait_for_predictions",
    ): f"/data/predictions/{DAY}/provenance.json",
    ("monitor_model", "wait_for_labels"): f"/data/raw/{DAY}/target.csv",
}


# The tasks that run no container, each checked below by what it gets from the run
# (monitor_model's by test_monitoring.py, with the files they read).
CONTROL_TASKS_CHECKED = {
    ("train_model", "needs_review"),
    ("train_model", "approval"),
    ("monitor_model", "pick_day"),
    ("monitor_model", "alert"),
    ("monitor_model", "needs_retraining"),
    ("monitor_model", "retrain"),
}


def test_every_task_is_covered(dags):
    covered = (
        set(EXPECTED_COMMANDS) | set(EXPECTED_SENSOR_PATHS) | CONTROL_TASKS_CHECKED
    )
    assert covered == {(d.dag_id, t.task_id) for d in dags.values() for t in d.tasks}


@pytest.mark.parametrize("key", sorted(EXPECTED_COMMANDS), ids="{0[0]}.{0[1]}".format)
def test_rendered_command(dags, render, key):
    dag_id, task_id = key
    task, context = render(dags[dag_id].get_task(task_id), **RENDER_INPUTS.get(key, {}))
    assert context["ds"] == DS
    assert task.command == EXPECTED_COMMANDS[key]


def test_needs_review_gets_the_runs_day(dags, render):
    """The short-circuit's callable gets the run's ds, as the operator passes it."""
    task, context = render(dags["train_model"].get_task("needs_review"))
    assert task.determine_kwargs(context) == {"ds": DS}
    assert list(task.op_args) == []


def test_the_approvals_subject_names_the_day(dags, render):
    # The page's body is written when the approval opens (rollout.ReviewRequest.execute).
    task, _ = render(dags["train_model"].get_task("approval"))
    assert task.subject == f"Roll out the model trained on {DS} to production?"
    assert task.body is None


def test_record_review_passes_on_what_the_approval_returned(dags, render):
    """Every field of the approval's answer reaches ml-promote as its own argument, as
    text, however it is worded (quotes, spaces, equals signs, a line break)."""
    task = dags["train_model"].get_task("record_review")
    answer = {
        "answer": "timeout",
        "by": "",
        "comment": 'it\'s "fine" = no --flag\nsecond line',
        "responded_at": "2026-01-08T00:00:01.5+00:00",
    }
    rendered, _ = render(task, xcoms={"approval": answer})
    assert rendered.command[3:] == [
        "--answer=timeout",
        "--by=",
        '--comment=it\'s "fine" = no --flag\nsecond line',
        "--responded-at=2026-01-08T00:00:01.5+00:00",
    ]


def test_record_review_does_not_render_without_the_approval(dags, render):
    """No answer (an approval that did not run) is an error, never an empty --answer."""
    task = dags["train_model"].get_task("record_review")
    with pytest.raises(jinja2.exceptions.UndefinedError, match="answer"):
        render(task, xcoms={"needs_review": SAMPLE_ANSWER})


def test_set_production_renders_what_the_person_asked(dags, render):
    task = dags["set_production"].get_task("set_production")
    rendered, context = render(
        task,
        run_type="manual",
        conf={"version": 12, "reason": "pin: version 12 passed the audit"},
        triggering_user_name="bob",
    )
    assert context["params"] == {
        "version": 12,
        "reason": "pin: version 12 passed the audit",
    }
    assert rendered.command[3:] == [
        "--version=12",
        "--reason=pin: version 12 passed the audit",
        "--by=bob",
        "--at=2026-01-05T00:00:00+00:00",
    ]
    # Without a triggering user (a run nobody triggered by name) --by is empty, which
    # ml-promote set-production refuses; it is not filled in with a made-up name.
    rendered, _ = render(
        task, **{**SAMPLE_SET_PRODUCTION, "triggering_user_name": None}
    )
    assert "--by=" in rendered.command
    # The DAG's and the task's params keep their defaults: a run's form values are not
    # left behind for the next run (or the next test).
    assert dags["set_production"].params.get_param("version").value is None
    assert task.params.get_param("version").value is None
    assert task.params.get_param("reason").value == ""


@pytest.mark.parametrize(
    "key", sorted(EXPECTED_SENSOR_PATHS), ids="{0[0]}.{0[1]}".format
)
def test_rendered_sensor_path(dags, render, key):
    dag_id, task_id = key
    sensor, _ = render(dags[dag_id].get_task(task_id), **RENDER_INPUTS.get(key, {}))
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
