"""Failure alerts (dags/alerts.py) delivered to real receivers on loopback.

The SMTP channel sends to an aiosmtpd server and the Apprise channel to an http.server
endpoint, both started by the tests, through the provider notifiers and connections from
``AIRFLOW_CONN_*`` exactly as on the stack. The callback's contract with Airflow (called once
a task has failed for good: not for a retry that later succeeds, but for a sensor that times
out) is checked by running small DAGs with ``dag.test()``, which executes tasks through the
Task SDK's task runner, the code that calls callbacks on a worker, against a throw-away
SQLite metadata database.
"""

from __future__ import annotations

import email
import email.policy
import importlib.util
import json
import os
import queue
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import alerts
import common
import pytest
from aiosmtpd.controller import Controller
from ml_dag_testing import AIRFLOW_HOME, SAMPLE_DATE, runtime_ti

RECIPIENT = "oncall@example.invalid"
SENDER = "airflow@example.invalid"


class SmtpReceiver:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: queue.Queue[email.message.EmailMessage] = queue.Queue()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(
            envelope.content, policy=email.policy.default
        )
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.put(message)
        return "250 Message accepted for delivery"


def free_port() -> int:
    # aiosmtpd's Controller checks it is up by connecting to its port, so it needs a real one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(monkeypatch) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    port = free_port()
    controller = Controller(receiver, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ALERT_EMAIL",
            f"smtp://127.0.0.1:{port}?from_email={quote(SENDER)}&to={quote(RECIPIENT)}"
            "&disable_tls=true&disable_ssl=true&timeout=10&retry_limit=0",
        )
        yield receiver
    finally:
        controller.stop()


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: queue.Queue[tuple[str, dict]] = queue.Queue()


@pytest.fixture
def webhook(monkeypatch) -> Iterator[WebhookReceiver]:
    """An HTTP endpoint that records each JSON body posted to it (Apprise's json:// URLs)."""
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


@pytest.fixture(autouse=True)
def no_channels(monkeypatch):
    """Each test configures the channels it wants; none leak from the caller's environment."""
    for conn_id in alerts.CHANNEL_CONN_IDS:
        monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)


@pytest.fixture
def failed_predict(dags):
    return lambda: failed_predict_context(dags["predict"].get_task("predict"))


def failed_predict_context(task, try_number: int = 3) -> dict:
    """The context Airflow passes to on_failure_callback for `predict` failing on SAMPLE_DATE."""
    from airflow.providers.docker.exceptions import DockerContainerFailedException

    ti = runtime_ti(task, SAMPLE_DATE, try_number=try_number)
    context = ti.get_template_context()
    context["exception"] = DockerContainerFailedException(
        "Docker container failed: {'StatusCode': 1}",
        logs=[
            b"reading /data/raw/2026-01-05/data.csv\n",
            "error: cannot read /data/raw/2026-01-05/data.csv",
            "Caused by: row 3, column f0: not a number",
        ],
    )
    return context


EXPECTED_LOG_URL = (
    "http://localhost:8080/dags/predict/runs/scheduled__2026-01-05T00%3A00%3A00%2B00%3A00"
    "/tasks/predict?try_number=3"
)


def assert_names_everything(text: str) -> None:
    assert "predict" in text
    assert "2026-01-05T00:00:00+00:00" in text
    assert "3 of 7" in text
    assert "error: cannot read /data/raw/2026-01-05/data.csv" in text
    assert EXPECTED_LOG_URL in text


def test_email_reaches_a_real_smtp_server(smtp_server, failed_predict):
    alerts.on_failure(failed_predict())

    message = smtp_server.messages.get(timeout=10)
    assert message["From"] == SENDER
    assert message["X-Envelope-To"] == RECIPIENT
    assert message["Subject"] == (
        "Airflow: predict.predict failed for 2026-01-05T00:00:00+00:00"
    )
    body = message.get_body(("html",)).get_content()
    assert_names_everything(body)
    assert f"href='{EXPECTED_LOG_URL}'" in body
    assert smtp_server.messages.empty()


def test_apprise_reaches_a_real_webhook(webhook, failed_predict):
    alerts.on_failure(failed_predict())

    path, payload = webhook.requests.get(timeout=10)
    assert path == "/alerts"
    assert payload["type"] == "failure"
    assert (
        payload["title"]
        == "Airflow: predict.predict failed for 2026-01-05T00:00:00+00:00"
    )
    assert_names_everything(payload["message"])
    assert webhook.requests.empty()


def test_both_channels_get_the_same_alert(smtp_server, webhook, failed_predict):
    alerts.on_failure(failed_predict())
    assert (
        "3 of 7"
        in smtp_server.messages.get(timeout=10).get_body(("html",)).get_content()
    )
    assert "3 of 7" in webhook.requests.get(timeout=10)[1]["message"]


def test_a_failing_channel_does_not_stop_the_others(
    smtp_server, webhook, monkeypatch, failed_predict
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERT_EMAIL", "smtp://127.0.0.1:1?to=x%40example.invalid"
    )
    with pytest.raises(RuntimeError, match="alert_email"):
        alerts.on_failure(failed_predict())
    assert webhook.requests.get(timeout=10)[1]["type"] == "failure"


def test_without_channels_the_callback_says_alerts_are_off(capsys, failed_predict):
    alerts.on_failure(failed_predict())
    # Airflow's structlog writes to the console (the task log, on a worker).
    out, err = capsys.readouterr()
    assert "Failure alerts are off" in out + err


def test_startup_message():
    assert alerts.startup_message({}).startswith("Failure alerts are off")
    assert alerts.startup_message(
        {"AIRFLOW_CONN_ALERT_APPRISE": "{...}", "AIRFLOW_CONN_ALERT_EMAIL": ""}
    ) == ("Failure alerts go to: alert_apprise")


def test_error_line_of_a_plain_exception(failed_predict):
    assert (
        alerts.first_error_line(ValueError("bad value\nmore"))
        == "ValueError: bad value"
    )
    assert alerts.first_error_line(None).startswith("unknown error")
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = failed_predict()["exception"]
    assert alerts.first_error_line(wrapped).startswith("error: cannot read")


def test_every_task_of_every_dag_alerts(dags):
    for dag in dags.values():
        for task in dag.tasks:
            assert alerts.on_failure in task.on_failure_callback, (
                dag.dag_id,
                task.task_id,
            )


# --- the callback's contract with Airflow, on the Task SDK's task runner --------------------


CALLBACK_DAGS = Path(__file__).parent / "callback_dags"


@pytest.fixture(scope="module")
def callback_dags():
    """The DAGs of callback_dags/, run with dag.test() against a migrated SQLite database in
    the tests' throw-away AIRFLOW_HOME. dag.test() syncs the default bundle to the database
    first, so for this module the only bundle is the callback_dags folder."""
    from airflow.configuration import conf
    from airflow.utils import db

    assert str(AIRFLOW_HOME) in os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    db.initdb()
    previous = conf.get("dag_processor", "dag_bundle_config_list")
    bundle = {
        "name": "callback-dags",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(CALLBACK_DAGS)},
    }
    conf.set("dag_processor", "dag_bundle_config_list", json.dumps([bundle]))
    try:
        spec = importlib.util.spec_from_file_location(
            "callback_contract", CALLBACK_DAGS / "callback_contract.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        conf.set("dag_processor", "dag_bundle_config_list", previous)


def run(dag):
    return dag.test(logical_date=SAMPLE_DATE)


def test_a_retry_that_succeeds_raises_no_alert(callback_dags, webhook):
    dag_run = run(callback_dags.retry_then_success)
    assert dag_run.state == "success"
    # It did fail once: the second try is the one that succeeded.
    assert dag_run.get_task_instance("flaky").try_number == 2
    assert webhook.requests.empty()


def test_a_final_failure_alerts_once(callback_dags, webhook):
    assert run(callback_dags.final_failure).state == "failed"
    _, payload = webhook.requests.get(timeout=10)
    tries = common.DEFAULT_ARGS["retries"] + 1
    assert "broken" in payload["message"]
    assert f"{tries} of {tries}" in payload["message"]
    assert "RuntimeError: permanent: every try fails" in payload["message"]
    assert webhook.requests.empty(), "one alert per failed task, not one per try"


def test_a_sensor_timeout_alerts(callback_dags, webhook):
    assert run(callback_dags.sensor_timeout).state == "failed"
    _, payload = webhook.requests.get(timeout=10)
    assert "wait_for_data" in payload["message"]
    assert "AirflowSensorTimeout" in payload["message"]
    # A sensor that timed out is not retried: the alert comes after its first try.
    tries = common.DEFAULT_ARGS["retries"] + 1
    assert f"1 of {tries}" in payload["message"]


def promotion_context(dags, tmp_path, monkeypatch, decision: dict) -> dict:
    """The success context of `promote`, with its promotion.json written under tmp_path."""
    path = tmp_path / "promotion.json"
    path.write_text(json.dumps(decision))
    monkeypatch.setattr(alerts, "promotion_file", lambda context: str(path))
    task = dags["train_model"].get_task("promote")
    return runtime_ti(task, SAMPLE_DATE).get_template_context()


def test_replacing_an_unusable_production_model_alerts(
    dags, webhook, tmp_path, monkeypatch
):
    task = dags["train_model"].get_task("promote")
    assert alerts.on_unusable_production_replaced in task.on_success_callback
    context = promotion_context(
        dags,
        tmp_path,
        monkeypatch,
        {
            "registered_model": "heart-disease-classifier",
            "version": "7",
            "outcome": "promoted",
            "production_unusable": True,
            "reason": "production version 6 is unusable by this build (format 1)",
        },
    )
    alerts.on_unusable_production_replaced(context)
    _, payload = webhook.requests.get(timeout=10)
    assert payload["title"] == (
        "Airflow: train_model.promote replaced an unusable production model for "
        "2026-01-05T00:00:00+00:00"
    )
    assert "Decision:" in payload["message"]
    assert (
        "heart-disease-classifier version 7 is production now: production "
        "version 6 is unusable by this build (format 1)"
    ) in payload["message"]


def test_an_ordinary_decision_sends_nothing(dags, webhook, tmp_path, monkeypatch):
    for decision in (
        {"outcome": "promoted", "production_unusable": False},
        {"outcome": "rejected", "production_unusable": False},
    ):
        alerts.on_unusable_production_replaced(
            promotion_context(dags, tmp_path, monkeypatch, decision)
        )
    # An unreadable decision is logged, not guessed at.
    monkeypatch.setattr(alerts, "promotion_file", lambda context: "/nonexistent.json")
    alerts.on_unusable_production_replaced(
        runtime_ti(dags["train_model"].get_task("promote")).get_template_context()
    )
    assert webhook.requests.empty()
