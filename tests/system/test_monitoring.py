"""monitor_model on the real stack: the production model judged on the labels of a day.

Runs after test_e2e.py (file order) on the same session stack: it adopts (or makes) the
green ``predict`` run for today, scored by the registry's production version, then runs
``monitor_model`` with the Variable ``label_delay_days`` = 0 so that today's run evaluates
today. The report's figures are checked against ROC AUC and log loss computed here from the
files themselves (pairs counted, no library), the MLflow run of the day against the report,
and the reaction against the verdict. The loop through decay and retraining is a drill
(tests/drills/test_monitoring_loop.py).
"""

from __future__ import annotations

import bisect
import csv
import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import Stack
from pipeline_runs import (
    DAG_IDS,
    REGISTERED_MODEL,
    AirflowClient,
    run_green,
    trained_model,
    training_day,
)

TODAY = datetime.now(UTC).date()
EXPERIMENT = "heart-disease-monitoring"


@pytest.fixture(scope="module")
def airflow(stack: Stack) -> AirflowClient:
    client = AirflowClient(stack.airflow_url, stack.username, stack.password)
    client.wait_for_dags((*DAG_IDS, "monitor_model"))
    return client


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def pairwise_auc(labels: list[int], scores: list[float]) -> float:
    """ROC AUC as the share of (positive, negative) pairs in the right order, ties counted
    half: for each positive, the negatives below it and half of those equal to it."""
    negatives = sorted(s for s, y in zip(scores, labels, strict=True) if y == 0)
    positives = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    total = sum(
        bisect.bisect_left(negatives, p)
        + (bisect.bisect_right(negatives, p) - bisect.bisect_left(negatives, p)) / 2
        for p in positives
    )
    return total / (len(positives) * len(negatives))


def log_loss(labels: list[int], probabilities: list[float]) -> float:
    eps = 1e-15
    return -sum(
        math.log(min(max(p, eps), 1 - eps))
        if y
        else math.log(min(max(1 - p, eps), 1 - eps))
        for y, p in zip(labels, probabilities, strict=True)
    ) / len(labels)


def monitoring_run(stack: Stack, day: date) -> dict:
    experiment = stack.mlflow_rest(
        "GET", "experiments/get-by-name", experiment_name=EXPERIMENT
    )["experiment"]
    runs = stack.mlflow_rest(
        "POST",
        "runs/search",
        experiment_ids=[experiment["experiment_id"]],
        filter=f"tags.`mlflow.runName` = 'monitor-{day.isoformat()}'",
    ).get("runs", [])
    finished = [r for r in runs if r["info"]["status"] == "FINISHED"]
    assert finished, f"no FINISHED run monitor-{day} in {EXPERIMENT}: {runs}"
    return finished[0]


def test_monitor_model_judges_today_on_its_labels(
    stack: Stack, airflow: AirflowClient
) -> None:
    # The production model and today's predictions (adopted from test_e2e.py when it ran).
    trained_model(airflow, training_day())
    run_green(airflow, "predict", TODAY)
    airflow.set_variable("label_delay_days", "0")
    try:
        run = run_green(airflow, "monitor_model", TODAY)
    finally:
        airflow.set_variable("label_delay_days", "1")
    day = TODAY.isoformat()
    states = {
        ti["task_id"]: ti["state"]
        for ti in airflow.task_instances("monitor_model", run["dag_run_id"])
    }

    out = stack.data_dir / "monitoring" / day
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == 1 and report["date"] == day
    provenance = json.loads(
        (stack.data_dir / "predictions" / day / "provenance.json").read_text()
    )
    model = report["model"]
    assert model["registered_model"] == REGISTERED_MODEL
    assert model["version"] == provenance["model"]["version"]
    # The version that scored the day, never the moving alias.
    assert model["uri"] == f"models:/{REGISTERED_MODEL}/{model['version']}"

    # Figures recomputed here from the files the stages wrote.
    predictions = read_rows(stack.data_dir / "predictions" / day / "predictions.csv")
    labels = {
        r["id"]: int(r["target"])
        for r in read_rows(stack.data_dir / "raw" / day / "target.csv")
    }
    joined = [(labels[p["id"]], float(p["probability"])) for p in predictions]
    y = [label for label, _ in joined]
    p = [prob for _, prob in joined]
    assert report["rows"]["joined"] == len(joined) == len(predictions)
    assert report["rows"]["unlabeled"] == 0 and report["rows"]["unpredicted"] == 0
    quality = report["quality"]
    assert quality["roc_auc"] == pytest.approx(pairwise_auc(y, p), abs=1e-9)
    assert quality["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-9)
    assert quality["observed_positive_rate"] == pytest.approx(sum(y) / len(y))
    assert sum(b["count"] for b in quality["calibration"]) == len(joined)
    features = {f["name"] for f in report["drift"]["features"]}
    assert len(features) == 13 and "age" in features

    html = (out / "report.html").read_text()
    assert "<svg" in html and "<script" not in html.lower()

    # The day's MLflow run, tagged with the version, its metrics stepped by day.
    logged = monitoring_run(stack, TODAY)
    tags = {t["key"]: t["value"] for t in logged["data"].get("tags", [])}
    assert tags["model.version"] == model["version"]
    assert tags["verdict"] == report["verdict"]
    assert tags["data_date"] == day
    metrics = {m["key"]: m for m in logged["data"]["metrics"]}
    assert metrics["roc_auc"]["value"] == pytest.approx(quality["roc_auc"])
    epoch_days = (TODAY - date(1970, 1, 1)).days
    assert int(metrics["roc_auc"]["step"]) == epoch_days
    assert {f"psi.{name}" for name in features} <= set(metrics)

    # The reaction follows the verdict: only a decay starts a retraining.
    expected_retrain = "success" if report["verdict"] == "decay" else "skipped"
    assert states == {
        "pick_day": "success",
        "wait_for_predictions": "success",
        "wait_for_labels": "success",
        "monitor": "success",
        "alert": "success",
        "needs_retraining": "success",
        "retrain": expected_retrain,
    }, (states, report["verdict"], report["reasons"])
    print(
        f"monitor_model {day}: verdict {report['verdict']}, live ROC AUC "
        f"{quality['roc_auc']:.4f} vs validation {model['validation_roc_auc']:.4f}, "
        f"max PSI {report['drift']['max_psi']:.3f}"
    )


def test_a_bad_label_delay_fails_the_run_at_pick_day(airflow: AirflowClient) -> None:
    airflow.set_variable("label_delay_days", "yesterday")
    try:
        # A day no other test uses; the run fails before it looks for any file.
        day = TODAY - timedelta(days=200)
        run = airflow.ensure_run("monitor_model", day)
        key = ("monitor_model", run["dag_run_id"])
        final = airflow.wait_for_runs([key], 300)[key]
    finally:
        airflow.set_variable("label_delay_days", "1")
    assert final["state"] == "failed"
    states = {
        ti["task_id"]: ti["state"]
        for ti in airflow.task_instances("monitor_model", run["dag_run_id"])
    }
    assert states["pick_day"] == "failed", states
    assert states["monitor"] in ("upstream_failed", None), states
    log = airflow.task_log("monitor_model", run["dag_run_id"], "pick_day", 1)
    assert "label_delay_days" in log and "yesterday" in log, log[-2000:]
    # Gone again, so that the DAG list shows monitor_model's real runs (test_screenshots).
    airflow.request(
        "DELETE",
        f"/dags/monitor_model/dagRuns/{quote(run['dag_run_id'], safe='')}",
        ok=(204,),
    )
