"""
### train_model

Every week, trains a classifier on the data of the run's logical date:

1. `wait_for_data` and `wait_for_target` wait for `/data/raw/{{ ds }}/data.csv` and
   `target.csv` (written by `generate_data`);
2. `preprocess` joins and cleans them into `/data/processed/{{ ds }}/train_data.csv`;
3. `split` writes `train.csv` and `val.csv` next to it;
4. `train` fits the model on `train.csv` with the flags of the Variable `train_args` (any
   `ml-train` flags, such as `--model random-forest --n-trees 200`; empty: logistic
   regression) and saves it to `/data/models/{{ ds }}/` (`model.bin`, `params.json`);
5. `validate` scores it on `val.csv` and writes `metrics.json` next to the model;
6. `promote` registers it in MLflow as the `challenger` of `heart-disease-classifier`, scores
   it and the current `production` version on the same `val.csv`, and moves `production`
   (which `predict` follows) only when the challenger's ROC AUC reaches the Variable
   `promotion_min_roc_auc` (default 0.75) and, if there is a production model, the lower end
   of the 95% paired-bootstrap interval of the ROC AUC difference is above the Variable
   `promotion_min_improvement` (default 0). If MLflow or the production model cannot be
   reached, nothing moves and the task is retried. The decision is in `promotion.json`
   next to the model.

With the Variable `promotion_mode` = `manual`, `promote` stops at `challenger` and a person
decides (in `auto` mode `needs_review` skips the other two, and the gate alone decides):

7. `needs_review` lets the approval run only when `promotion.json` awaits review;
8. `approval` waits on its **Required Actions** page, which shows both versions side by side
   (ROC AUC with the bootstrap interval, log loss, accuracy, precision, recall, row counts,
   the data date, links to both MLflow runs), for *Approve* or *Reject* and a comment. No
   answer within the Variable `approval_timeout_hours` (default 72) counts as *Reject*;
9. `record_review` runs `ml-promote review`: an approval moves `production` to the
   challenger, only if production is still the version it was compared with and the
   challenger cleared the floor (otherwise the task fails and nothing moves); every answer,
   with the person, the comment and the time, goes to the version's `approval.*` tags and
   to `promotion.json`. A timed-out approval sends an alert.

Besides the weekly schedule, `monitor_model` starts a run (`retrain__{day}`, logical date
`{day}`) when it finds the production model decaying on a day's labels: the same tasks train
on that day's data, and the new model meets the same gate and, in manual mode, the same
approval.

A run still going `ML_APPROVAL_REMINDER_HOURS` (default 24) after it was queued sends a
reminder through the alert channels, with the approval page's address when one is pending.

**catchup is off on purpose.** Old weeks only matter when someone asks for them; then
`airflow backfill create --dag-id train_model` trains them, one week at a time
(`max_active_runs=1`: training is the heaviest stage and the machine is small).
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference
from alerts import on_approval_timed_out, on_unusable_production_replaced
from common import (
    APPROVAL_REMINDER,
    DEFAULT_ARGS,
    MODEL_DIR,
    PROCESSED_DIR,
    PROMOTION_MIN_IMPROVEMENT,
    PROMOTION_MIN_ROC_AUC,
    PROMOTION_MODE,
    RAW_DIR,
    START_DATE,
    TRAIN_ARGS,
    stage_task,
    wait_for_file,
)
from rollout import ReviewRequest, awaits_review

# The respondent's answer, as ReviewRequest returns it.
ANSWER = "{{ ti.xcom_pull(task_ids='approval')"

with DAG(
    dag_id="train_model",
    schedule="@weekly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "training"],
    doc_md=__doc__,
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=APPROVAL_REMINDER,
        callback=AsyncCallback("alerts.approval_reminder"),
    ),
):
    raw_ready = [
        wait_for_file("wait_for_data", f"{RAW_DIR}/data.csv"),
        wait_for_file("wait_for_target", f"{RAW_DIR}/target.csv"),
    ]
    preprocess = stage_task(
        "preprocess", ["--input-dir", RAW_DIR, "--output-dir", PROCESSED_DIR]
    )
    split = stage_task(
        "split", ["--input-dir", PROCESSED_DIR, "--output-dir", PROCESSED_DIR]
    )
    train = stage_task(
        "train",
        ["--input-dir", PROCESSED_DIR, "--output-dir", MODEL_DIR],
        extra_arguments=TRAIN_ARGS,
    )
    validate = stage_task(
        "validate", ["--input-dir", PROCESSED_DIR, "--model-dir", MODEL_DIR]
    )

    promote = stage_task(
        "promote",
        [
            "--input-dir",
            PROCESSED_DIR,
            "--model-dir",
            MODEL_DIR,
            "--mode",
            PROMOTION_MODE,
            "--min-improvement",
            PROMOTION_MIN_IMPROVEMENT,
            "--min-roc-auc",
            PROMOTION_MIN_ROC_AUC,
        ],
        on_success_callback=on_unusable_production_replaced,
    )
    needs_review = ShortCircuitOperator(
        task_id="needs_review",
        # Airflow passes the callable the run's `ds` by its parameter name.
        python_callable=awaits_review,
    )
    # Retrying would open a second approval page: a failure here fails for good (and alerts).
    approval = ReviewRequest(task_id="approval", retries=0)
    record_review = stage_task(
        "review",
        [
            "review",
            "--model-dir",
            MODEL_DIR,
            f"--answer={ANSWER}['answer'] }}}}",
            f"--by={ANSWER}['by'] }}}}",
            f"--comment={ANSWER}['comment'] }}}}",
            f"--responded-at={ANSWER}['responded_at'] }}}}",
        ],
        task_id="record_review",
        on_success_callback=on_approval_timed_out,
    )
    raw_ready >> preprocess >> split >> train >> validate >> promote
    promote >> needs_review >> approval >> record_review
