"""
### set_production

Rolls production back, or pins it, by hand: **Trigger** this DAG, fill in the form and the
version you name becomes the `production` alias of `heart-disease-classifier` (the model
`predict` follows while the Variable `model_path` is `models:/heart-disease-classifier@production`,
the stack's default; a `model_path` that names a version or a directory keeps winning).

- **version**: the registered model version (a whole number, 1 or more);
- **reason**: why (at least 5 characters), recorded on the version.

`set_production` runs `ml-promote set-production` in its container. It refuses, and moves
nothing, when the version does not exist, is not `READY`, or does not load in this build
(it is downloaded and loaded first, so inference never points at a model it cannot use).
Otherwise the alias moves and the version is tagged `production.set_by` (the user who
triggered the run), `production.reason`, `production.set_at` (when the run was triggered)
and `production.previous_version`; the version it replaced gets `promotion.replaced_by`.

No schedule, so **catchup is off**: it runs only when a person (or the REST API) triggers
it, one change at a time (`max_active_runs=1`).
"""

from __future__ import annotations

from airflow.sdk import DAG, Param
from common import DEFAULT_ARGS, REGISTERED_MODEL, START_DATE, stage_task

with DAG(
    dag_id="set_production",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "rollout"],
    doc_md=__doc__,
    params={
        "version": Param(
            None,
            type="integer",
            minimum=1,
            title="Model version",
            description=f"The {REGISTERED_MODEL} version that becomes production",
        ),
        "reason": Param(
            "",
            type="string",
            minLength=5,
            maxLength=500,
            title="Reason",
            description="Why production changes (recorded on the version)",
        ),
    },
):
    stage_task(
        "set-production",
        [
            "set-production",
            "--registered-model",
            REGISTERED_MODEL,
            "--version={{ params.version }}",
            "--reason={{ params.reason }}",
            "--by={{ dag_run.triggering_user_name or '' }}",
            "--at={{ dag_run.run_after.isoformat() }}",
        ],
        task_id="set_production",
    )
