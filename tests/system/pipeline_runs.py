"""Green runs of the three DAGs for one day, for the system tests that need them.

The alert and screenshot tests must not depend on test_e2e.py having run first: each asks
for the runs it needs through the REST client of scripts/run_pipeline.py, which adopts a
run that already exists for that day (for example one the e2e test made) and reruns the
failed tasks of a failed one.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta

from conftest import REPO, Stack

sys.path.insert(0, str(REPO / "scripts"))
from run_pipeline import DAG_IDS, AirflowClient

__all__ = [
    "AUTO_MODE_SKIPS",
    "DAG_IDS",
    "REGISTERED_MODEL",
    "RUN_TIMEOUT",
    "AirflowClient",
    "pipeline_day",
    "run_green",
    "trained_model",
    "version_tags",
]

RUN_TIMEOUT = 900
REGISTERED_MODEL = "heart-disease-classifier"
# train_model's tasks that auto mode skips: the gate decides, nobody is asked.
AUTO_MODE_SKIPS = frozenset({"approval", "record_review"})


def version_tags(stack: Stack, version: str) -> dict[str, str]:
    """The tags of a version of the pipeline's registered model, as MLflow holds them."""
    answer = stack.mlflow_rest(
        "GET", "model-versions/get", name=REGISTERED_MODEL, version=version
    )
    return {t["key"]: t["value"] for t in answer["model_version"].get("tags", [])}


def training_day() -> date:
    """The last Sunday before today: the day whose ``train_model`` run the scheduler starts
    by itself when the DAG is unpaused (weekly, catchup off), and that test_e2e.py trains
    on. Training any other day would queue behind that run (max_active_runs=1), whose
    sensors wait hours for data nobody generates."""
    today = datetime.now(UTC).date()
    return today - timedelta(days=(today.weekday() + 1) % 7 or 7)


def run_green(airflow: AirflowClient, dag_id: str, day: date) -> dict:
    """The finished run of ``dag_id`` for ``day``; fails the test unless it succeeded."""
    airflow.set_paused(dag_id, False)
    run = airflow.ensure_run(dag_id, day)
    if run["state"] == "failed":
        airflow.rerun_failed(dag_id, run["dag_run_id"])
    key = (dag_id, run["dag_run_id"])
    final = airflow.wait_for_runs([key], RUN_TIMEOUT)[key]
    assert final["state"] == "success", f"{dag_id} {day}: {final['state']}"
    return final


def trained_model(airflow: AirflowClient, day: date) -> str:
    """Data and a model for ``day``; returns the model's path as tasks see it."""
    run_green(airflow, "generate_data", day)
    run_green(airflow, "train_model", day)
    return f"/data/models/{day.isoformat()}"


def pipeline_day(airflow: AirflowClient, day: date) -> dict[str, dict]:
    """A successful run of every DAG for ``day`` (use training_day()), predicting with that
    day's model, which becomes the production model (Variable ``model_path``) before
    ``predict`` is unpaused, so its own scheduled run for today uses it too."""
    runs = {"generate_data": run_green(airflow, "generate_data", day)}
    runs["train_model"] = run_green(airflow, "train_model", day)
    airflow.set_variable("model_path", f"/data/models/{day.isoformat()}")
    runs["predict"] = run_green(airflow, "predict", day)
    return runs
