"""
### predict

Every day, scores that day's data with the production model:

1. `wait_for_data` waits for `/data/raw/{{ ds }}/data.csv` (written by `generate_data`);
2. `predict` runs `ml-predict` with the model that the Airflow Variable `model_path` names (a
   model directory, or a registry URI such as `models:/heart-disease-classifier@production`,
   the value the stack starts with) and writes `/data/predictions/{{ ds }}/predictions.csv`
   (`id`, `prediction`, `probability`: each row keyed by the input's `id`), then
   `provenance.json` next to it: the registered model, version, alias and run that scored
   the day, and the checksums and row counts of the model, the input and the predictions.
   A day's predictions are complete only when `provenance.json` is there and its
   `predictions.sha256` matches `predictions.csv`.

`model_path` is read when the task runs, so changing it (Admin > Variables, or
`airflow variables set model_path /data/models/2026-11-22`) switches the model for the next
run without touching this file. A missing Variable, or a path with no usable model, fails the
task with the stage's error in the log and writes no predictions; a bad model or bad data is
not retried (the alert goes out at once), an unreachable MLflow is, with backoff.

A run whose predictions are not written `ML_PREDICT_DEADLINE_MINUTES` (default 120) after it
was queued sends a *predictions late* alert through the alert channels (a deadline alert; a
run that has failed by then has alerted already and sends nothing more).

**catchup is off on purpose.** Scoring a past day is a decision (which model?), so it is made
by triggering that day by hand or with `airflow backfill create --dag-id predict`.
"""

from __future__ import annotations

from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference
from common import (
    DEFAULT_ARGS,
    MODEL_PATH,
    PREDICT_DEADLINE,
    PREDICTIONS_DIR,
    RAW_DIR,
    START_DATE,
    stage_task,
    wait_for_file,
)

with DAG(
    dag_id="predict",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["ml", "inference"],
    doc_md=__doc__,
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=PREDICT_DEADLINE,
        callback=AsyncCallback("alerts.predictions_late"),
    ),
):
    (
        wait_for_file("wait_for_data", f"{RAW_DIR}/data.csv")
        >> stage_task(
            "predict",
            [
                "--input-dir",
                RAW_DIR,
                "--model",
                MODEL_PATH,
                "--output-dir",
                PREDICTIONS_DIR,
            ],
        )
    )
