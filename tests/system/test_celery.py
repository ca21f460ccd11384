"""The scale-out profile: the same DAGs on the CeleryExecutor with Redis and two workers.

Runs against the ``celery_stack`` fixture (conftest.py): the compose stack with the profile
``celery``, under its own project and ports, beside (never instead of) the default stack of
the other system tests. The pipeline runs end to end as in test_e2e.py: several days of
data asked for at once (so tasks queue up together), the weekly training, and predictions
with the trained model. The task instances then say, in their ``hostname`` field, which
worker ran them: both workers must have run tasks, and every task container was started by
a worker (the scheduler only queues).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Stack
from pipeline_runs import (
    AUTO_MODE_SKIPS,
    DAG_IDS,
    RUN_TIMEOUT,
    AirflowClient,
    training_day,
)

WORKERS = {"airflow-worker-1", "airflow-worker-2"}

TODAY = datetime.now(UTC).date()
TRAIN_DAY = training_day()
# Today is among them: unpausing generate_data may start today's run by itself, and it is
# then one of the runs the test waits for.
DATA_DAYS = sorted({TRAIN_DAY - timedelta(days=n) for n in range(5, -1, -1)} | {TODAY})
PREDICT_DAYS = [TRAIN_DAY, TODAY]


def log_step(message: str) -> None:
    print(f"[celery {time.strftime('%H:%M:%S')}] {message}", flush=True)


@pytest.fixture(scope="module")
def airflow(celery_stack: Stack) -> AirflowClient:
    client = AirflowClient(
        celery_stack.airflow_url, celery_stack.username, celery_stack.password
    )
    client.wait_for_dags(DAG_IDS)
    return client


def exec_in(stack: Stack, service: str, *command: str) -> str:
    return stack.compose("exec", "-T", service, *command, check=False).stdout.strip()


def test_profile_runs_redis_and_two_workers(celery_stack: Stack) -> None:
    states = celery_stack.service_states()
    for service in ("redis", *sorted(WORKERS)):
        assert states.get(service) == "healthy", states
    for service in ("airflow-scheduler", *sorted(WORKERS)):
        executor = exec_in(celery_stack, service, "printenv", "AIRFLOW__CORE__EXECUTOR")
        assert executor == "CeleryExecutor", service


def test_broker_needs_its_password_and_is_not_published(celery_stack: Stack) -> None:
    # No password on the command line: the broker refuses the call.
    answer = exec_in(celery_stack, "redis", "redis-cli", "-h", "127.0.0.1", "ping")
    assert "NOAUTH" in answer, answer
    # With it (the healthcheck's way), it answers.
    assert exec_in(celery_stack, "redis", "sh", "-c", "redis-ping && echo ok") == "ok"
    # Nothing published on the host: only the services on the stack's network reach it.
    ids = celery_stack.compose("ps", "-q", "redis").stdout.split()
    ports = subprocess.run(
        ["docker", "port", *ids], check=True, capture_output=True, text=True
    ).stdout
    assert ports.strip() == "", ports


def test_pipeline_spreads_over_both_workers(
    celery_stack: Stack, airflow: AirflowClient
) -> None:
    started = time.monotonic()
    log_step(
        f"generate_data {DATA_DAYS[0]}..{DATA_DAYS[-1]}, train_model {TRAIN_DAY}, "
        f"predict {', '.join(map(str, PREDICT_DAYS))}"
    )
    for dag_id in ("generate_data", "train_model"):
        airflow.set_paused(dag_id, False)
    # Asked for together, so several tasks wait in the queue at once.
    wanted = [("generate_data", day) for day in DATA_DAYS]
    wanted.append(("train_model", TRAIN_DAY))
    runs = {key: airflow.ensure_run(*key)["dag_run_id"] for key in wanted}
    final = airflow.wait_for_runs(
        [(dag_id, run_id) for (dag_id, _), run_id in runs.items()], RUN_TIMEOUT
    )
    failed = {
        key: run["state"] for key, run in final.items() if run["state"] != "success"
    }
    assert not failed, failed

    airflow.set_variable("model_path", f"/data/models/{TRAIN_DAY.isoformat()}")
    airflow.set_paused("predict", False)
    predicted = {
        ("predict", day): airflow.ensure_run("predict", day)["dag_run_id"]
        for day in PREDICT_DAYS
    }
    final.update(
        airflow.wait_for_runs(
            [(dag_id, run_id) for (dag_id, _), run_id in predicted.items()], RUN_TIMEOUT
        )
    )
    failed = {
        key: run["state"] for key, run in final.items() if run["state"] != "success"
    }
    assert not failed, failed
    log_step(f"{len(final)} runs succeeded in {time.monotonic() - started:.0f} s")

    for day in PREDICT_DAYS:
        predictions = (
            celery_stack.data_dir / "predictions" / day.isoformat() / "predictions.csv"
        )
        assert predictions.stat().st_size > 0, predictions

    # Which worker ran what, from the task instances' hostname field.
    by_host: Counter[str] = Counter()
    stage_hosts: Counter[str] = Counter()
    for dag_id, run_id in final:
        for ti in airflow.task_instances(dag_id, run_id):
            if dag_id == "train_model" and ti["task_id"] in AUTO_MODE_SKIPS:
                # Auto mode: the gate decided, the approval and its recording never ran.
                assert ti["state"] == "skipped", ti
                continue
            assert ti["state"] == "success", ti
            by_host[ti["hostname"]] += 1
            if not ti["task_id"].startswith("wait_for"):
                stage_hosts[ti["hostname"]] += 1
    log_step(f"task instances per host: {dict(sorted(by_host.items()))}")
    log_step(f"stage containers started per host: {dict(sorted(stage_hosts.items()))}")
    assert set(by_host) == WORKERS, by_host
    assert set(stage_hosts) == WORKERS, stage_hosts
