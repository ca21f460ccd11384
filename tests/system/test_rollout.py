"""The person's part of a rollout, on the real stack, answered through Airflow's REST API.

With the Variable ``promotion_mode`` = ``manual``, ``train_model`` stops after ``promote``
at its ``approval`` task (Airflow's human-in-the-loop operator) and ``record_review`` acts
on the answer in the ml-promote container. The tests answer the approval the way its page's
buttons do (``PATCH .../hitlDetails``) and check what MLflow and ``promotion.json`` say:

- *Approve*: production moves to the challenger; the version's tags name the respondent;
- *Reject*: nothing moves; the rejection and its author are recorded;
- no answer within ``approval_timeout_hours``: a rejection by nobody, and an alert;
- ``set_production`` (triggered with validated params) rolls production back, recording
  who and why; invalid params are refused at the trigger;
- a ``predict`` run whose data never comes misses its deadline and alerts.

Runs after test_e2e.py on the same session stack (which holds a production model by then,
or gets one from the first week here). Uses days no other test trains on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from alert_channel import Receiver, apprise_connection, running_receiver
from conftest import PREDICT_DEADLINE_MINUTES, Stack
from pipeline_runs import (
    DAG_IDS,
    REGISTERED_MODEL,
    RUN_TIMEOUT,
    AirflowClient,
    run_green,
    training_day,
    version_tags,
)
from run_pipeline import AirflowError

REGISTERED = REGISTERED_MODEL
SUNDAY = training_day()
APPROVE_DAY, REJECT_DAY, TIMEOUT_DAY = (
    SUNDAY - timedelta(days=n) for n in (21, 28, 35)
)
# A day nobody generates data for: its predict run waits until its deadline passes.
LATE_DAY = date(2026, 1, 13)
# The session stack's predict deadline (conftest.py sets ML_PREDICT_DEADLINE_MINUTES).
DEADLINE_SLACK_S = 180


@pytest.fixture(scope="module")
def airflow(stack: Stack) -> AirflowClient:
    client = AirflowClient(stack.airflow_url, stack.username, stack.password)
    client.wait_for_dags((*DAG_IDS, "set_production"))
    return client


@pytest.fixture(scope="module")
def receiver(stack: Stack, airflow: AirflowClient) -> Iterator[Receiver]:
    with running_receiver(stack) as running, apprise_connection(airflow):
        yield running


@pytest.fixture(scope="module")
def late_predict(airflow: AirflowClient, receiver: Receiver) -> Iterator[dict]:
    """A predict run for a day without data, started first so that its deadline passes
    while the approvals below are answered."""
    airflow.set_paused("predict", False)
    run = airflow.ensure_run("predict", LATE_DAY)
    started = time.monotonic()
    try:
        yield {"run": run, "started": started}
    finally:
        airflow.request(
            "PATCH",
            f"/dags/predict/dagRuns/{run['dag_run_id']}",
            {"state": "failed"},
        )


def production(stack: Stack) -> str:
    return stack.mlflow_rest(
        "GET", "registered-models/alias", name=REGISTERED, alias="production"
    )["model_version"]["version"]


def decision(stack: Stack, day: date) -> dict:
    path = stack.data_dir / "models" / day.isoformat() / "promotion.json"
    return json.loads(path.read_text())


def awaiting_approval(airflow: AirflowClient, day: date) -> dict:
    """Data and a manual-mode train_model run for ``day``, waiting at its approval."""
    run_green(airflow, "generate_data", day)
    airflow.set_paused("train_model", False)
    return airflow.open_approval(day, RUN_TIMEOUT)


def finish(airflow: AirflowClient, run: dict) -> dict[str, str]:
    key = ("train_model", run["dag_run_id"])
    final = airflow.wait_for_runs([key], RUN_TIMEOUT)[key]
    states = {
        ti["task_id"]: ti["state"]
        for ti in airflow.task_instances("train_model", run["dag_run_id"])
    }
    if final["state"] != "success":
        failed = [t for t, state in states.items() if state == "failed"]
        logs = {
            t: airflow.task_log("train_model", run["dag_run_id"], t, 1)[-3000:]
            for t in failed
        }
        pytest.fail(
            f"train_model {run['dag_run_id']} {final['state']}: {states}; {logs}"
        )
    return states


def test_approve_moves_production_and_names_the_respondent(
    stack: Stack, airflow: AirflowClient, late_predict: dict
) -> None:
    run = awaiting_approval(airflow, APPROVE_DAY)
    waiting = decision(stack, APPROVE_DAY)
    assert waiting["outcome"] == "awaiting_review", waiting
    before = production(stack) if waiting["production"] else None
    assert before == (waiting["production"] or {}).get("version")

    # The request is listed as pending, with the comparison on its page.
    [pending] = [
        p
        for p in airflow.pending_approvals()
        if p["task_instance"]["dag_run_id"] == run["dag_run_id"]
    ]
    assert pending["options"] == ["Approve", "Reject"]
    assert pending["defaults"] == ["Reject"]
    body = pending["body"]
    assert (
        f"{REGISTERED} version {waiting['version']}, trained on {APPROVE_DAY}" in body
    )
    assert f"| ROC AUC | {waiting['challenger_roc_auc']:.4f} |" in body, body
    assert f"/#/experiments/{waiting['experiment_id']}/runs/{waiting['run_id']}" in body
    assert stack.mlflow_url.replace("127.0.0.1", "localhost") in body or (
        "http://localhost:" in body
    ), body

    airflow.answer(
        "train_model",
        run["dag_run_id"],
        "approval",
        "Approve",
        {"comment": "checked the interval; fresher data"},
    )
    states = finish(airflow, run)
    assert states["record_review"] == "success", states

    after = decision(stack, APPROVE_DAY)
    assert after["outcome"] == "promoted", after
    assert after["review"]["answer"] == "approve"
    assert after["review"]["by"] == stack.username
    assert after["review"]["comment"] == "checked the interval; fresher data"
    assert after["review"]["production_before"] == before
    assert production(stack) == waiting["version"]
    tags = version_tags(stack, waiting["version"])
    assert tags["approval.answer"] == "approved"
    assert tags["approval.by"] == stack.username
    assert tags["approval.comment"] == "checked the interval; fresher data"
    assert tags["approval.responded_at"] == after["review"]["responded_at"]
    assert tags["promotion.outcome"] == "promoted"
    if before:
        assert (
            version_tags(stack, before)["promotion.replaced_by"] == waiting["version"]
        )


def test_reject_leaves_production(stack: Stack, airflow: AirflowClient) -> None:
    run = awaiting_approval(airflow, REJECT_DAY)
    waiting = decision(stack, REJECT_DAY)
    before = production(stack)
    airflow.answer(
        "train_model", run["dag_run_id"], "approval", "Reject", {"comment": "not now"}
    )
    finish(airflow, run)
    after = decision(stack, REJECT_DAY)
    assert after["outcome"] == "rejected", after
    assert after["review"]["answer"] == "reject"
    assert after["review"]["by"] == stack.username
    assert production(stack) == before
    tags = version_tags(stack, waiting["version"])
    assert tags["approval.answer"] == "rejected"
    assert tags["approval.by"] == stack.username
    assert tags["approval.comment"] == "not now"
    assert tags["promotion.outcome"] == "rejected"


def test_no_answer_in_time_is_a_rejection_and_alerts(
    stack: Stack, airflow: AirflowClient, receiver: Receiver
) -> None:
    # 0.01 h = 36 s; the scheduler's sweep looks every 15 s.
    airflow.set_variable("approval_timeout_hours", "0.01")
    try:
        run = awaiting_approval(airflow, TIMEOUT_DAY)
    finally:
        airflow.set_variable("approval_timeout_hours", "72")
    waiting = decision(stack, TIMEOUT_DAY)
    before = production(stack)
    finish(airflow, run)
    after = decision(stack, TIMEOUT_DAY)
    assert after["outcome"] == "rejected", after
    assert after["review"]["answer"] == "timeout"
    assert after["review"]["by"] is None
    assert production(stack) == before
    tags = version_tags(stack, waiting["version"])
    assert tags["approval.answer"] == "timed_out"
    assert tags["approval.by"] == "nobody"

    deadline = time.monotonic() + 60
    while not (
        alerts := [
            a
            for a in receiver.alerts()
            if "train_model.record_review approval timed out" in a["payload"]["title"]
        ]
    ):
        assert time.monotonic() < deadline, f"no alert; got {receiver.alerts()}"
        time.sleep(1)
    [alert] = alerts
    assert f"version {waiting['version']} was rejected" in alert["payload"]["message"]
    assert f"production stays at version {before}" in alert["payload"]["message"]


def test_set_production_rolls_back_with_who_and_why(
    stack: Stack, airflow: AirflowClient
) -> None:
    current = production(stack)
    # Back to the production before the approval; without one, pin the rejected version.
    target = (
        decision(stack, APPROVE_DAY)["review"]["production_before"]
        or decision(stack, REJECT_DAY)["version"]
    )
    assert target != current

    # The trigger form's checks: Airflow refuses params that do not match their schema.
    for conf in (
        {"version": 0, "reason": "bad version"},
        {"version": 1, "reason": "no"},
    ):
        with pytest.raises(AirflowError) as refused:
            airflow.request(
                "POST",
                "/dags/set_production/dagRuns",
                {"logical_date": None, "conf": conf},
            )
        assert refused.value.status == 400, refused.value

    airflow.set_paused("set_production", False)

    def trigger(version: int, reason: str) -> tuple[str, str]:
        run = airflow.request(
            "POST",
            "/dags/set_production/dagRuns",
            {"logical_date": None, "conf": {"version": version, "reason": reason}},
        )
        key = ("set_production", run["dag_run_id"])
        return key, airflow.wait_for_runs([key], RUN_TIMEOUT)[key]["state"]

    # An unknown version gets through the form (it is a whole number) and is refused by
    # the stage: the task fails for good and production stays.
    key, state = trigger(9999, "no such version")
    assert state == "failed"
    [ti] = airflow.task_instances(*key)
    assert ti["try_number"] == 1, "exit 65 is not retried"
    assert production(stack) == current

    key, state = trigger(int(target), "roll back: drill on the stack")
    assert state == "success"
    assert production(stack) == target
    tags = version_tags(stack, target)
    assert tags["production.set_by"] == stack.username
    assert tags["production.reason"] == "roll back: drill on the stack"
    assert tags["production.previous_version"] == current
    assert version_tags(stack, current)["promotion.replaced_by"] == target


def test_late_predictions_alert(
    stack: Stack, airflow: AirflowClient, receiver: Receiver, late_predict: dict
) -> None:
    run = late_predict["run"]
    deadline = (
        late_predict["started"] + 60 * PREDICT_DEADLINE_MINUTES + DEADLINE_SLACK_S
    )
    while not (
        alerts := [
            a
            for a in receiver.alerts()
            if a["payload"]["title"].startswith(
                f"Airflow: predict predictions late for {LATE_DAY}"
            )
        ]
    ):
        assert time.monotonic() < deadline, f"no late alert; got {receiver.alerts()}"
        time.sleep(2)
    [alert] = alerts
    body = alert["payload"]["message"]
    assert f"no predictions for {LATE_DAY}" in body, body
    assert f"/dags/predict/runs/{quote(run['dag_run_id'], safe='')}" in body, body
    assert airflow.dag_run("predict", run["dag_run_id"])["state"] == "running"
