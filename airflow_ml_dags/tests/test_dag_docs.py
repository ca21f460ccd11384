"""Each DAG's documentation (``doc_md``, shown on its page in the UI) matches what it does:
it names every task of the DAG, and every Airflow Variable its tasks read, in backticks."""

from __future__ import annotations

import re

import pytest

DAG_IDS = ["generate_data", "monitor_model", "predict", "set_production", "train_model"]
# `{{ var.value.model_path }}` and `{{ var.value.get('train_args', '') }}`
VARIABLE = re.compile(r"var\.value\.(?:get\(\s*['\"](\w+)['\"]|(\w+))")


def variables_read(task) -> set[str]:
    """Names of the Variables that the task's templated fields read."""
    found = set()
    for field in task.template_fields:
        for get_name, attr_name in VARIABLE.findall(str(getattr(task, field, ""))):
            found.add(get_name or attr_name)
    return found


def test_every_dag_is_checked(dags):
    assert sorted(dags) == DAG_IDS


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_doc_names_every_task(dags, dag_id):
    dag = dags[dag_id]
    missing = [t for t in dag.task_ids if f"`{t}`" not in dag.doc_md]
    assert not missing, f"{dag_id}'s doc_md does not name the tasks {missing}"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_doc_names_every_variable_the_tasks_read(dags, dag_id):
    dag = dags[dag_id]
    read = set().union(*(variables_read(t) for t in dag.tasks))
    missing = sorted(v for v in read if f"`{v}`" not in dag.doc_md)
    assert not missing, f"{dag_id}'s doc_md does not name the Variables {missing}"


def test_the_variable_pattern_sees_both_forms(dags):
    assert variables_read(dags["predict"].get_task("predict")) == {"model_path"}
    assert "train_args" in variables_read(dags["train_model"].get_task("train"))


def test_monitor_model_reads_its_five_variables(dags):
    """The label delay (pick_day), the stage's three thresholds, the floor among them shared
    with promote, and the cooldown (needs_retraining): each named in the doc by the test
    above."""
    dag = dags["monitor_model"]
    assert {t.task_id: variables_read(t) for t in dag.tasks} == {
        "pick_day": {"label_delay_days"},
        "wait_for_predictions": set(),
        "wait_for_labels": set(),
        "monitor": {
            "monitor_psi_threshold",
            "monitor_auc_margin",
            "promotion_min_roc_auc",
        },
        "alert": set(),
        "needs_retraining": {"retrain_cooldown_days"},
        "retrain": set(),
    }
