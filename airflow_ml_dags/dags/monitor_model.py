"""
### monitor_model

Every day, measures how the model that scored an earlier day does on that day's labels, and
reacts:

1. `pick_day` chooses the day to evaluate: the run's logical date less the Variable
   `label_delay_days` (default 1: labels are complete one day later). A value that is not a
   whole number of days from 0 to 365 fails the run;
2. `wait_for_predictions` and `wait_for_labels` wait for that day's
   `/data/predictions/{day}/provenance.json` (written last by `predict`) and
   `/data/raw/{day}/target.csv`;
3. `monitor` runs `ml-monitor`: it checks that the predictions, the features and the model
   are the very ones `provenance.json` names (checksums), joins predictions and labels by
   `id`, and writes `/data/monitoring/{day}/report.json` and `report.html`: live ROC AUC,
   log loss, accuracy, predicted and observed positive rates, a 10-bin calibration table
   and its expected calibration error, the population stability index (PSI) of every
   feature against the model's training data, the verdict `ok`, `drift` (a feature's PSI
   at least the Variable `monitor_psi_threshold`, default 0.2) or `decay` (live ROC AUC
   more than the Variable `monitor_auc_margin`, default 0.03, below the model's validation
   ROC AUC, or below the promotion floor `promotion_min_roc_auc`), with its reasons, and
   charts of the PSI and of the last 30 days of live ROC AUC. The day's figures also go to
   MLflow: one run `monitor-{day}` in the experiment `heart-disease-monitoring`, tagged
   with the model version. Too few labels (fewer than 200 joined rows, or one class) give
   no verdict: the task fails and alerts;
4. `alert` sends the verdict, its reasons and the report's path through the alert channels
   when it is `drift` or `decay`;
5. `needs_retraining` (beside `alert`, so that a channel that is down holds nothing back)
   lets `retrain` run only on `decay`, and not when a decay of the same model version in
   the Variable `retrain_cooldown_days` (default 7) before it started a retraining, which
   is still on its way through the gate; a version that keeps decaying starts another one
   once that cooldown is over;
6. `retrain` starts the `train_model` run `retrain__{day}` with logical date `{day}` (the
   latest day whose labels are complete), without waiting for Sunday. That run trains,
   validates and goes through the normal promotion gate (and, with `promotion_mode` =
   `manual`, a person's approval) like any other. If `train_model` already has a run for
   that date (a Sunday it trained on), nothing new starts and the task says so.

**catchup is off on purpose**, as for `predict`: evaluating a past day is a trigger by hand
or `airflow backfill create --dag-id monitor_model`.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import (
    PythonOperator,
    ShortCircuitOperator,
)
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG
from common import (
    DATA_DIR,
    DEFAULT_ARGS,
    LABEL_DELAY_DAYS,
    MONITOR_AUC_MARGIN,
    MONITOR_PSI_THRESHOLD,
    MONITORED_DAY,
    MONITORING,
    PREDICTIONS,
    PROMOTION_MIN_ROC_AUC,
    RAW,
    RETRAIN_COOLDOWN_DAYS,
    START_DATE,
    stage_task,
    wait_for_file,
)
from monitoring import (
    RETRAIN_DAG_ID,
    alert_on_verdict,
    needs_retraining,
    pick_day,
    report_path,
)

with DAG(
    dag_id="monitor_model",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["ml", "monitoring"],
    doc_md=__doc__,
):
    day = PythonOperator(
        task_id="pick_day",
        python_callable=pick_day,
        op_kwargs={"ds": "{{ ds }}", "label_delay_days": LABEL_DELAY_DAYS},
    )
    ready = [
        wait_for_file(
            "wait_for_predictions",
            f"{DATA_DIR}/{PREDICTIONS}/{MONITORED_DAY}/provenance.json",
        ),
        wait_for_file(
            "wait_for_labels", f"{DATA_DIR}/{RAW}/{MONITORED_DAY}/target.csv"
        ),
    ]
    monitor = stage_task(
        "monitor",
        [
            "--predictions-dir",
            f"{DATA_DIR}/{PREDICTIONS}/{MONITORED_DAY}",
            "--labels-dir",
            f"{DATA_DIR}/{RAW}/{MONITORED_DAY}",
            "--output-dir",
            f"{DATA_DIR}/{MONITORING}/{MONITORED_DAY}",
            "--psi-threshold",
            MONITOR_PSI_THRESHOLD,
            "--auc-margin",
            MONITOR_AUC_MARGIN,
            "--min-roc-auc",
            PROMOTION_MIN_ROC_AUC,
        ],
    )
    alert = PythonOperator(
        task_id="alert",
        python_callable=alert_on_verdict,
        op_kwargs={"day": MONITORED_DAY},
    )
    decays = ShortCircuitOperator(
        task_id="needs_retraining",
        python_callable=needs_retraining,
        op_kwargs={
            "day": MONITORED_DAY,
            "retrain_cooldown_days": RETRAIN_COOLDOWN_DAYS,
        },
    )
    retrain = TriggerDagRunOperator(
        task_id="retrain",
        trigger_dag_id=RETRAIN_DAG_ID,
        trigger_run_id=f"retrain__{MONITORED_DAY}",
        logical_date=f"{MONITORED_DAY}T00:00:00+00:00",
        conf={
            "reason": "decay",
            "report": report_path(MONITORED_DAY),
            "monitor_run_id": "{{ run_id }}",
        },
        skip_when_already_exists=True,
    )
    # The retraining does not wait on the alert: a channel that is down must not hold it.
    day >> ready >> monitor >> [alert, decays]
    decays >> retrain
