"""Environment and helpers shared by the DAG tests (imported by conftest.py first).

Airflow reads its configuration when it is first imported, so the environment is set when
this module is imported, before any test imports Airflow. Nothing needs a metadata database:
DAG files parse without one (that is one of the things the tests check), templates render
through the Task SDK's own context builder, and Variables and Connections come from
``AIRFLOW_VAR_*`` / ``AIRFLOW_CONN_*`` environment variables, which Airflow reads first.

(A uniquely named module rather than ``from conftest import``: tests/system has a conftest
of its own, and both run in one pytest session.)
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

DAGS_DIR = Path(__file__).resolve().parents[1] / "dags"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ml-dag-tests-"))

# The environment the stack gives the Airflow containers (see docker-compose.yml), with
# values that cannot be mistaken for defaults.
STACK_ENV = {
    "ML_HOST_DATA_DIR": "/srv/ml-test/data",
    "ML_TASK_NETWORK": "ml-test-tasks",
    "ML_IMAGE_TAG": "0.1.0",
    "ML_TASK_USER": "4321:4321",
    "ML_DOCKER_URL": "tcp://docker-guard.test:2375",
}
MODEL_PATH = "/data/models/2026-01-04"
# Read by the DAG helpers with defaults that the tests expect: none come from the caller.
UNSET_ENV = (
    "ML_PREDICT_DEADLINE_MINUTES",
    "ML_APPROVAL_REMINDER_HOURS",
    "ML_MLFLOW_BASE_URL",
    "AIRFLOW__API__BASE_URL",
)
for _name in UNSET_ENV:
    os.environ.pop(_name, None)

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Never used (nothing here opens a session), but if something did, it would find an
        # empty throw-away file rather than whatever the caller's environment points at.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW_VAR_MODEL_PATH": MODEL_PATH,
        "AIRFLOW_CONN_FS_DATA": json.dumps({"conn_type": "fs", "extra": {"path": "/"}}),
        **STACK_ENV,
    }
)


# The dag processor puts the bundle root on sys.path so DAG files can import common; do the
# same so that tests import the very module the DAG files use.
if str(DAGS_DIR) not in sys.path:
    sys.path.insert(0, str(DAGS_DIR))


def load_dagbag():
    """Parse the DAG folder the way the dag processor does: as a bundle whose root is on
    sys.path, so the DAG files can import ``common``."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(
        dag_folder=DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder"
    )


SAMPLE_DATE = datetime(2026, 1, 5, tzinfo=UTC)


def runtime_ti(
    task,
    logical_date: datetime = SAMPLE_DATE,
    try_number: int = 1,
    *,
    run_type: str = "scheduled",
    conf: dict | None = None,
    triggering_user_name: str | None = None,
):
    """A task instance as a worker would build it for a run, with a copy of the task: a
    scheduled run, or (``run_type="manual"``) one a person triggered with ``conf``.

    This goes through the Task SDK's RuntimeTaskInstance, so the template context (``ds``,
    ``var``, ``run_id``, ``params``, ...) is the one tasks really get. Those classes are
    internal to the pinned Airflow release; if an upgrade moves them, this is the one place
    to adapt.
    """
    from airflow.sdk.api.datamodels._generated import (
        DagRun,
        DagRunState,
        DagRunType,
        TIRunContext,
    )
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    run = DagRun(
        dag_id=task.dag_id,
        run_id=f"{run_type}__{logical_date.isoformat()}",
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_after=logical_date,
        start_date=logical_date,
        end_date=None,
        run_type=DagRunType(run_type),
        state=DagRunState.RUNNING,
        conf=conf,
        triggering_user_name=triggering_user_name,
        consumed_asset_events=[],
        partition_key=None,
    )
    # BaseOperator's deepcopy shares the task's Param objects with the DAG's task, and
    # validating a run's conf sets their values (process_params): a run's form values would
    # become the session's defaults. A worker builds its task afresh for each run.
    private_task = copy.deepcopy(task)
    private_task.__dict__["params"] = copy.deepcopy(task.params)
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task.task_id,
        dag_id=task.dag_id,
        run_id=run.run_id,
        try_number=try_number,
        dag_version_id=uuid.uuid4(),
        map_index=-1,
        task=private_task,
        max_tries=task.retries,
        start_date=logical_date,
    )
    ti._ti_context_from_server = TIRunContext(dag_run=run, max_tries=task.retries)
    return ti


class ServedXComs:
    """Stands in for the Task SDK's XCom class while a template renders: the values of the
    given tasks of ``ti``'s own run (key ``return_value``), and nothing for anything else,
    as the API server would answer (``ti.xcom_pull`` is otherwise a call to the supervisor,
    which tests do not have). What a task pushes while it runs (the short-circuit's list of
    skipped tasks, say) is kept in ``pushed``: (task id, key, value)."""

    def __init__(self, ti, values: dict[str, object]) -> None:
        self.ti = ti
        self.values = values
        self.pulled: list[str] = []
        self.pushed: list[tuple[str, str, object]] = []

    def set(self, *, key, value, dag_id, task_id, run_id, map_index=-1, **_) -> None:
        assert (dag_id, run_id) == (self.ti.dag_id, self.ti.run_id)
        self.pushed.append((task_id, key, copy.deepcopy(value)))

    def _find(self, *, dag_id, run_id, task_id, key) -> list:
        self.pulled.append(task_id)
        same_run = (dag_id, run_id) == (self.ti.dag_id, self.ti.run_id)
        if same_run and key == "return_value" and task_id in self.values:
            return [copy.deepcopy(self.values[task_id])]
        return []

    def get_all(self, *, key, dag_id, task_id, run_id, include_prior_dates=False):
        return self._find(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key)

    def get_one(
        self, *, key, dag_id, task_id, run_id, map_index=-1, include_prior_dates=False
    ):
        found = self._find(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key)
        return found[0] if found else None


def serve_xcoms(monkeypatch, ti, values: dict[str, object]) -> ServedXComs:
    """Answers ``ti``'s XCom pulls from ``values`` (task id -> return value) for the rest of
    the test."""
    from airflow.sdk.execution_time import task_runner

    served = ServedXComs(ti, values)
    monkeypatch.setattr(task_runner, "XCom", served)
    return served


# The task that runs each stage (common.STAGES); every other task is a sensor or one of the
# CONTROL_TASKS. Written out, so that a new task or stage shows up as a test failure.
STAGE_TASKS = {
    "generate": ("generate_data", "generate"),
    "preprocess": ("train_model", "preprocess"),
    "split": ("train_model", "split"),
    "train": ("train_model", "train"),
    "validate": ("train_model", "validate"),
    "promote": ("train_model", "promote"),
    "review": ("train_model", "record_review"),
    "predict": ("predict", "predict"),
    "set-production": ("set_production", "set_production"),
    "monitor": ("monitor_model", "monitor"),
}
# Tasks that do no work of their own (no container): the short-circuit in front of the
# approval and the approval itself (a person answers on the Required Actions page); and
# monitor_model's choice of the day, its alert on the verdict, the short-circuit in front of
# the retraining and the trigger of train_model.
CONTROL_TASKS = {
    ("train_model", "needs_review"),
    ("train_model", "approval"),
    ("monitor_model", "pick_day"),
    ("monitor_model", "alert"),
    ("monitor_model", "needs_retraining"),
    ("monitor_model", "retrain"),
}

# What `approval` returns (rollout.answer_of) in the sample run: what record_review passes on.
SAMPLE_ANSWER = {
    "answer": "approve",
    "by": "alice",
    "comment": "better on every metric; ship it",
    "responded_at": "2026-01-06T09:30:00+00:00",
}
# A person triggering set_production from its form.
SAMPLE_SET_PRODUCTION = {
    "run_type": "manual",
    "conf": {"version": 3, "reason": "roll back: version 4 drifts on new data"},
    "triggering_user_name": "alice",
}
# The day monitor_model's `pick_day` returns in the sample run: SAMPLE_DATE less the default
# label delay of one day. Every later task of the run reads it from that XCom.
SAMPLE_MONITORED_DAY = "2026-01-04"
MONITORED_DAY_XCOM = {"xcoms": {"pick_day": SAMPLE_MONITORED_DAY}}
# What a task needs besides a scheduled run's context to render (see conftest's render).
RENDER_INPUTS = {
    ("train_model", "record_review"): {"xcoms": {"approval": SAMPLE_ANSWER}},
    ("set_production", "set_production"): SAMPLE_SET_PRODUCTION,
    **{
        ("monitor_model", task_id): MONITORED_DAY_XCOM
        for task_id in (
            "wait_for_predictions",
            "wait_for_labels",
            "monitor",
            "alert",
            "needs_retraining",
            "retrain",
        )
    },
}
