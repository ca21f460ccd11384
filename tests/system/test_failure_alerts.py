"""A failed task on the real stack raises an alert that reaches a receiver.

A webhook receiver runs as one of the project's own containers (the ml-python image with
alert_receiver.py) on the stack's network, as ``alert-receiver``. The test points the
Apprise channel (connection ``alert_apprise``) at it, corrupts ``data.csv`` of one day, and
runs ``predict`` for that day with a real model: the stage rejects the file with exit
status 65 (bad input), Airflow fails the task on its first try without retrying, and the callback of dags/alerts.py, running in the scheduler's task
process, posts the alert. The test checks the alert's fields and that it came once, not once
per try. Nothing is mocked; the receiver is removed afterwards, also when the test fails.

Runs after test_e2e.py (file order) on the same session stack, but needs nothing from it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from alert_channel import Receiver, apprise_connection, running_receiver
from conftest import Stack
from pipeline_runs import (
    DAG_IDS,
    RUN_TIMEOUT,
    AirflowClient,
    trained_model,
    training_day,
)

MODEL_DAY = training_day()
# A day no other test generates data for: its data.csv is the corrupted copy.
CORRUPT_DAY = date(2026, 1, 6)


@pytest.fixture(scope="module")
def receiver(stack: Stack) -> Iterator[Receiver]:
    with running_receiver(stack) as running:
        yield running


@pytest.fixture(scope="module")
def airflow(stack: Stack) -> AirflowClient:
    client = AirflowClient(stack.airflow_url, stack.username, stack.password)
    client.wait_for_dags(DAG_IDS)
    return client


@pytest.fixture(scope="module")
def apprise_channel(airflow: AirflowClient, receiver: Receiver) -> Iterator[None]:
    """The alert_apprise connection, pointing at the receiver (alert_channel.py)."""
    with apprise_connection(airflow):
        yield


def corrupt_copy(source: Path, target: Path) -> None:
    """``source`` with the age in its third data row replaced by text."""
    lines = source.read_text().splitlines()
    column = lines[0].split(",").index("age")
    cells = lines[3].split(",")
    cells[column] = "not-a-number"
    lines[3] = ",".join(cells)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")


def test_without_channels_the_stack_says_alerts_are_off(stack: Stack) -> None:
    logs = stack.compose("logs", "--no-color", "airflow-init").stdout
    assert "Failure alerts are off" in logs


def test_a_failed_predict_alerts_the_receiver(
    stack: Stack, airflow: AirflowClient, receiver: Receiver, apprise_channel: None
) -> None:
    model_path = trained_model(airflow, MODEL_DAY)
    airflow.set_variable("model_path", model_path)
    raw = stack.data_dir / "raw"
    corrupt_copy(
        raw / MODEL_DAY.isoformat() / "data.csv",
        raw / CORRUPT_DAY.isoformat() / "data.csv",
    )
    shutil.rmtree(
        stack.data_dir / "predictions" / CORRUPT_DAY.isoformat(), ignore_errors=True
    )

    airflow.set_paused("predict", False)
    run = airflow.ensure_run("predict", CORRUPT_DAY)
    if run["state"] == "failed":
        airflow.rerun_failed("predict", run["dag_run_id"])
    key = ("predict", run["dag_run_id"])
    final = airflow.wait_for_runs([key], RUN_TIMEOUT)[key]
    assert final["state"] == "failed"
    [ti] = [t for t in airflow.task_instances(*key) if t["task_id"] == "predict"]
    assert ti["state"] == "failed"
    tries = ti["try_number"]
    assert tries == 1, "bad input (exit 65) fails for good on the first try, no retry"
    assert not (
        stack.data_dir / "predictions" / CORRUPT_DAY.isoformat() / "predictions.csv"
    ).exists()

    # The callback runs right after the final try, in the same task process.
    deadline = time.monotonic() + 60
    while not (
        alerts := [
            a for a in receiver.alerts() if "predict.predict" in a["payload"]["title"]
        ]
    ):
        assert time.monotonic() < deadline, (
            f"no alert arrived; receiver got {receiver.alerts()}"
        )
        time.sleep(1)
    time.sleep(3)
    alerts = [
        a for a in receiver.alerts() if "predict.predict" in a["payload"]["title"]
    ]
    assert len(alerts) == 1, f"one alert for the failed task, not one per try: {alerts}"

    alert = alerts[0]
    message = alert["payload"]["message"]
    print(f"--- the alert, as received ---\n{alert['payload']['title']}\n{message}")
    assert alert["path"] == "/alerts"
    assert alert["payload"]["type"] == "failure"
    fields = {
        label.strip(): value.strip()
        for label, value in (line.split(":", 1) for line in message.splitlines())
    }
    assert fields["DAG"] == "predict"
    assert fields["Task"] == "predict"
    assert fields["Logical date"] == f"{CORRUPT_DAY.isoformat()}T00:00:00+00:00"
    assert fields["Try"] == "1 of 1"
    # The stage's own error line, naming the bad file.
    assert fields["Error"].startswith("error:"), fields["Error"]
    assert f"{CORRUPT_DAY.isoformat()}/data.csv" in fields["Error"]
    # The link opens the task's log in the UI of this stack.
    expected_url = (
        f"http://localhost:{stack.airflow_url.rsplit(':', 1)[1]}/dags/predict/runs/"
        f"{quote(run['dag_run_id'], safe='')}/tasks/predict?try_number={tries}"
    )
    assert fields["Log"] == expected_url
