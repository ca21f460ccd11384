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
from collections.abc import Iterator
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


def promotion_context(
    dags, tmp_path, monkeypatch, decision: dict, task_id: str = "promote"
) -> dict:
    """The success context of `promote` (or another train_model task), with its
    promotion.json written under tmp_path."""
    path = tmp_path / "promotion.json"
    path.write_text(json.dumps(decision))
    monkeypatch.setattr(alerts, "promotion_file", lambda context: str(path))
    task = dags["train_model"].get_task(task_id)
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


# --- decisions a person should hear of ------------------------------------------------------

UNUSABLE_REPLACED = {
    "registered_model": "heart-disease-classifier",
    "version": "7",
    "outcome": "promoted",
    "production_unusable": True,
    "reason": "production version 6 is unusable by this build (format 1)",
}


def reviewed(answer: str | None, production_before: str | None = "4") -> dict:
    """promotion.json of a manual-mode run after `ml-promote review` (None: not yet)."""
    decision = {
        "registered_model": "heart-disease-classifier",
        "version": "5",
        "outcome": "awaiting_review",
        "production_unusable": False,
        "reason": "manual mode: a person decides whether production moves",
    }
    if answer is not None:
        decision["review"] = {
            "answer": answer,
            "by": None if answer == "timeout" else "alice",
            "comment": "",
            "responded_at": "2026-01-08T00:00:00+00:00",
            "production_before": production_before,
        }
    return decision


def test_each_notice_is_only_for_its_own_case():
    assert alerts.unusable_production_replaced(UNUSABLE_REPLACED) == (
        "replaced an unusable production model",
        (
            "heart-disease-classifier version 7 is production now: production version 6 "
            "is unusable by this build (format 1)"
        ),
    )
    assert alerts.approval_timed_out(reviewed("timeout")) == (
        "approval timed out",
        (
            "nobody answered in time, so heart-disease-classifier version 5 was rejected "
            "and production stays at version 4"
        ),
    )
    # The very first model: there was no production version to stay at.
    assert alerts.approval_timed_out(reviewed("timeout", None))[1].endswith(
        "production stays at version none"
    )
    others = [reviewed(None), reviewed("approve"), reviewed("reject")]
    for decision in [reviewed("timeout"), *others]:
        assert alerts.unusable_production_replaced(decision) is None, decision
    for decision in [UNUSABLE_REPLACED, *others]:
        assert alerts.approval_timed_out(decision) is None, decision


def test_a_timed_out_approval_alerts(dags, webhook, tmp_path, monkeypatch):
    task = dags["train_model"].get_task("record_review")
    assert alerts.on_approval_timed_out in task.on_success_callback
    assert alerts.on_approval_timed_out.notice is alerts.approval_timed_out
    context = promotion_context(
        dags, tmp_path, monkeypatch, reviewed("timeout"), "record_review"
    )
    alerts.on_approval_timed_out(context)
    _, payload = webhook.requests.get(timeout=10)
    assert payload["title"] == (
        "Airflow: train_model.record_review approval timed out for "
        "2026-01-05T00:00:00+00:00"
    )
    assert "Decision:" in payload["message"]
    assert "production stays at version 4" in payload["message"]
    assert "/tasks/record_review" in payload["message"]
    assert webhook.requests.empty()


def test_an_answered_approval_sends_nothing(dags, webhook, tmp_path, monkeypatch):
    for answer in ("approve", "reject"):
        alerts.on_approval_timed_out(
            promotion_context(
                dags, tmp_path, monkeypatch, reviewed(answer), "record_review"
            )
        )
    assert webhook.requests.empty()


# --- deadline alerts: the run-level alert and the triggerer's callbacks -------------------

AIRFLOW_UI = "http://airflow.example.test:8080"


def deadline_context(dag_id: str, day: str, state: str = "running") -> dict:
    """What Airflow passes a deadline callback (Deadline.handle_miss): the run as the REST
    API shows it (DAGRunResponse in JSON) and the deadline."""
    from datetime import datetime

    run_id = f"scheduled__{day}T00:00:00+00:00"
    return {
        "dag_run": {
            "dag_run_id": run_id,
            "dag_id": dag_id,
            "logical_date": f"{day}T00:00:00Z",
            "queued_at": f"{day}T00:00:02.512000Z",
            "start_date": f"{day}T00:00:03.001000Z",
            "end_date": None,
            "run_after": f"{day}T00:00:00Z",
            "run_type": "scheduled",
            "state": state,
            "triggered_by": "timetable",
            "triggering_user_name": None,
            "conf": {},
        },
        "deadline": {
            "id": "0198f3c2-5a7e-7c1d-9b44-2f6d1e0a9c11",
            "deadline_time": datetime.fromisoformat(f"{day}T02:00:02.512+00:00"),
        },
    }


def run_url(dag_id: str, day: str) -> str:
    return f"{AIRFLOW_UI}/dags/{dag_id}/runs/scheduled__{day}T00%3A00%3A00%2B00%3A00"


@pytest.fixture
def airflow_ui(monkeypatch):
    """The UI's address, as the stack gives it to Airflow ([api] base_url)."""
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", AIRFLOW_UI + "/")


@pytest.mark.parametrize("state", ["success", "failed"])
def test_a_finished_run_gets_no_deadline_alert(state):
    context = deadline_context("predict", "2026-01-05", state)
    assert alerts.run_alert(context, "predictions late", "why") is None


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_run_still_going_gets_an_alert_about_the_run(airflow_ui, state):
    context = deadline_context("predict", "2026-01-05", state)
    alert = alerts.run_alert(context, "predictions late", "no predictions yet")
    assert alert.title == "Airflow: predict predictions late for 2026-01-05T00:00:00Z"
    assert alert.log_url == run_url("predict", "2026-01-05")
    assert [label for label, _ in alert.lines()] == [
        "DAG",
        "Logical date",
        "Why",
        "Run",
    ]
    text = alert.text()
    assert f"Run:          {run_url('predict', '2026-01-05')}" in text
    assert "Why:          no predictions yet" in text
    for label in ("Task:", "Try:", "Log:", "0 of 0"):
        assert label not in text, label
    assert f"<a href='{run_url('predict', '2026-01-05')}'>" in alert.html()


def test_a_task_alert_keeps_its_task_and_try():
    alert = alerts.Alert(
        dag_id="predict",
        task_id="predict",
        logical_date="2026-01-05T00:00:00+00:00",
        try_number=2,
        max_tries=7,
        error="error: boom",
        log_url="http://x/log",
    )
    assert [label for label, _ in alert.lines()] == [
        "DAG",
        "Task",
        "Logical date",
        "Try",
        "Error",
        "Log",
    ]


@pytest.fixture
def channel_calls(monkeypatch) -> list[str]:
    """Every channel's notifier that send_async builds, recorded (and still built)."""
    calls: list[str] = []
    for conn_id, make in list(alerts._CHANNELS.items()):

        def recording(conn, alert, conn_id=conn_id, make=make):
            calls.append(conn_id)
            return make(conn, alert)

        monkeypatch.setitem(alerts._CHANNELS, conn_id, recording)
    return calls


@pytest.fixture
def promotions(tmp_path, monkeypatch):
    """The triggerer's /data/models under tmp_path: write(day, decision); ``read`` lists
    the promotion.json paths the callback asked for."""
    read: list[str] = []
    original = alerts._read_decision

    def redirected(path: str):
        read.append(path)
        assert path.startswith("/data/models/"), path
        return original(str(tmp_path / path.removeprefix("/data/")))

    monkeypatch.setattr(alerts, "_read_decision", redirected)

    def write(day: str, decision: dict) -> None:
        directory = tmp_path / "models" / day
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "promotion.json").write_text(json.dumps(decision))

    write.read = read
    return write


@pytest.mark.parametrize("callback", ["predictions_late", "approval_reminder"])
def test_without_channels_a_deadline_sends_nothing(
    callback, channel_calls, promotions, caplog
):
    import asyncio

    promotions("2026-01-04", reviewed(None))
    dag_id = "predict" if callback == "predictions_late" else "train_model"
    context = deadline_context(dag_id, "2026-01-04")
    assert asyncio.run(getattr(alerts, callback)(context=context)) is None
    assert channel_calls == []
    assert "Failure alerts are off" in caplog.text


@pytest.mark.parametrize("callback", ["predictions_late", "approval_reminder"])
def test_a_finished_run_sends_nothing_when_its_deadline_fires(
    callback, webhook, monkeypatch, promotions
):
    import asyncio

    sent: list = []

    async def send(alert):
        sent.append(alert)

    monkeypatch.setattr(alerts, "send_async", send)
    promotions("2026-01-04", reviewed(None))
    dag_id = "predict" if callback == "predictions_late" else "train_model"
    for state in ("success", "failed"):
        context = deadline_context(dag_id, "2026-01-04", state)
        asyncio.run(getattr(alerts, callback)(context=context))
    assert sent == []
    # And it really sends when the run is still going (the patched sender gets it).
    asyncio.run(
        getattr(alerts, callback)(context=deadline_context(dag_id, "2026-01-04"))
    )
    assert len(sent) == 1
    assert webhook.requests.empty()


def test_predictions_late_reaches_a_real_webhook(webhook, airflow_ui):
    import asyncio

    asyncio.run(
        alerts.predictions_late(context=deadline_context("predict", "2026-01-05"))
    )
    _, payload = webhook.requests.get(timeout=10)
    assert payload["title"] == (
        "Airflow: predict predictions late for 2026-01-05T00:00:00Z"
    )
    message = payload["message"]
    assert (
        "no predictions for 2026-01-05 by 2026-01-05 02:00:02.512000+00:00" in message
    )
    assert "the run is running (queued at 2026-01-05T00:00:02.512000Z)" in message
    assert "/data/predictions/2026-01-05/" in message
    assert run_url("predict", "2026-01-05") in message
    assert "Task:" not in message
    assert webhook.requests.empty()


def required_actions_url(day: str) -> str:
    """The approval's Required Actions page, as Airflow's HITLOperator links to it."""
    from types import SimpleNamespace
    from urllib.parse import unquote

    from rollout import ReviewRequest

    ti = SimpleNamespace(
        dag_id="train_model",
        run_id=f"scheduled__{day}T00:00:00+00:00",
        task_id="approval",
        map_index=-1,
    )
    link = ReviewRequest(task_id="approval").generate_link_to_ui(
        task_instance=ti, base_url=AIRFLOW_UI
    )
    return unquote(link.split("?")[0])


def test_the_approval_reminder_links_to_the_pending_approval(
    webhook, airflow_ui, promotions
):
    import asyncio
    from urllib.parse import unquote

    promotions("2026-01-04", reviewed(None))
    asyncio.run(
        alerts.approval_reminder(context=deadline_context("train_model", "2026-01-04"))
    )
    assert promotions.read == ["/data/models/2026-01-04/promotion.json"]
    _, payload = webhook.requests.get(timeout=10)
    assert payload["title"] == (
        "Airflow: train_model approval pending for 2026-01-04T00:00:00Z"
    )
    message = payload["message"]
    url = (
        f"{AIRFLOW_UI}/dags/train_model/runs/scheduled__2026-01-04T00%3A00%3A00%2B00%3A00"
        "/tasks/approval/required_actions"
    )
    assert f"answer it at {url}" in message
    # The same page Airflow itself links to (less the quoting of the run id).
    assert unquote(url) == required_actions_url("2026-01-04")
    assert "heart-disease-classifier version 5 still awaits approval" in message
    assert run_url("train_model", "2026-01-04") in message
    assert webhook.requests.empty()


@pytest.mark.parametrize(
    "decision", [reviewed("reject"), None], ids=["answered", "no-promotion-json"]
)
def test_without_a_pending_approval_the_reminder_says_the_run_is_still_going(
    webhook, airflow_ui, promotions, decision
):
    import asyncio

    if decision is not None:
        promotions("2026-01-04", decision)
    asyncio.run(
        alerts.approval_reminder(context=deadline_context("train_model", "2026-01-04"))
    )
    _, payload = webhook.requests.get(timeout=10)
    assert payload["title"] == (
        "Airflow: train_model still running for 2026-01-04T00:00:00Z"
    )
    assert "no approval is pending" in payload["message"]
    assert "required_actions" not in payload["message"]


def test_the_triggerer_runs_the_reminder_with_its_context(
    dags, webhook, airflow_ui, promotions
):
    """Airflow's own CallbackTrigger, as the triggerer runs a deadline's AsyncCallback: the
    path from the DAG, the context in the callback's kwargs."""
    import asyncio

    from airflow.triggers.callback import CallbackTrigger

    [deadline] = dags["train_model"].deadline
    promotions("2026-01-04", reviewed(None))
    trigger = CallbackTrigger(
        callback_path=deadline.callback.path,
        callback_kwargs={
            **deadline.callback.kwargs,
            "context": deadline_context("train_model", "2026-01-04"),
        },
    )

    async def events():
        return [event.payload async for event in trigger.run()]

    states = [str(payload["state"]) for payload in asyncio.run(events())]
    assert states == ["running", "success"], states
    assert "required_actions" in webhook.requests.get(timeout=10)[1]["message"]


def test_a_failing_channel_fails_the_deadline_callback(
    dags, webhook, airflow_ui, monkeypatch
):
    """The callback's state says a channel did not get the alert; the others still do."""
    import asyncio

    from airflow.triggers.callback import CallbackTrigger

    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERT_EMAIL", "smtp://127.0.0.1:1?to=x%40example.invalid"
    )
    [deadline] = dags["predict"].deadline
    trigger = CallbackTrigger(
        callback_path=deadline.callback.path,
        callback_kwargs={"context": deadline_context("predict", "2026-01-05")},
    )

    async def events():
        return [event.payload async for event in trigger.run()]

    payloads = asyncio.run(events())
    assert [str(p["state"]) for p in payloads] == ["running", "failed"]
    assert "alert not delivered through alert_email" in payloads[-1]["body"]
    assert "predictions late" in webhook.requests.get(timeout=10)[1]["title"]
