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


def runtime_ti(task, logical_date: datetime = SAMPLE_DATE, try_number: int = 1):
    """A task instance as a worker would build it for a scheduled run, with a copy of the task.

    This goes through the Task SDK's RuntimeTaskInstance, so the template context (``ds``,
    ``var``, ``run_id``, ...) is the one tasks really get. Those classes are internal to the
    pinned Airflow release; if an upgrade moves them, this is the one place to adapt.
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
        run_id=f"scheduled__{logical_date.isoformat()}",
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_after=logical_date,
        start_date=logical_date,
        end_date=None,
        run_type=DagRunType.SCHEDULED,
        state=DagRunState.RUNNING,
        consumed_asset_events=[],
        partition_key=None,
    )
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task.task_id,
        dag_id=task.dag_id,
        run_id=run.run_id,
        try_number=try_number,
        dag_version_id=uuid.uuid4(),
        map_index=-1,
        task=copy.deepcopy(task),
        max_tries=task.retries,
        start_date=logical_date,
    )
    ti._ti_context_from_server = TIRunContext(dag_run=run, max_tries=task.retries)
    return ti
