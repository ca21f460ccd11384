"""DAG integrity: the folder parses, holds exactly our DAGs, and parses fast and quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ml_dag_testing import DAGS_DIR, load_dagbag

EXPECTED_DAG_IDS = {
    "generate_data",
    "train_model",
    "predict",
    "set_production",
    "monitor_model",
}
# Helper modules the DAG files import (common.py, alerts.py, rollout.py, monitoring.py) are
# listed in .airflowignore.
HELPER_FILES = set((DAGS_DIR / ".airflowignore").read_text().split())
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if p.name not in HELPER_FILES)
PARSE_BUDGET_S = 0.050


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_exactly_our_dags(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED_DAG_IDS
    assert dagbag.size() == len(EXPECTED_DAG_IDS) == 5


def test_one_dag_per_file_named_after_it(dags):
    assert {
        Path(p).stem for p in (d.fileloc for d in dags.values())
    } == EXPECTED_DAG_IDS
    for dag_id, dag in dags.items():
        assert Path(dag.fileloc).stem == dag_id
    assert {p.stem for p in DAG_FILES} == EXPECTED_DAG_IDS


def test_the_helpers_are_not_parsed_as_dag_files():
    # .airflowignore keeps the dag processor from importing the helper modules on their own.
    assert HELPER_FILES == {"common.py", "alerts.py", "rollout.py", "monitoring.py"}


def test_dags_serialize_for_the_scheduler(dags):
    # The scheduler and the UI only ever see the serialized form.
    from airflow.serialization.serialized_objects import DagSerialization

    for dag in dags.values():
        restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        assert set(restored.task_ids) == set(dag.task_ids)
        for task in dag.tasks:
            assert (
                restored.get_task(task.task_id).downstream_task_ids
                == task.downstream_task_ids
            )


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parse_time_and_no_io_at_parse(path, capsys):
    """Each file is parsed in a fresh interpreter (see parse_probe.py): fast, and without a
    connection attempt, a name lookup or a database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_VAR_")}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("parse_probe.py")), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    with capsys.disabled():
        print(
            f"\n[parse] {report['file']:<17} first parse {report['first_parse_s'] * 1e3:6.1f} ms"
            f"  re-parse {report['reparse_s'] * 1e3:5.1f} ms"
            f"  (airflow import {report['airflow_import_s']:.2f} s,"
            f" providers {report['providers_import_s'] * 1e3:.0f} ms,"
            f" airflow's first DAG {report['airflow_first_dag_s'] * 1e3:.0f} ms)"
        )
    assert report["events"] == []
    assert report["first_parse_s"] < PARSE_BUDGET_S


def test_parses_without_the_stack_environment(monkeypatch):
    """Unit tests, CI and a laptop have none of the stack's variables: the DAGs must still
    parse, with safe defaults (and HardenedDockerOperator refuses to run without a data dir)."""
    for name in ("ML_HOST_DATA_DIR", "ML_TASK_NETWORK", "ML_IMAGE_TAG", "ML_TASK_USER"):
        monkeypatch.delenv(name, raising=False)
    bag = load_dagbag()
    assert bag.import_errors == {}
    train = bag.dags["train_model"].get_task("train")
    assert train.image == "ml-train:latest"
    assert train.network_mode == "none"
    assert train.environment == {}
    assert train.user == "65534:65534"
    assert [m["Source"] for m in train.mounts] == ["", ""]
