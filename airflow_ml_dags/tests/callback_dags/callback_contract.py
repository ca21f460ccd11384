"""DAGs that pin down when Airflow calls the pipeline's failure callback (test_alerts.py).

They use the pipeline's own ``common.DEFAULT_ARGS`` (retries, the alert callback) with no
delay between tries, so ``dag.test()`` runs each one in a second or two. This folder is a DAG
bundle of its own: ``dag.test()`` wants the DAG it runs to be in a bundle it can parse.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import DAG
from common import DEFAULT_ARGS, FS_CONN_ID, START_DATE

ARGS = {**DEFAULT_ARGS, "retry_delay": timedelta(0)}
MISSING_FILE = "/nonexistent/ml-alert-tests/{{ ds }}/data.csv"


def fails_on_the_first_try(ti):
    if ti.try_number == 1:
        raise RuntimeError("transient: the first try fails")


def always_fails():
    raise RuntimeError("permanent: every try fails")


with DAG(
    "alerts_retry_then_success", schedule=None, start_date=START_DATE, default_args=ARGS
) as retry_then_success:
    PythonOperator(task_id="flaky", python_callable=fails_on_the_first_try)

with DAG(
    "alerts_final_failure", schedule=None, start_date=START_DATE, default_args=ARGS
) as final_failure:
    PythonOperator(task_id="broken", python_callable=always_fails)

with DAG(
    "alerts_sensor_timeout", schedule=None, start_date=START_DATE, default_args=ARGS
) as sensor_timeout:
    FileSensor(
        task_id="wait_for_data",
        filepath=MISSING_FILE,
        fs_conn_id=FS_CONN_ID,
        mode="poke",
        poke_interval=0.2,
        timeout=1,
    )
