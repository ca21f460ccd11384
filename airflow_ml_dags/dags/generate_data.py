"""
### generate_data

Emulates data that keeps arriving: every day its one task, `generate`, runs `ml-generate`,
which writes that day's batch to `/data/raw/{{ ds }}/data.csv` (features) and
`/data/raw/{{ ds }}/target.csv` (labels), the files that `train_model` and `predict` wait
for. Both start with an `id` column (`<date>-<row>`), the key that joins inputs, labels and
predictions. The rows are seeded by the date, so re-running a day rewrites identical files.

**catchup is off on purpose.** The start date is fixed, so catching up would mean one run per
day since then the first time the DAG is unpaused. Data for past days is made on request
instead: trigger runs with a logical date, or `airflow backfill create --dag-id generate_data`.
"""

from __future__ import annotations

from airflow.sdk import DAG
from common import DEFAULT_ARGS, RAW_DIR, START_DATE, stage_task

with DAG(
    dag_id="generate_data",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["ml", "data"],
    doc_md=__doc__,
):
    stage_task("generate", ["--output-dir", RAW_DIR, "--date", "{{ ds }}"])
