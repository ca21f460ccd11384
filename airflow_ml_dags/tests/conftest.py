"""pytest fixtures for the DAG tests; the environment is set up by ml_dag_testing."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest
from ml_dag_testing import (
    AIRFLOW_HOME,
    SAMPLE_DATE,
    load_dagbag,
    runtime_ti,
    serve_xcoms,
)


def pytest_configure(config):
    # Raised by Airflow's own .airflowignore handling (pathspec), not by our code.
    config.addinivalue_line(
        "filterwarnings", "ignore:GitWildMatchPattern:DeprecationWarning"
    )


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def dagbag():
    return load_dagbag()


@pytest.fixture(scope="session")
def dags(dagbag):
    return dagbag.dags


@pytest.fixture
def render(monkeypatch):
    """render(task) -> (rendered copy of the task, its template context) for SAMPLE_DATE.

    ``xcoms`` (task id -> return value) answers the task's XCom pulls from its own run; any
    other pull finds nothing. The other keywords are runtime_ti's (a manual run, its conf
    and the user who triggered it)."""

    def _render(
        task, logical_date: datetime = SAMPLE_DATE, *, xcoms: dict | None = None, **run
    ):
        ti = runtime_ti(task, logical_date, **run)
        serve_xcoms(monkeypatch, ti, xcoms or {})
        context = ti.get_template_context()
        ti.render_templates(context)
        return ti.task, context

    return _render
