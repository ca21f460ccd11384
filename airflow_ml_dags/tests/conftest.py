"""pytest fixtures for the DAG tests; the environment is set up by ml_dag_testing."""

from __future__ import annotations

import json
import queue
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class WebhookReceiver:
    """What the ``webhook`` fixture's endpoint received: (path, JSON body) per request."""

    def __init__(self) -> None:
        self.requests: queue.Queue[tuple[str, dict]] = queue.Queue()


@pytest.fixture
def webhook(monkeypatch) -> Iterator[WebhookReceiver]:
    """An HTTP endpoint on loopback that records each JSON body posted to it (Apprise's
    json:// URLs), configured as the ``alert_apprise`` channel for the test."""
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.put((self.path, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        monkeypatch.setenv(
            "AIRFLOW_CONN_ALERT_APPRISE",
            json.dumps(
                {
                    "conn_type": "apprise",
                    "extra": {"config": {"path": f"json://127.0.0.1:{port}/alerts"}},
                }
            ),
        )
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
