"""Fixtures of the fault drills: one real compose stack for every drill.

The stack is the ``stack`` fixture of tests/system/conftest.py (imported, not copied), so
it starts and is torn down exactly as for the system tests, under a compose project and
host ports of its own: by default ``mlpipeline-drills`` on 28080 (Airflow) and 25000
(MLflow), so the drills can run beside a developer's stack and the system tests. The same
variables as there override them (``ML_STACK_PROJECT``, ``ML_TEST_AIRFLOW_PORT``,
``ML_TEST_MLFLOW_PORT``, ``ML_STACK_TIMEOUT``, ``ML_IMAGE_TAG``).

At the end of the run the drills' table (drill, expected, observed) is printed and written
to ``build/drills/report.md``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SYSTEM = Path(__file__).resolve().parents[1] / "system"

os.environ.setdefault("ML_STACK_PROJECT", "mlpipeline-drills")
os.environ.setdefault("ML_TEST_AIRFLOW_PORT", "28080")
os.environ.setdefault("ML_TEST_MLFLOW_PORT", "25000")

# tests/system's conftest under a name of its own: this file is the `conftest` module of
# this run, and the helpers of tests/system (pipeline_runs, alert_channel) import REPO and
# Stack from `conftest`, which this module re-exports.
_spec = importlib.util.spec_from_file_location(
    "system_conftest", SYSTEM / "conftest.py"
)
system_conftest = importlib.util.module_from_spec(_spec)
sys.modules["system_conftest"] = system_conftest
_spec.loader.exec_module(system_conftest)
sys.path.insert(0, str(SYSTEM))

REPO = system_conftest.REPO
Stack = system_conftest.Stack
stack = system_conftest.stack

from alert_channel import Receiver, apprise_connection, running_receiver
from faults import REPORT_FILE, report_table
from pipeline_runs import DAG_IDS, AirflowClient

__all__ = ["REPO", "Stack", "airflow", "receiver", "stack"]


@pytest.fixture(scope="session")
def airflow(stack: Stack) -> AirflowClient:
    # A generous timeout per call: the drills load the machine, and restart the services
    # the API server depends on.
    client = AirflowClient(
        stack.airflow_url, stack.username, stack.password, timeout=120
    )
    client.wait_for_dags(DAG_IDS)
    return client


@pytest.fixture(scope="session")
def receiver(stack: Stack, airflow: AirflowClient) -> Iterator[Receiver]:
    """One webhook receiver for every drill that expects (or must not see) an alert: two
    would share the network alias, and an alert could reach the other one."""
    with running_receiver(stack) as running, apprise_connection(airflow):
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    table = report_table()
    if not table:
        return
    REPORT_FILE.parent.mkdir(parents=True, exist_ok=True)
    REPORT_FILE.write_text(table)
    terminalreporter.section("fault drills")
    terminalreporter.write(table)
    terminalreporter.write_line(f"(also in {REPORT_FILE.relative_to(REPO)})")
