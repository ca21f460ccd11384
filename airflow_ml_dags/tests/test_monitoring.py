"""monitor_model's tasks around its stage (dags/monitoring.py): the day it evaluates, the
alert on a verdict, when a verdict starts a retraining, and the run of train_model it starts.

Each day's ``report.json`` is written under a temporary directory that stands in for
``/data/monitoring`` (``monitoring.MONITORING_DIR``), in ml-monitor's format 1
(crates/ml-monitor/src/lib.rs), less the figures nothing here reads. Alerts go to a real
webhook on loopback through the Apprise channel (conftest's ``webhook``), as in
test_alerts.py. The last tests run the DAG's tasks with ``dag.test()`` on the Task SDK's task
runner, so that train_model's runs are created, or refused, by the API server's own code.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta

import common
import monitoring
import pytest
from airflow.sdk.exceptions import (
    AirflowFailException,
    DagRunTriggerException,
    DownstreamTasksSkipped,
)
from ml_dag_testing import (
    MONITORED_DAY_XCOM,
    SAMPLE_DATE,
    SAMPLE_MONITORED_DAY,
    runtime_ti,
    serve_xcoms,
)

DS = SAMPLE_DATE.strftime("%Y-%m-%d")  # 2026-01-05, the run's own day
DAY = SAMPLE_MONITORED_DAY  # 2026-01-04, the day it evaluates

# report.json's `model`: a registry version (by version, never the alias), or a model
# directory that no registry version has the model.bin of.
REGISTRY_V3 = {
    "uri": "models:/heart-disease-classifier/3",
    "registered_model": "heart-disease-classifier",
    "version": "3",
    "run_id": "3f1c9a7e5b2d4c6e8f0a1b2c3d4e5f60",
    "kind": "logistic-regression",
    "validation_roc_auc": 0.8117,
}
REGISTRY_V4 = {
    **REGISTRY_V3,
    "uri": "models:/heart-disease-classifier/4",
    "version": "4",
    "run_id": "a0b1c2d3e4f5061728394a5b6c7d8e9f",
}
DIRECTORY = {
    "uri": "/data/models/2025-12-28",
    "registered_model": None,
    "version": None,
    "run_id": None,
    "kind": "random-forest",
    "validation_roc_auc": 0.8302,
}
DECAY_REASONS = [
    "live ROC AUC 0.7012 is 0.1105 below the validation ROC AUC 0.8117 (margin 0.03)",
    "live ROC AUC 0.7012 is below the promotion floor 0.75",
]
DRIFT_REASONS = ["feature thalach: PSI 0.3141 at least 0.2"]


def report(
    verdict: str,
    day: str = DAY,
    model: dict = REGISTRY_V3,
    reasons: list | None = None,
) -> dict:
    """A day's report.json with ``verdict`` (and, by default, reasons that fit it)."""
    if reasons is None:
        reasons = {"decay": DECAY_REASONS, "drift": DRIFT_REASONS}.get(verdict, [])
    return {
        "format": 1,
        "date": day,
        "verdict": verdict,
        "reasons": reasons,
        "model": model,
        "thresholds": {
            "psi": 0.2,
            "auc_margin": 0.03,
            "min_roc_auc": 0.75,
            "min_labeled_rows": 200,
        },
        "rows": {
            "predictions": 412,
            "labels": 412,
            "joined": 412,
            "unlabeled": 0,
            "unpredicted": 0,
        },
        "keyed_by": "id",
        "quality": {"roc_auc": 0.7012, "log_loss": 0.6104, "accuracy": 0.6529},
        "drift": {"max_psi": 0.3141, "drifted": ["thalach"], "features": []},
    }


def days_before(day: str, n: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=n)).isoformat()


@pytest.fixture
def reports(tmp_path, monkeypatch):
    """/data/monitoring under tmp_path. ``reports(day, "decay", model=..., reasons=...)``
    writes the day's report with that verdict; any other text is written as it is, a dict
    as JSON."""
    monkeypatch.setattr(monitoring, "MONITORING_DIR", str(tmp_path))

    def write(day: str, content, **kwargs) -> None:
        if isinstance(content, str) and content in ("ok", "drift", "decay"):
            content = report(content, day, **kwargs)
        text = content if isinstance(content, str) else json.dumps(content)
        (tmp_path / day).mkdir(exist_ok=True)
        (tmp_path / day / "report.json").write_text(text)

    write.dir = tmp_path
    return write


@pytest.fixture(autouse=True)
def no_channels(monkeypatch):
    """Each test configures the channels it wants; none leak from the caller's environment."""
    for conn_id in ("alert_email", "alert_apprise"):
        monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)


def rendered(dags, monkeypatch, task_id: str, day: str | None = DAY):
    """monitor_model's task as the worker runs it in the run of DS, pick_day having returned
    ``day``: (the rendered task, its context, the XComs it pulled and pushed).

    Like the task runner (and unlike conftest's ``render``, which copies the task whole), the
    task is the DAG's, locked for execution (``prepare_for_execution``): ``alert``'s callable
    takes the whole context, and an unlocked operator would look for upstream XComArgs in
    it; TriggerDagRunOperator tells an unset ``run_after`` by identity, which a deep copy
    loses."""
    task = dags["monitor_model"].get_task(task_id)
    ti = runtime_ti(task, SAMPLE_DATE)
    ti.task = task.prepare_for_execution()
    served = serve_xcoms(monkeypatch, ti, {} if day is None else {"pick_day": day})
    context = ti.get_template_context()
    context["task"] = ti.task
    ti.render_templates(context)
    return ti.task, context, served


# ---- pick_day ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ds, delay, day",
    [
        ("2026-03-10", "1", "2026-03-09"),
        ("2026-03-10", "0", "2026-03-10"),
        # Across a month boundary, and a year's.
        ("2026-03-10", "30", "2026-02-08"),
        ("2026-01-05", "7", "2025-12-29"),
        # Leap days: 2028 has one, 2026 has none.
        ("2028-03-01", "1", "2028-02-29"),
        ("2026-03-01", "1", "2026-02-28"),
        ("2028-03-30", "30", "2028-02-29"),
        # The longest delay there is, and spaces around a Variable's value.
        ("2026-03-10", "365", "2025-03-10"),
        ("2026-03-10", " 2 ", "2026-03-08"),
    ],
)
def test_pick_day_is_the_runs_day_less_the_label_delay(ds, delay, day):
    assert monitoring.pick_day(ds, delay) == day


@pytest.mark.parametrize(
    "delay", ["-1", "x", "1.5", "", " ", "366", "1e2", "+1", "one", "None"]
)
def test_a_bad_label_delay_fails_the_task_naming_the_variable(delay):
    with pytest.raises(AirflowFailException, match="label_delay_days") as failed:
        monitoring.pick_day("2026-03-10", delay)
    assert repr(delay) in str(failed.value)


def test_a_digit_that_is_no_decimal_digit_is_a_bad_label_delay_too():
    """'²' passes str.isdigit() but int() refuses it: that must fail the task for good
    naming the Variable, like any other bad value, not with a ValueError (retried, and
    naming nothing)."""
    with pytest.raises(AirflowFailException, match="label_delay_days"):
        monitoring.pick_day("2026-03-10", "²")


def test_pick_day_gets_the_runs_ds_and_the_variable(dags, monkeypatch):
    task, context, _ = rendered(dags, monkeypatch, "pick_day", day=None)
    assert task.op_kwargs == {"ds": DS, "label_delay_days": "1"}
    assert task.execute(context) == DAY
    monkeypatch.setenv("AIRFLOW_VAR_LABEL_DELAY_DAYS", "3")
    task, context, _ = rendered(dags, monkeypatch, "pick_day", day=None)
    assert task.op_kwargs == {"ds": DS, "label_delay_days": "3"}
    assert task.execute(context) == "2026-01-02"
    monkeypatch.setenv("AIRFLOW_VAR_LABEL_DELAY_DAYS", "a week")
    task, context, _ = rendered(dags, monkeypatch, "pick_day", day=None)
    with pytest.raises(AirflowFailException, match="label_delay_days"):
        task.execute(context)


# ---- the report ----------------------------------------------------------------------------


@pytest.mark.parametrize("verdict", ["ok", "drift", "decay"])
def test_a_report_with_a_verdict_is_read(reports, verdict):
    reports(DAY, verdict)
    assert monitoring.read_report(DAY) == report(verdict)
    assert monitoring.report_path(DAY) == str(reports.dir / DAY / "report.json")


def test_the_report_is_where_ml_monitor_writes_it():
    assert monitoring.report_path(DAY) == f"/data/monitoring/{DAY}/report.json"


BAD_REPORTS = {
    "missing": None,
    "not-json": "{not json",
    "empty": "",
    "not-an-object": "[1, 2]",
    "no-verdict": json.dumps({"reasons": [], "model": REGISTRY_V3}),
    "null-verdict": json.dumps(report("ok") | {"verdict": None}),
    "unknown-verdict": json.dumps(report("ok") | {"verdict": "fine"}),
    "verdict-in-capitals": json.dumps(report("ok") | {"verdict": "DECAY"}),
}


@pytest.mark.parametrize("text", BAD_REPORTS.values(), ids=BAD_REPORTS.keys())
@pytest.mark.parametrize(
    "task",
    [
        lambda day: monitoring.alert_on_verdict(day),
        lambda day: monitoring.needs_retraining(day, "7"),
        monitoring.read_report,
    ],
    ids=["alert", "needs_retraining", "read_report"],
)
def test_a_missing_report_or_one_without_a_verdict_fails_the_task(
    reports, webhook, task, text
):
    if text is not None:
        reports(DAY, text)
    with pytest.raises(AirflowFailException, match=f"{DAY}/report.json"):
        task(DAY)
    assert webhook.requests.empty()


# ---- the alert -----------------------------------------------------------------------------


def test_an_ok_verdict_sends_no_alert(dags, reports, webhook, monkeypatch):
    reports(DAY, "ok")
    task, context, _ = rendered(dags, monkeypatch, "alert")
    assert task.execute(context) == "ok"
    assert webhook.requests.empty()


@pytest.mark.parametrize(
    "verdict, event",
    [("decay", "found the model decaying"), ("drift", "found input drift")],
)
def test_drift_and_decay_alert_with_the_reasons_and_the_report(
    dags, reports, webhook, monkeypatch, verdict, event
):
    reports(DAY, verdict)
    task, context, _ = rendered(dags, monkeypatch, "alert")
    assert task.execute(context) == verdict

    path, payload = webhook.requests.get(timeout=10)
    assert path == "/alerts"
    assert payload["title"] == (
        f"Airflow: monitor_model.alert {event} for {DS}T00:00:00+00:00"
    )
    message = payload["message"]
    reasons = "; ".join(report(verdict)["reasons"])
    html = reports.dir / DAY / "report.html"
    assert (
        f"Verdict:      heart-disease-classifier version 3 on {DAY}: {verdict}: "
        f"{reasons}. Report: {html}"
    ) in message
    assert "Task:         alert" in message
    assert f"Logical date: {DS}T00:00:00+00:00" in message
    assert (
        "http://localhost:8080/dags/monitor_model/runs/"
        f"scheduled__{DS}T00%3A00%3A00%2B00%3A00/tasks/alert?try_number=1"
    ) in message
    # Not a failure: no error line, and the task succeeded.
    assert "Error:" not in message
    assert "unknown error" not in message
    assert webhook.requests.empty(), "one alert per verdict"


def test_the_alert_names_a_model_directory_by_its_path(
    reports, webhook, dags, monkeypatch
):
    reports(DAY, "drift", model=DIRECTORY, reasons=[])
    task, context, _ = rendered(dags, monkeypatch, "alert")
    task.execute(context)
    message = webhook.requests.get(timeout=10)[1]["message"]
    assert f"/data/models/2025-12-28 on {DAY}: drift: no reason given." in message


def test_without_channels_a_decay_is_only_in_the_log(
    reports, dags, monkeypatch, caplog
):
    reports(DAY, "decay")
    task, context, _ = rendered(dags, monkeypatch, "alert")
    assert task.execute(context) == "decay"
    assert "alerts are off" in caplog.text


def test_a_channel_that_fails_fails_the_alert_and_the_others_still_get_it(
    reports, webhook, dags, monkeypatch
):
    """The task fails (and is retried), so the log names the channel; the retraining
    after it waits for the alert."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERT_EMAIL", "smtp://127.0.0.1:1?to=x%40example.invalid"
    )
    reports(DAY, "decay")
    task, context, _ = rendered(dags, monkeypatch, "alert")
    with pytest.raises(RuntimeError, match="alert_email"):
        task.execute(context)
    assert "decaying" in webhook.requests.get(timeout=10)[1]["title"]


# ---- whether to retrain --------------------------------------------------------------------


def test_a_decay_with_no_earlier_decay_retrains(reports):
    reports(DAY, "decay")
    assert monitoring.needs_retraining(DAY, "7") is True


@pytest.mark.parametrize("verdict", ["ok", "drift"])
def test_ok_and_drift_never_retrain(reports, verdict):
    reports(DAY, verdict)
    assert monitoring.needs_retraining(DAY, "7") is False
    # Whatever decayed before.
    reports(days_before(DAY, 1), "decay")
    assert monitoring.needs_retraining(DAY, "0") is False


@pytest.mark.parametrize(
    "back, cooldown, earlier_model, retrains",
    [
        # The same version decayed 3 days before, within the cooldown: that day started
        # the retraining, which is still on its way.
        (3, "7", REGISTRY_V3, False),
        (1, "7", REGISTRY_V3, False),
        # The cooldown counts the 7 days before the day.
        (7, "7", REGISTRY_V3, False),
        (8, "7", REGISTRY_V3, True),
        (3, "2", REGISTRY_V3, True),
        # No cooldown: every decay retrains.
        (1, "0", REGISTRY_V3, True),
        # Another version decayed: production has moved on since, this is its first decay.
        (3, "7", REGISTRY_V4, True),
        (3, "7", DIRECTORY, True),
    ],
)
def test_an_earlier_decay_within_the_cooldown_holds_the_retraining_back(
    reports, back, cooldown, earlier_model, retrains
):
    reports(DAY, "decay")
    reports(days_before(DAY, back), "decay", model=earlier_model)
    assert monitoring.needs_retraining(DAY, cooldown) is retrains


def test_a_model_directory_is_the_same_model_by_its_path(reports):
    reports(DAY, "decay", model=DIRECTORY)
    reports(days_before(DAY, 2), "decay", model=DIRECTORY)
    assert monitoring.needs_retraining(DAY, "7") is False
    other = {**DIRECTORY, "uri": "/data/models/2026-01-04"}
    reports(days_before(DAY, 2), "decay", model=other)
    assert monitoring.needs_retraining(DAY, "7") is True


def test_only_an_earlier_decay_holds_it_back(reports):
    """Earlier days that were ok or drifted, or whose report is missing or unreadable,
    started nothing."""
    reports(DAY, "decay")
    reports(days_before(DAY, 1), "ok")
    reports(days_before(DAY, 2), "drift")
    reports(days_before(DAY, 3), "{not json")
    reports(days_before(DAY, 4), "[]")
    assert monitoring.needs_retraining(DAY, "7") is True


def test_a_decaying_version_retrains_again_once_the_cooldown_is_over(reports):
    """The same version decays day after day (the first retraining's model was rejected,
    say). The first decay starts a retraining; the next 7 days do not; the day after them
    the version has waited its cooldown and starts a second one (common.py: the cooldown
    is "how long a decayed model version waits before it starts a second retraining").

    Only a day that started a retraining holds the next ones back: a decay that was itself
    held back started nothing."""
    first = date(2026, 1, 1)
    days = [(first + timedelta(days=n)).isoformat() for n in range(17)]
    started = []
    for day in days:
        reports(day, "decay")
        if monitoring.needs_retraining(day, "7"):
            started.append(day)
    assert started == ["2026-01-01", "2026-01-09", "2026-01-17"]


@pytest.mark.parametrize(
    "cooldown",
    # '²' as for label_delay_days: str.isdigit() takes it, int() does not.
    ["-1", "x", "1.5", "", "366", "7 days", pytest.param("²", id="superscript-two")],
)
def test_a_bad_cooldown_fails_the_task_naming_the_variable(reports, cooldown):
    reports(DAY, "decay")
    with pytest.raises(AirflowFailException, match="retrain_cooldown_days"):
        monitoring.needs_retraining(DAY, cooldown)


def test_needs_retraining_and_alert_get_the_day_pick_day_returned(
    dags, reports, monkeypatch
):
    """Not the run's day, nor the run's day less one: what pick_day's XCom says (here a
    delay of 3 days), read from that task only."""
    reports("2026-01-02", "decay")
    task, context, served = rendered(
        dags, monkeypatch, "needs_retraining", "2026-01-02"
    )
    assert task.op_kwargs == {"day": "2026-01-02", "retrain_cooldown_days": "7"}
    assert served.pulled == ["pick_day"]
    assert task.execute(context) is True
    # What the operator called its callable with: the two keywords, nothing else.
    assert task.op_kwargs == {"day": "2026-01-02", "retrain_cooldown_days": "7"}

    task, context, served = rendered(dags, monkeypatch, "alert", "2026-01-02")
    assert task.op_kwargs == {"day": "2026-01-02"}
    assert served.pulled == ["pick_day"]
    assert task.execute(context) == "decay"
    # The rest is the task's context, which the alert is made from.
    assert task.op_kwargs["day"] == "2026-01-02"
    assert task.op_kwargs["ti"] is context["ti"]


def test_the_cooldown_comes_from_the_variable_at_run_time(dags, reports, monkeypatch):
    reports(DAY, "decay")
    reports(days_before(DAY, 3), "decay")
    task, context, _ = rendered(dags, monkeypatch, "needs_retraining")
    assert task.op_kwargs["retrain_cooldown_days"] == "7"
    with pytest.raises(DownstreamTasksSkipped):
        task.execute(context)
    monkeypatch.setenv("AIRFLOW_VAR_RETRAIN_COOLDOWN_DAYS", "2")
    task, context, _ = rendered(dags, monkeypatch, "needs_retraining")
    assert task.op_kwargs["retrain_cooldown_days"] == "2"
    assert task.execute(context) is True


def test_no_retraining_skips_the_trigger(dags, reports, monkeypatch):
    """False skips retrain (the short-circuit's only downstream task); True lets it run."""
    reports(DAY, "drift")
    task, context, served = rendered(dags, monkeypatch, "needs_retraining")
    with pytest.raises(DownstreamTasksSkipped) as skipped:
        task.execute(context)
    assert skipped.value.tasks == ["retrain"]
    assert served.pushed == [
        ("needs_retraining", "skipmixin_key", {"skipped": ["retrain"]})
    ]
    reports(DAY, "decay")
    task, context, served = rendered(dags, monkeypatch, "needs_retraining")
    assert task.execute(context) is True
    assert served.pushed == []


# ---- the retraining ------------------------------------------------------------------------


def test_retrain_starts_train_model_on_the_evaluated_day(dags, monkeypatch):
    task, _, served = rendered(dags, monkeypatch, "retrain")
    assert task.trigger_dag_id == monitoring.RETRAIN_DAG_ID == "train_model"
    assert task.trigger_run_id == f"retrain__{DAY}"
    assert task.logical_date == f"{DAY}T00:00:00+00:00"
    assert task.conf == {
        "reason": "decay",
        "report": f"/data/monitoring/{DAY}/report.json",
        "monitor_run_id": f"scheduled__{DS}T00:00:00+00:00",
    }
    assert task.skip_when_already_exists is True
    assert task.wait_for_completion is False
    assert set(served.pulled) == {"pick_day"}


def test_retrain_asks_the_worker_for_that_run(dags, monkeypatch):
    """What the operator hands the task runner, which asks the API server for the run (and
    skips the task when it exists: skip_when_already_exists)."""
    task, context, _ = rendered(dags, monkeypatch, "retrain", "2026-02-28")
    with pytest.raises(DagRunTriggerException) as trigger:
        task.execute(context)
    run = trigger.value
    assert run.trigger_dag_id == "train_model"
    assert run.dag_run_id == "retrain__2026-02-28"
    assert run.logical_date == datetime(2026, 2, 28, tzinfo=UTC)
    assert run.conf == {
        "reason": "decay",
        "report": "/data/monitoring/2026-02-28/report.json",
        "monitor_run_id": f"scheduled__{DS}T00:00:00+00:00",
    }
    assert run.skip_when_already_exists is True
    assert run.reset_dag_run is False
    assert run.wait_for_completion is False


def test_the_retraining_is_a_day_train_model_can_run(dags):
    """train_model runs on any day from its start date (the trigger refuses an earlier
    logical date) and reads the day's raw data: the day that was evaluated is such a day."""
    train_model = dags["train_model"]
    assert train_model.start_date == dags["monitor_model"].start_date
    assert train_model.get_task("wait_for_data").filepath == (
        f"/data/raw/{common.DAY}/data.csv"
    )


# ---- the stage's command -------------------------------------------------------------------


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_monitor_reads_the_monitor_variables_and_the_promotion_floor(dags):
    command = dags["monitor_model"].get_task("monitor").command
    assert flag(command, "--psi-threshold") == (
        "{{ var.value.get('monitor_psi_threshold', '0.2') }}"
    )
    assert flag(command, "--auc-margin") == (
        "{{ var.value.get('monitor_auc_margin', '0.03') }}"
    )
    # The same floor a challenger must reach to be promoted.
    promote = dags["train_model"].get_task("promote").command
    assert flag(command, "--min-roc-auc") == flag(promote, "--min-roc-auc")
    assert flag(command, "--min-roc-auc") == common.PROMOTION_MIN_ROC_AUC


def test_the_monitors_thresholds_come_from_variables_at_run_time(dags, monkeypatch):
    task, _, _ = rendered(dags, monkeypatch, "monitor")
    assert task.command[-6:] == [
        "--psi-threshold",
        "0.2",
        "--auc-margin",
        "0.03",
        "--min-roc-auc",
        "0.75",
    ]
    monkeypatch.setenv("AIRFLOW_VAR_MONITOR_PSI_THRESHOLD", "0.25")
    monkeypatch.setenv("AIRFLOW_VAR_MONITOR_AUC_MARGIN", "0.05")
    monkeypatch.setenv("AIRFLOW_VAR_PROMOTION_MIN_ROC_AUC", "0.8")
    task, _, _ = rendered(dags, monkeypatch, "monitor")
    assert task.command[-6:] == [
        "--psi-threshold",
        "0.25",
        "--auc-margin",
        "0.05",
        "--min-roc-auc",
        "0.8",
    ]


def test_the_monitor_is_given_the_evaluated_days_directories(dags, monkeypatch):
    """The binds and the paths of its command are the day pick_day returned."""
    task, _, _ = rendered(dags, monkeypatch, "monitor", "2026-02-28")
    assert [(m["Target"], m["ReadOnly"]) for m in task.mounts] == [
        ("/data/raw/2026-02-28", True),
        ("/data/predictions/2026-02-28", True),
        ("/data/models", True),
        ("/data/monitoring", False),
        ("/data/model-cache", False),
    ]
    assert flag(task.command, "--predictions-dir") == "/data/predictions/2026-02-28"
    assert flag(task.command, "--labels-dir") == "/data/raw/2026-02-28"
    assert flag(task.command, "--output-dir") == "/data/monitoring/2026-02-28"


def test_sample_inputs_are_pick_days_default(dags):
    """The sample day the other tests render with is what pick_day gives for SAMPLE_DATE with
    the Variable's default."""
    assert monitoring.pick_day(DS, "1") == DAY
    assert MONITORED_DAY_XCOM == {"xcoms": {"pick_day": DAY}}
    assert common.LABEL_DELAY_DAYS == "{{ var.value.get('label_delay_days', '1') }}"


# ---- one run on the Task SDK's task runner -------------------------------------------------
# dag.test() runs monitor_model's tasks through the task runner and an in-process execution
# API against the throw-away SQLite database (as test_alerts.py's callback DAGs), with the
# sensors and the stage's container marked successful. The retraining it starts is a real
# train_model run in that database: whether a run is started, or already exists, is what the
# API server decides.

RUNNER_SKIPS = r"wait_for_predictions|wait_for_labels|monitor"


@pytest.fixture(scope="module")
def pipeline_db():
    """The DAG folder as the only bundle, synced to a migrated SQLite database; the train_model
    runs each test leaves are deleted after it."""
    from airflow.configuration import conf
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils import db
    from ml_dag_testing import AIRFLOW_HOME, DAGS_DIR

    assert str(AIRFLOW_HOME) in os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    db.initdb()
    previous = conf.get("dag_processor", "dag_bundle_config_list")
    bundle = {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(DAGS_DIR)},
    }
    conf.set("dag_processor", "dag_bundle_config_list", json.dumps([bundle]))
    try:
        DagBundlesManager().sync_bundles_to_db()
        bag = BundleDagBag(
            dag_folder=DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder"
        )
        assert bag.import_errors == {}
        sync_bag_to_db(bag, "dags-folder", None)
        yield
    finally:
        conf.set("dag_processor", "dag_bundle_config_list", previous)


@pytest.fixture
def train_model_runs(pipeline_db):
    """train_model's runs in the database: a dict run_id -> (logical date, run type, conf);
    ``scheduled(day)`` adds the run the scheduler makes on a Sunday."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import delete, select

    def runs() -> dict:
        with create_session() as session:
            found = session.scalars(
                select(DagRun).where(DagRun.dag_id == "train_model")
            ).all()
            return {
                r.run_id: (r.logical_date.isoformat(), str(r.run_type), r.conf)
                for r in found
            }

    def scheduled(day: str) -> None:
        logical_date = datetime.fromisoformat(f"{day}T00:00:00+00:00")
        with create_session() as session:
            dag = DBDagBag().get_latest_version_of_dag("train_model", session=session)
            dag.create_dagrun(
                run_id=f"scheduled__{logical_date.isoformat()}",
                logical_date=logical_date,
                data_interval=(logical_date, logical_date),
                run_after=logical_date,
                run_type=DagRunType.SCHEDULED,
                triggered_by=DagRunTriggeredByType.TIMETABLE,
                state=DagRunState.SUCCESS,
                session=session,
            )

    runs.scheduled = scheduled
    yield runs
    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == "train_model"))


def run_monitor(dags, logical_date: datetime) -> tuple[str, dict[str, tuple]]:
    """One monitor_model run by dag.test(): its run id, and task id -> (state, returned
    XCom)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    run = dags["monitor_model"].test(
        logical_date=logical_date, mark_success_pattern=RUNNER_SKIPS
    )
    with create_session() as session:
        result = {}
        for ti in run.get_task_instances(session=session):
            value = session.scalar(
                select(XComModel.value).where(
                    XComModel.dag_id == ti.dag_id,
                    XComModel.run_id == ti.run_id,
                    XComModel.task_id == ti.task_id,
                    XComModel.key == "return_value",
                )
            )
            result[ti.task_id] = (str(ti.state), value)
    return run.run_id, result


def test_a_decay_starts_one_train_model_run_for_the_day(
    dags, reports, webhook, train_model_runs
):
    """Run on Wednesday 2026-01-07: it evaluates Tuesday, alerts, and starts train_model on
    Tuesday; run again for the same day, it starts nothing new."""
    reports("2026-01-06", "decay")
    run_id, states = run_monitor(dags, datetime(2026, 1, 7, tzinfo=UTC))
    assert states == {
        "pick_day": ("success", "2026-01-06"),
        "wait_for_predictions": ("success", None),
        "wait_for_labels": ("success", None),
        "monitor": ("success", None),
        "alert": ("success", "decay"),
        "needs_retraining": ("success", True),
        "retrain": ("success", None),
    }
    assert "found the model decaying" in webhook.requests.get(timeout=10)[1]["title"]
    assert train_model_runs() == {
        "retrain__2026-01-06": (
            "2026-01-06T00:00:00+00:00",
            "operator_triggered",
            {
                "reason": "decay",
                "report": "/data/monitoring/2026-01-06/report.json",
                "monitor_run_id": run_id,
            },
        )
    }

    _, states = run_monitor(dags, datetime(2026, 1, 7, tzinfo=UTC))
    assert states["retrain"] == ("skipped", None)
    assert list(train_model_runs()) == ["retrain__2026-01-06"]


def test_a_decay_on_a_sunday_train_model_ran_on_starts_nothing(
    dags, reports, train_model_runs
):
    """2026-01-04 is a Sunday: train_model's weekly run has that logical date already. The
    doc says nothing new starts and the task says so (it is skipped), rather than failing."""
    train_model_runs.scheduled("2026-01-04")
    reports("2026-01-04", "decay")
    _, states = run_monitor(dags, SAMPLE_DATE)
    assert states["needs_retraining"] == ("success", True)
    assert states["retrain"] == ("skipped", None)
    assert list(train_model_runs()) == ["scheduled__2026-01-04T00:00:00+00:00"]


@pytest.mark.parametrize("verdict", ["ok", "drift"])
def test_no_decay_starts_nothing(dags, reports, train_model_runs, verdict):
    reports("2026-01-06", verdict)
    _, states = run_monitor(dags, datetime(2026, 1, 7, tzinfo=UTC))
    assert states["alert"] == ("success", verdict)
    # The short-circuit skips retrain (and returns no XCom, having raised to skip it).
    assert states["needs_retraining"] == ("success", None)
    assert states["retrain"] == ("skipped", None)
    assert train_model_runs() == {}
