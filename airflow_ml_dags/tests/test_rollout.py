"""The person's part of a rollout (dags/rollout.py and the set_production DAG).

The approval page's text is checked as Markdown a person reads (both versions side by
side, the interval, the data date, links that open the MLflow runs and versions); the
answer as ``ml-promote review`` gets it, from the event Airflow resumes the approval with;
the Variable that bounds the wait; the short-circuit in front of the approval; and the
form of ``set_production``, validated the way Airflow validates a triggered run's params.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import rollout
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import AirflowFailException, ParamValidationError
from ml_dag_testing import SAMPLE_DATE, SAMPLE_SET_PRODUCTION

DS = SAMPLE_DATE.strftime("%Y-%m-%d")
MLFLOW = "http://mlflow.example.test:5000"
CHALLENGER_RUN = "3f1c9a7e5b2d4c6e8f0a1b2c3d4e5f60"
PRODUCTION_RUN = "a0b1c2d3e4f5061728394a5b6c7d8e9f"


def decision(**changes) -> dict:
    """promotion.json of a manual-mode run (crates/ml-promote/src/lib.rs ``Decision``): the
    challenger, version 5, against production, version 4, on the same 56 rows."""
    value = {
        "registered_model": "heart-disease-classifier",
        "version": "5",
        "run_id": CHALLENGER_RUN,
        "experiment_id": "1",
        "outcome": "awaiting_review",
        "reason": (
            "manual mode: the interval's lower end 0.0123 is above the margin 0.0000; "
            "a person decides whether production moves"
        ),
        "mode": "manual",
        "min_improvement": 0.0,
        "min_roc_auc": 0.75,
        "challenger_roc_auc": 0.91321,
        "challenger_metrics": {
            "accuracy": 0.857142,
            "precision": 0.833333,
            "recall": 0.882352,
            "f1": 0.857142,
            "roc_auc": 0.91321,
            "log_loss": 0.387149,
            "n_val": 56,
        },
        "production": {
            "version": "4",
            "run_id": PRODUCTION_RUN,
            "experiment_id": "1",
            "metrics": {
                "accuracy": 0.803571,
                "precision": 0.789473,
                "recall": 0.8125,
                "f1": 0.800813,
                "roc_auc": 0.870967,
                "log_loss": 0.451234,
                "n_val": 56,
            },
        },
        "difference": {
            "estimate": 0.042243,
            "lower": 0.012345,
            "upper": 0.073101,
            "confidence": 0.95,
            "resamples": 2000,
            "valid_resamples": 1998,
            "seed": 42,
        },
        "production_unusable": False,
        "n_val": 56,
        "rerun": False,
    }
    value.update(changes)
    return value


def table_rows(body: str) -> list[list[str]]:
    """The Markdown table's rows, split into cells on unescaped pipes."""
    rows = []
    for line in body.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line)
            assert cells[0] == "" and cells[-1] == "", line
            rows.append([cell.strip() for cell in cells[1:-1]])
    return rows


def row(body: str, label: str) -> list[str]:
    [found] = [r for r in table_rows(body) if r[0] == label]
    return found[1:]


# ---- the approval page ------------------------------------------------------------------


def test_the_page_shows_both_versions_side_by_side():
    body = rollout.review_body(
        decision(), DS, MLFLOW, train_rows=230, timeout=timedelta(hours=72)
    )
    models = f"{MLFLOW}/#/models/heart-disease-classifier/versions"
    assert table_rows(body)[0] == [
        "",
        f"challenger ([version 5]({models}/5))",
        f"production ([version 4]({models}/4))",
    ]
    assert row(body, "ROC AUC") == ["0.9132", "0.8710"]
    assert row(body, "Log loss") == ["0.3871", "0.4512"]
    assert row(body, "Accuracy") == ["0.8571", "0.8036"]
    assert row(body, "Precision") == ["0.8333", "0.7895"]
    assert row(body, "Recall") == ["0.8824", "0.8125"]
    assert row(body, "F1") == ["0.8571", "0.8008"]
    assert row(body, "Validation rows") == ["56", "56"]
    runs = f"{MLFLOW}/#/experiments/1/runs"
    assert row(body, "MLflow run") == [
        f"[run 3f1c9a7e]({runs}/{CHALLENGER_RUN})",
        f"[run a0b1c2d3]({runs}/{PRODUCTION_RUN})",
    ]
    # Every row has the same three columns.
    assert {len(r) for r in table_rows(body)} == {3}


def test_the_page_states_the_interval_the_rule_and_the_data():
    body = rollout.review_body(
        decision(), DS, MLFLOW, train_rows=230, timeout=timedelta(hours=72)
    )
    assert body.startswith(f"### heart-disease-classifier version 5, trained on {DS}\n")
    assert (
        "ROC AUC difference (challenger minus production): **+0.0422**, 95% interval "
        "[+0.0123, +0.0731] from 1998 paired bootstrap resamples (seed 42)."
    ) in body
    assert (
        "challenger ROC AUC at least 0.7500, and the interval's lower end above +0.0000"
    ) in body
    assert decision()["reason"] in body
    assert (
        f"Data date: {DS}; validated on `/data/processed/{DS}/val.csv`; "
        "trained on 230 rows."
    ) in body
    assert "only if production is still version 4" in body
    assert "No answer within 72 h counts as **Reject**" in body


def test_an_interval_below_zero_keeps_its_sign():
    worse = decision(
        difference={
            "estimate": -0.0211,
            "lower": -0.0534,
            "upper": 0.0102,
            "confidence": 0.9,
            "resamples": 1000,
            "valid_resamples": 1000,
            "seed": 7,
        }
    )
    body = rollout.review_body(worse, DS, MLFLOW)
    assert "**-0.0211**, 90% interval [-0.0534, +0.0102]" in body
    # No train_rows, no timeout: neither is made up.
    assert f"validated on `/data/processed/{DS}/val.csv`." in body
    assert "No answer within" not in body


def test_the_first_model_has_nothing_to_compare_with():
    body = rollout.review_body(
        decision(production=None, difference=None), DS, MLFLOW, train_rows=230
    )
    assert table_rows(body)[0] == [
        "",
        f"challenger ([version 5]({MLFLOW}/#/models/heart-disease-classifier/versions/5))",
        "production",
    ]
    for label in ("ROC AUC", "Log loss", "Accuracy", "Validation rows", "MLflow run"):
        assert row(body, label)[1] == "none", label
    assert row(body, "ROC AUC")[0] == "0.9132"
    assert "There is no production model yet." in body
    assert "only if production is still unset" in body
    assert PRODUCTION_RUN not in body


def test_an_unusable_production_model_is_named_as_such():
    unusable = decision(
        production={
            "version": "4",
            "run_id": PRODUCTION_RUN,
            "experiment_id": "1",
            "metrics": None,
            "unusable": "model format 1 is not supported by this build",
        },
        difference=None,
    )
    body = rollout.review_body(unusable, DS, MLFLOW)
    assert (
        "Production cannot be used by this build: model format 1 is not supported "
        "by this build."
    ) in body
    assert row(body, "ROC AUC") == ["0.9132", "n/a"]


def test_without_an_mlflow_address_there_are_no_links():
    body = rollout.review_body(decision(), DS, "")
    assert "http" not in body and "](" not in body
    assert table_rows(body)[0] == [
        "",
        "challenger (version 5)",
        "production (version 4)",
    ]
    assert row(body, "MLflow run") == [
        f"run `{CHALLENGER_RUN}`",
        f"run `{PRODUCTION_RUN}`",
    ]


def test_a_trailing_slash_makes_no_double_slash():
    body = rollout.review_body(decision(), DS, MLFLOW + "/")
    assert f"{MLFLOW}/#/experiments/1/runs/{CHALLENGER_RUN}" in body
    assert "5000//" not in body


def test_pipes_and_line_breaks_in_the_reason_do_not_break_the_page():
    reason = "manual mode: a | b || c\n| not a row |"
    body = rollout.review_body(decision(reason=reason), DS, MLFLOW)
    assert r"a \| b \|\| c \| not a row \|" in body
    rows = table_rows(body)
    assert len(rows) == 2 + 6 + 2  # header, rule, six metrics, rows, runs
    assert {len(r) for r in rows} == {3}


def test_an_undefined_challenger_auc_reads_as_not_available():
    metrics = {**decision()["challenger_metrics"], "roc_auc": None}
    body = rollout.review_body(
        decision(challenger_metrics=metrics, challenger_roc_auc=None), DS, MLFLOW
    )
    assert row(body, "ROC AUC") == ["n/a", "0.8710"]


# ---- the answer --------------------------------------------------------------------------

RESPONDED_AT = datetime(2026, 1, 6, 9, 30, tzinfo=UTC)
ALICE = {"id": "7", "name": "alice"}


def result(**changes) -> dict:
    """HITLOperator.execute_complete's result (HITLTriggerEventSuccessPayload)."""
    value = {
        "chosen_options": ["Approve"],
        "params_input": {"comment": "better on every metric"},
        "responded_at": RESPONDED_AT,
        "responded_by_user": ALICE,
    }
    value.update(changes)
    return value


def test_an_approval_names_the_person_and_their_comment():
    assert rollout.answer_of(result(), timed_out=False) == {
        "answer": "approve",
        "by": "alice",
        "comment": "better on every metric",
        "responded_at": "2026-01-06T09:30:00+00:00",
    }


def test_a_rejection():
    answer = rollout.answer_of(
        result(chosen_options=["Reject"], params_input={"comment": "too few rows"}),
        timed_out=False,
    )
    assert answer["answer"] == "reject"
    assert answer["by"] == "alice"
    assert answer["comment"] == "too few rows"


def test_a_user_without_a_name_is_named_by_id():
    answer = rollout.answer_of(
        result(responded_by_user={"id": "7", "name": ""}), timed_out=False
    )
    assert answer == {**answer, "answer": "approve", "by": "7"}


@pytest.mark.parametrize(
    "changes, timed_out",
    [
        ({"responded_by_user": None, "chosen_options": ["Reject"]}, False),
        ({"responded_by_user": None, "chosen_options": ["Approve"]}, False),
        ({"chosen_options": ["Reject"]}, True),
        ({}, True),
    ],
    ids=["no-user", "no-user-approve", "timedout", "timedout-approve"],
)
def test_no_person_or_the_clock_is_a_timeout_never_an_approval(changes, timed_out):
    answer = rollout.answer_of(result(**changes), timed_out=timed_out)
    assert answer["answer"] == "timeout"
    assert answer["by"] == ""


def test_no_comment_and_a_text_time():
    answer = rollout.answer_of(
        result(params_input=None, responded_at="2026-01-06T09:30:00Z"), timed_out=False
    )
    assert answer["comment"] == ""
    assert answer["responded_at"] == "2026-01-06T09:30:00Z"
    assert rollout.answer_of(result(params_input={}), timed_out=False)["comment"] == ""


@pytest.fixture
def approval(dags):
    """A copy of train_model's approval task (execute_complete writes into its params)."""
    return copy.deepcopy(dags["train_model"].get_task("approval"))


def test_the_approval_resumes_with_the_answer(approval):
    """The event Airflow 3.3 resumes an answered approval with (HITLDetail's
    as_resume_event_payload) becomes the task's JSON-safe result."""
    event = {
        "chosen_options": ["Approve"],
        "params_input": {"comment": "ship it"},
        "responded_at": RESPONDED_AT,
        "responded_by_user": ALICE,
        "timedout": False,
    }
    answer = approval.execute_complete({}, event)
    assert answer == {
        "answer": "approve",
        "by": "alice",
        "comment": "ship it",
        "responded_at": "2026-01-06T09:30:00+00:00",
    }
    assert json.loads(json.dumps(answer)) == answer


def test_an_approval_nobody_answered_resumes_as_a_timeout(approval):
    """The scheduler's timeout sweep resumes with the defaults (Reject), no user and the
    form's defaults, timedout=True."""
    event = {
        "chosen_options": ["Reject"],
        "params_input": {"comment": ""},
        "responded_at": RESPONDED_AT,
        "responded_by_user": None,
        "timedout": True,
    }
    assert approval.execute_complete({}, event) == {
        "answer": "timeout",
        "by": "",
        "comment": "",
        "responded_at": "2026-01-06T09:30:00+00:00",
    }


def test_an_answer_that_is_not_an_option_is_refused(approval):
    event = {
        "chosen_options": ["Approve everything"],
        "params_input": {},
        "responded_at": RESPONDED_AT,
        "responded_by_user": ALICE,
        "timedout": False,
    }
    with pytest.raises(ValueError, match="not in"):
        approval.execute_complete({}, event)


def test_the_answer_reaches_ml_promote_review(dags, render, approval):
    """From the resumed approval to record_review's argv: the approval's result is the XCom
    record_review's command is rendered from."""
    event = {
        "chosen_options": ["Reject"],
        "params_input": {"comment": "precision dropped on the new site's rows"},
        "responded_at": RESPONDED_AT,
        "responded_by_user": {"id": "9", "name": "bob"},
        "timedout": False,
    }
    answer = approval.execute_complete({}, event)
    task, _ = render(
        dags["train_model"].get_task("record_review"), xcoms={"approval": answer}
    )
    assert task.command == [
        "review",
        "--model-dir",
        f"/data/models/{DS}",
        "--answer=reject",
        "--by=bob",
        "--comment=precision dropped on the new site's rows",
        "--responded-at=2026-01-06T09:30:00+00:00",
    ]


# ---- how long the approval waits ---------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_the_wait_defaults_to_72_hours(value):
    assert rollout.approval_timeout(value) == timedelta(hours=72)


@pytest.mark.parametrize(
    "value, hours", [("48", 48), ("1.5", 1.5), (" 0.25 ", 0.25), ("1e2", 100)]
)
def test_the_wait_is_a_number_of_hours(value, hours):
    assert rollout.approval_timeout(value) == timedelta(hours=hours)


@pytest.mark.parametrize(
    "value", ["0", "-3", "-0.5", "nan", "inf", "-inf", "1e400", "three", "72h"]
)
def test_a_wait_that_is_not_a_positive_number_fails_the_task(value):
    with pytest.raises(AirflowFailException, match="approval_timeout_hours"):
        rollout.approval_timeout(value)


# ---- whether a person must look ----------------------------------------------------------


@pytest.fixture
def model_dirs(tmp_path, monkeypatch):
    """rollout's /data/models/<day> under tmp_path; returns a writer of promotion.json."""
    monkeypatch.setattr(rollout, "model_dir", lambda ds: str(tmp_path / ds))

    def write(ds: str, text: str, name: str = "promotion.json") -> None:
        (tmp_path / ds).mkdir(exist_ok=True)
        (tmp_path / ds / name).write_text(text)

    return write


def test_only_a_decision_awaiting_review_needs_one(model_dirs):
    model_dirs("2026-01-04", json.dumps(decision()))
    assert rollout.awaits_review("2026-01-04") is True
    for outcome in ("promoted", "rejected"):
        model_dirs("2026-01-11", json.dumps(decision(outcome=outcome, mode="auto")))
        assert rollout.awaits_review("2026-01-11") is False


@pytest.mark.parametrize("text", [None, "{not json", "[1, 2]"])
def test_a_missing_or_unreadable_decision_fails(model_dirs, tmp_path, text):
    if text is not None:
        model_dirs("2026-01-04", text)
    with pytest.raises(AirflowFailException, match="promotion.json"):
        rollout.awaits_review("2026-01-04")


def test_needs_review_reads_the_runs_own_day(dags, render, model_dirs):
    """The short-circuit's condition for the run's day, with the arguments the operator
    passes its callable; for a decision awaiting review it lets the approval run."""
    model_dirs(DS, json.dumps(decision()))
    task, context = render(dags["train_model"].get_task("needs_review"))
    kwargs = task.determine_kwargs(context)
    assert task.python_callable(*task.op_args, **kwargs) is True
    assert task.execute(context) is True
    model_dirs(DS, json.dumps(decision(outcome="promoted")))
    assert task.python_callable(*task.op_args, **kwargs) is False
    model_dirs("2026-01-04", json.dumps(decision()))
    assert task.python_callable(*task.op_args, **kwargs) is False


# ---- opening the approval ----------------------------------------------------------------


@pytest.fixture
def opened(monkeypatch):
    """Records what the approval writes for the Required Actions page (the call that would
    go to the API server)."""
    from airflow.providers.standard.operators import hitl

    calls: list[dict] = []
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kw: calls.append(kw))
    return calls


def test_the_approval_opens_with_the_page_and_the_variables_wait(
    dags, render, model_dirs, opened, monkeypatch
):
    from airflow.sdk.exceptions import TaskAwaitingInput

    model_dirs(DS, json.dumps(decision()))
    model_dirs(DS, json.dumps({"rows": {"train": 230, "val": 56}}), "params.json")
    monkeypatch.setenv("AIRFLOW_VAR_APPROVAL_TIMEOUT_HOURS", "36")
    monkeypatch.setenv("ML_MLFLOW_BASE_URL", MLFLOW)
    task, context = render(dags["train_model"].get_task("approval"))

    with pytest.raises(TaskAwaitingInput) as waiting:
        task.execute(context)
    assert waiting.value.timeout == timedelta(hours=36)
    assert waiting.value.method_name == "execute_complete"
    [page] = opened
    assert page["ti_id"] == context["task_instance"].id
    assert page["subject"] == (
        f"Roll out heart-disease-classifier version 5 (trained on {DS}) to production?"
    )
    assert page["body"] == rollout.review_body(
        decision(), DS, MLFLOW, 230, timedelta(hours=36)
    )
    assert "trained on 230 rows" in page["body"]
    assert page["options"] == ["Approve", "Reject"]
    assert page["defaults"] == ["Reject"]
    assert set(page["params"]) == {"comment"}


def test_the_approval_waits_72_hours_without_the_variable(
    dags, render, model_dirs, opened
):
    from airflow.sdk.exceptions import TaskAwaitingInput

    model_dirs(DS, json.dumps(decision()))
    task, context = render(dags["train_model"].get_task("approval"))
    with pytest.raises(TaskAwaitingInput) as waiting:
        task.execute(context)
    assert waiting.value.timeout == timedelta(hours=72)
    # No params.json, no MLflow address: the page says less, and still opens.
    assert "trained on" not in opened[0]["body"].split("Data date:")[1]
    assert "http" not in opened[0]["body"]


def test_the_approval_refuses_a_decision_that_does_not_await_review(
    dags, render, model_dirs, opened
):
    model_dirs(DS, json.dumps(decision(outcome="promoted")))
    task, context = render(dags["train_model"].get_task("approval"))
    with pytest.raises(AirflowFailException, match="'promoted', not awaiting review"):
        task.execute(context)
    assert opened == []


def test_a_bad_wait_fails_before_the_page_opens(
    dags, render, model_dirs, opened, monkeypatch
):
    model_dirs(DS, json.dumps(decision()))
    monkeypatch.setenv("AIRFLOW_VAR_APPROVAL_TIMEOUT_HOURS", "0")
    task, context = render(dags["train_model"].get_task("approval"))
    with pytest.raises(AirflowFailException, match="approval_timeout_hours"):
        task.execute(context)
    assert opened == []


# ---- set_production's form ---------------------------------------------------------------


def validated(dags, conf: dict) -> dict:
    """A triggered run's params as Airflow validates them (process_params: the DAG's params
    updated with the run's conf), on a copy of the DAG's params."""
    params = ParamsDict(copy.deepcopy(dags["set_production"].params))
    params.update(conf)
    return params.validate()


def test_a_version_and_a_reason_are_accepted(dags):
    assert validated(dags, {"version": 4, "reason": "pin v4"}) == {
        "version": 4,
        "reason": "pin v4",
    }
    assert validated(dags, {"version": 1, "reason": "x" * 500})["version"] == 1


@pytest.mark.parametrize(
    "conf",
    [
        {"reason": "roll back to the last good model"},
        {"version": None, "reason": "roll back to the last good model"},
        {"version": 0, "reason": "roll back to the last good model"},
        {"version": -2, "reason": "roll back to the last good model"},
        {"version": 2.5, "reason": "roll back to the last good model"},
        {"version": "3", "reason": "roll back to the last good model"},
        {"version": 3},
        {"version": 3, "reason": ""},
        {"version": 3, "reason": "oops"},
        {"version": 3, "reason": "x" * 501},
    ],
    ids=[
        "no-version",
        "null-version",
        "version-0",
        "negative",
        "fraction",
        "text-version",
        "no-reason",
        "empty-reason",
        "4-characters",
        "501-characters",
    ],
)
def test_the_form_refuses(dags, conf):
    with pytest.raises(ParamValidationError):
        validated(dags, conf)


def test_each_param_checks_its_own_value(dags):
    params = copy.deepcopy(dags["set_production"].params)
    version = params.get_param("version")
    reason = params.get_param("reason")
    assert version.resolve(1) == 1
    for bad in (0, None):
        with pytest.raises(ParamValidationError):
            version.resolve(bad)
    assert reason.resolve("12345") == "12345"
    with pytest.raises(ParamValidationError):
        reason.resolve("1234")


def test_a_run_without_a_version_does_not_render(dags, render):
    """The worker validates the params before it renders anything: a run triggered without
    a version (through the REST API, say) fails before ml-promote starts."""
    task = dags["set_production"].get_task("set_production")
    run = {**SAMPLE_SET_PRODUCTION, "conf": {"reason": "roll back to v3"}}
    with pytest.raises(ParamValidationError, match="version"):
        render(task, **run)
