"""What monitor_model does around the ``ml-monitor`` stage: which day it evaluates, who hears
of a verdict, and when a verdict starts a retraining.

Everything reads the stage's ``report.json`` (``/data/monitoring/{day}/report.json``,
written last by ``ml-monitor``, so it is complete when it exists); nothing here computes a
metric.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from alerts import alert_from_context, read_json_object, send

log = logging.getLogger(__name__)

MONITORING_DIR = "/data/monitoring"
# The most days labels may lag behind the data they label.
MAX_LABEL_DELAY_DAYS = 365
MAX_COOLDOWN_DAYS = 365
# How far back the cooldown looks for a chain of decays of one model version.
MAX_LOOKBACK_DAYS = 400
RETRAIN_DAG_ID = "train_model"


def report_path(day: str) -> str:
    return f"{MONITORING_DIR}/{day}/report.json"


def whole_days(name: str, text: str, most: int) -> int:
    """A Variable holding a whole number of days from 0 to ``most``; anything else fails the
    task for good, naming the Variable (a guess could evaluate the wrong day)."""
    value = str(text).strip()
    if not (value.isascii() and value.isdigit()) or int(value) > most:
        raise AirflowFailException(
            f"Variable {name} must be a whole number of days from 0 to {most}, got {text!r}"
        )
    return int(value)


def pick_day(ds: str, label_delay_days: str) -> str:
    """The day whose labels are complete on the run's logical date ``ds``: ``ds`` minus the
    Variable ``label_delay_days``. Returned as the task's XCom, which every later task of the
    run reads (``common.MONITORED_DAY``)."""
    delay = whole_days("label_delay_days", label_delay_days, MAX_LABEL_DELAY_DAYS)
    day = (date.fromisoformat(ds) - timedelta(days=delay)).isoformat()
    log.info(
        "evaluating %s: the run's day %s less %d day(s) of label delay", day, ds, delay
    )
    return day


def read_report(day: str) -> dict[str, Any]:
    """The day's report; a missing or unreadable one fails the task for good: the stage
    before this task succeeded, so it should be there, and without it nothing can be told."""
    path = report_path(day)
    try:
        report = read_json_object(path)
    except (OSError, ValueError, TypeError) as err:
        raise AirflowFailException(f"cannot read {path}: {err}") from err
    if report.get("verdict") not in ("ok", "drift", "decay"):
        raise AirflowFailException(f"{path}: no verdict ok, drift or decay in it")
    return report


def model_name(report: dict[str, Any]) -> str:
    model = report.get("model") or {}
    if model.get("registered_model"):
        return f"{model['registered_model']} version {model.get('version')}"
    return str(model.get("uri") or "the model")


EVENTS = {
    "drift": "found input drift",
    "decay": "found the model decaying",
}


def verdict_detail(day: str, report: dict[str, Any]) -> str:
    reasons = (
        "; ".join(str(r) for r in report.get("reasons") or []) or "no reason given"
    )
    html_path = report_path(day).removesuffix(".json") + ".html"
    return (
        f"{model_name(report)} on {day}: {report['verdict']}: {reasons}. "
        f"Report: {html_path}"
    )


def alert_on_verdict(day: str, **context: Any) -> str:
    """Alerts through every configured channel (alerts.py) when the day's verdict is
    ``drift`` or ``decay``, with the reasons and the report's path; returns the verdict."""
    report = read_report(day)
    verdict = report["verdict"]
    if verdict == "ok":
        log.info("%s on %s: ok, no alert", model_name(report), day)
        return verdict
    alert = dataclasses.replace(
        alert_from_context(context),
        event=EVENTS[verdict],
        detail_label="Verdict",
        error=verdict_detail(day, report),
    )
    send(alert, context, log)
    return verdict


def same_model(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ma, mb = a.get("model") or {}, b.get("model") or {}
    if ma.get("registered_model") or mb.get("registered_model"):
        return (ma.get("registered_model"), ma.get("version")) == (
            mb.get("registered_model"),
            mb.get("version"),
        )
    return ma.get("uri") == mb.get("uri")


def decays_before(day: str, report: dict[str, Any], cooldown: int) -> list[date]:
    """The earlier days on which the same model was found decaying, back to the first gap
    of ``cooldown`` days without such a day (what can still bear on ``day``), oldest first.
    Looks back at most MAX_LOOKBACK_DAYS."""
    first = date.fromisoformat(day)
    found: list[date] = []
    gap = 0
    back = 1
    while gap < cooldown and back <= MAX_LOOKBACK_DAYS:
        earlier = first - timedelta(days=back)
        try:
            old = read_json_object(report_path(earlier.isoformat()))
        except (OSError, ValueError, TypeError):
            old = {}
        if old.get("verdict") == "decay" and same_model(old, report):
            found.append(earlier)
            gap = 0
        else:
            gap += 1
        back += 1
    return sorted(found)


def last_retraining(decays: list[date], cooldown: int) -> date | None:
    """Of ``decays`` (oldest first), the last day that started a retraining by the same rule:
    a decay starts one unless one started within the ``cooldown`` days before it."""
    started: list[date] = []
    for day in decays:
        if not started or (day - started[-1]).days > cooldown:
            started.append(day)
    return started[-1] if started else None


def needs_retraining(day: str, retrain_cooldown_days: str) -> bool:
    """True when the day's verdict is ``decay`` and no decay of the same model version in the
    Variable ``retrain_cooldown_days`` (default 7) before it started a retraining: a version
    that keeps decaying starts one again once the cooldown after its last one is over. The
    ``retrain`` task after it is skipped otherwise. Read from the reports alone (Airflow's
    containers see /data read-only, so nothing records a retraining there)."""
    report = read_report(day)
    if report["verdict"] != "decay":
        log.info("verdict %s: no retraining", report["verdict"])
        return False
    cooldown = whole_days(
        "retrain_cooldown_days", retrain_cooldown_days, MAX_COOLDOWN_DAYS
    )
    last = last_retraining(decays_before(day, report, cooldown), cooldown)
    if last is not None and (date.fromisoformat(day) - last).days <= cooldown:
        log.info(
            "%s decayed on %s too, which started a retraining within the %d-day "
            "cooldown: not starting another",
            model_name(report),
            last.isoformat(),
            cooldown,
        )
        return False
    log.info(
        "%s decays on %s: retraining on %s (train_model run retrain__%s)",
        model_name(report),
        day,
        day,
        day,
    )
    return True
