"""Failure alerts that reach a person: one callback, every channel that is configured.

Every task of every DAG gets :data:`on_failure` as its ``on_failure_callback`` (through
``common.DEFAULT_ARGS``). Airflow calls it in the worker once a task has failed for good:
after its last retry, at once for ``AirflowFailException``, and when a sensor times out. A
failed try that will be retried goes to ``on_retry_callback`` instead, so a task that
succeeds on a retry raises no alert.

Channels are Airflow connections, normally given by the environment of the Airflow
containers (``.env``, passed on by docker-compose.yml):

``alert_email`` (``AIRFLOW_CONN_ALERT_EMAIL``)
    an SMTP connection, sent by the SMTP provider's ``SmtpNotifier``. The recipients are the
    connection's extra ``to`` (comma-separated), the sender its extra ``from_email``::

        smtp://user:password@mail.example.com:587?from_email=airflow%40example.com&to=oncall%40example.com

``alert_apprise`` (``AIRFLOW_CONN_ALERT_APPRISE``)
    an Apprise connection, sent by the Apprise provider's ``AppriseNotifier``: one URL per
    service (Slack, Microsoft Teams, Discord, Mattermost, Telegram, ntfy, Matrix, a plain
    JSON webhook and about a hundred more; see Apprise's documentation)::

        {"conn_type": "apprise", "extra": {"config": {"path": "slack://T000/B000/XXXX"}}}

With neither, failures are only in the UI: the callback says in the task log that alerts are
off, and airflow-init says it once when the stack starts (:func:`startup_message`).

The alert names the DAG, the task, the logical date, the try, the first line of the error
and a link to the task's log in the UI; the link's base is Airflow's ``[api] base_url``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseHook, BaseNotifier
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

if TYPE_CHECKING:
    from airflow.sdk import Context

EMAIL_CONN_ID = "alert_email"
APPRISE_CONN_ID = "alert_apprise"
CHANNEL_CONN_IDS = (EMAIL_CONN_ID, APPRISE_CONN_ID)

# Stage binaries print their error as "error: ..." (ml-cli); DockerOperator keeps the output.
_STAGE_ERROR_PREFIX = "error:"


@dataclass(frozen=True)
class Alert:
    """What a person needs to act on a failed task, independent of the channel."""

    dag_id: str
    task_id: str
    logical_date: str
    try_number: int
    max_tries: int
    error: str
    log_url: str
    # What happened, when it is not a failure (a notice from a task that succeeded).
    event: str = "failed"
    detail_label: str = "Error"

    @property
    def title(self) -> str:
        what = f"{self.dag_id}.{self.task_id}" if self.task_id else self.dag_id
        return f"Airflow: {what} {self.event} for {self.logical_date}"

    def lines(self) -> list[tuple[str, str]]:
        """Label and value of each line; a run's alert (no task) has no task and try."""
        if not self.task_id:
            return [
                ("DAG", self.dag_id),
                ("Logical date", self.logical_date),
                (self.detail_label, self.error),
                ("Run", self.log_url),
            ]
        return [
            ("DAG", self.dag_id),
            ("Task", self.task_id),
            ("Logical date", self.logical_date),
            ("Try", f"{self.try_number} of {self.max_tries}"),
            (self.detail_label, self.error),
            ("Log", self.log_url),
        ]

    def text(self) -> str:
        width = max(len(label) for label, _ in self.lines()) + 1
        return "\n".join(
            f"{label + ':':<{width}} {value}" for label, value in self.lines()
        )

    def html(self) -> str:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{_html_value(label, value)}</td></tr>"
            for label, value in self.lines()
        )
        return f"<p>{html.escape(self.title)}</p><table>{rows}</table>"


def _html_value(label: str, value: str) -> str:
    if label in ("Log", "Run"):
        return f"<a href='{html.escape(value, quote=True)}'>{html.escape(value)}</a>"
    return html.escape(value)


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def first_error_line(error: BaseException | str | None) -> str:
    """The line of the failure a person reads first.

    For a stage container that failed, that is the stage's own ``error: ...`` line (kept by
    DockerOperator on the exception, possibly one wrapped by another); otherwise the first
    line of the exception, named by its type.
    """
    if error is None:
        return "unknown error (see the log)"
    if isinstance(error, str):
        return error.strip().splitlines()[0] if error.strip() else "unknown error"
    for cause in _causes(error):
        for line in reversed(_output_lines(getattr(cause, "logs", None))):
            if line.startswith(_STAGE_ERROR_PREFIX):
                return line
    message = str(error).strip()
    first = message.splitlines()[0] if message else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _output_lines(chunks: list[str | bytes] | None) -> list[str]:
    lines: list[str] = []
    for chunk in chunks or []:
        text = (
            chunk.decode(errors="replace") if isinstance(chunk, bytes) else str(chunk)
        )
        lines.extend(line.strip() for line in text.splitlines())
    return lines


def alert_from_context(context: Context) -> Alert:
    ti = context["ti"]
    logical_date = context.get("logical_date")
    # AirflowFailException: failed for good on this try (bad input, a usage error, or the
    # last try a non-transient failure gets), whatever retries the task has left.
    final = isinstance(context.get("exception"), AirflowFailException)
    return Alert(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        logical_date=logical_date.isoformat() if logical_date else context["run_id"],
        try_number=ti.try_number,
        # Airflow's max_tries counts the retries; a person counts the first run too.
        max_tries=ti.try_number if final else max(ti.max_tries + 1, ti.try_number),
        error=first_error_line(context.get("exception")),
        log_url=ti.log_url,
    )


def _email_notifier(conn: Any, alert: Alert) -> BaseNotifier:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    recipients = [
        address.strip()
        for address in str(conn.extra_dejson.get("to", "")).split(",")
        if address.strip()
    ]
    if not recipients:
        raise ValueError(
            f"connection {EMAIL_CONN_ID} has no recipients: add ?to=someone%40example.com "
            "(comma-separated) to its URI"
        )
    return SmtpNotifier(
        smtp_conn_id=EMAIL_CONN_ID,
        to=recipients,
        subject=alert.title,
        html_content=alert.html(),
    )


def _apprise_notifier(conn: Any, alert: Alert) -> BaseNotifier:
    from airflow.providers.apprise.notifications.apprise import AppriseNotifier
    from apprise import NotifyType

    return AppriseNotifier(
        apprise_conn_id=APPRISE_CONN_ID,
        title=alert.title,
        body=alert.text(),
        notify_type=NotifyType.FAILURE,
    )


_CHANNELS: dict[str, Callable[[Any, Alert], BaseNotifier]] = {
    EMAIL_CONN_ID: _email_notifier,
    APPRISE_CONN_ID: _apprise_notifier,
}


class FailureAlertNotifier(BaseNotifier):
    """Sends one alert about the failed task to every configured channel.

    Each channel is a provider notifier (``SmtpNotifier``, ``AppriseNotifier``) whose
    connection exists. The notifiers get the finished message and are called through
    ``notify``, not through ``__call__``: an error message is text, never a Jinja template.
    A channel that fails does not stop the others; the callback then fails, so the task log
    says which channel did not get the alert.
    """

    def make_alert(self, context: Context) -> Alert | None:
        return alert_from_context(context)

    def notify(self, context: Context) -> None:
        alert = self.make_alert(context)
        if alert is not None:
            send(alert, context, self.log)


def send(alert: Alert, context: Context, log: Any) -> list[str]:
    """Sends ``alert`` to every configured channel from a task or its callback; returns the
    ones that took it. A channel that fails does not stop the others; then this raises (see
    :func:`report_delivery`)."""
    sent: list[str] = []
    failed: list[str] = []
    for conn_id, make_notifier in _CHANNELS.items():
        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            continue
        try:
            make_notifier(conn, alert).notify(context)
        except Exception:
            log.exception("Alert channel %s failed", conn_id)
            failed.append(conn_id)
        else:
            sent.append(conn_id)
    report_delivery(log, alert, sent, failed)
    return sent


def report_delivery(log: Any, alert: Alert, sent: list[str], failed: list[str]) -> None:
    """Says where an alert went, and fails when a channel did not take it (so the task log,
    or the triggerer's, names the channel)."""
    if not sent and not failed:
        log.warning("%s", off_message())
        return
    if sent:
        # "Handed to": Apprise reports a service that refused the message only in its own
        # log lines (its hook drops the result), which appear just above.
        log.info("Alert handed to %s: %s", ", ".join(sent), alert.title)
    if failed:
        raise RuntimeError(f"alert not delivered through {', '.join(failed)}")


def off_message() -> str:
    env = " or ".join(f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in CHANNEL_CONN_IDS)
    return f"Failure alerts are off: no connection {' or '.join(CHANNEL_CONN_IDS)} (set {env})"


def startup_message(environ: dict[str, str] | None = None) -> str:
    """One line for the stack's start: which channels the environment configures.

    Only the environment is read (cheap, no database): connections created later in the UI
    are still used by the callback.
    """
    environ = os.environ if environ is None else environ
    channels = [c for c in CHANNEL_CONN_IDS if environ.get(f"AIRFLOW_CONN_{c.upper()}")]
    if not channels:
        return off_message()
    return f"Failure alerts go to: {', '.join(channels)}"


class DecisionNotifier(FailureAlertNotifier):
    """Alerts about a decision that a task succeeded in recording, when a person should hear
    of it: it reads ``/data/models/{ds}/promotion.json`` and asks ``notice`` whether the
    decision is such a one (an event and a detail line) or not (``None``)."""

    def __init__(
        self, notice: Callable[[dict[str, Any]], tuple[str, str] | None]
    ) -> None:
        super().__init__()
        self.notice = notice

    def make_alert(self, context: Context) -> Alert | None:
        path = promotion_file(context)
        try:
            decision = read_json_object(path)
        except (OSError, ValueError, TypeError) as err:
            self.log.warning("cannot read %s: %s", path, err)
            return None
        found = self.notice(decision)
        if found is None:
            return None
        event, detail = found
        return dataclasses.replace(
            alert_from_context(context),
            event=event,
            detail_label="Decision",
            error=detail,
        )


def unusable_production_replaced(decision: dict[str, Any]) -> tuple[str, str] | None:
    """``promote`` replaced a production model that this build cannot use (another model
    file format, a damaged file): the one case in which production moves without a
    comparison."""
    if not decision.get("production_unusable"):
        return None
    return (
        "replaced an unusable production model",
        (
            f"{decision.get('registered_model')} version {decision.get('version')} "
            f"is production now: {decision.get('reason')}"
        ),
    )


def approval_timed_out(decision: dict[str, Any]) -> tuple[str, str] | None:
    """Nobody answered the approval in time: the challenger was rejected by the clock."""
    review = decision.get("review") or {}
    if review.get("answer") != "timeout":
        return None
    return (
        "approval timed out",
        (
            f"nobody answered in time, so {decision.get('registered_model')} version "
            f"{decision.get('version')} was rejected and production stays at version "
            f"{review.get('production_before') or 'none'}"
        ),
    )


def promotion_file(context: Context) -> str:
    """Where ``promote`` writes its decision for the run's logical date."""
    return promotion_path(context["ds"])


def promotion_path(ds: str) -> str:
    """Where ``promote`` writes its decision for the logical date ``ds``."""
    return f"/data/models/{ds}/promotion.json"


def read_json_object(path: str) -> dict[str, Any]:
    """A JSON file holding an object (``promotion.json``, ``params.json``); OSError,
    ValueError (not JSON) or TypeError (not an object) otherwise."""
    with open(path, encoding="utf-8") as file:
        value = json.load(file)
    if not isinstance(value, dict):
        raise TypeError(f"{path}: not a JSON object")
    return value


# The callback every task gets (common.DEFAULT_ARGS). Notifiers are callables that take the
# context, which is what Airflow calls a callback with.
on_failure = FailureAlertNotifier()
# The success callback of ``promote``.
on_unusable_production_replaced = DecisionNotifier(unusable_production_replaced)
# The success callback of ``record_review``.
on_approval_timed_out = DecisionNotifier(approval_timed_out)


# ---- deadline alerts -------------------------------------------------------------------
# Airflow's deadline alerts (DAG(deadline=...)) call these in the triggerer, with a small
# context: the run as the REST API shows it (``dag_run``) and the deadline. They send through
# the same channels as the failure callback, asynchronously (the triggerer's event loop).


async def send_async(alert: Alert) -> list[str]:
    """Sends ``alert`` to every configured channel; returns the ones that took it. A channel
    that fails does not stop the others; then this raises, so the triggerer's log (and the
    callback's state) says which channel did not get it."""
    import logging

    log = logging.getLogger(__name__)
    sent: list[str] = []
    failed: list[str] = []
    for conn_id, make_notifier in _CHANNELS.items():
        try:
            conn = await BaseHook.aget_connection(conn_id)
        except AirflowNotFoundException:
            continue
        try:
            await make_notifier(conn, alert).async_notify({})
        except Exception:
            log.exception("Alert channel %s failed", conn_id)
            failed.append(conn_id)
        else:
            sent.append(conn_id)
    report_delivery(log, alert, sent, failed)
    return sent


def run_alert(context: dict[str, Any], event: str, detail: str) -> Alert | None:
    """The alert about a run whose deadline passed, or ``None`` when the run has finished
    by now: a failed run already alerted through its task, and Airflow fires a deadline for
    a run that failed before it (apache/airflow#60927)."""
    run = context.get("dag_run") or {}
    if run.get("state") in ("success", "failed"):
        return None
    dag_id = str(run.get("dag_id", "?"))
    run_id = str(run.get("dag_run_id", "?"))
    base = _base_url()
    return Alert(
        dag_id=dag_id,
        task_id="",
        logical_date=str(run.get("logical_date") or run_id),
        try_number=0,
        max_tries=0,
        error=detail,
        log_url=f"{base}/dags/{dag_id}/runs/{quote(run_id, safe='')}",
        event=event,
        detail_label="Why",
    )


def _base_url() -> str:
    from airflow.configuration import conf

    # The same fallback as the task alerts' log links (a task instance's log_url).
    return str(
        conf.get("api", "base_url", fallback="") or "http://localhost:8080"
    ).rstrip("/")


def _read_decision(path: str) -> dict[str, Any]:
    """A promotion.json, or an empty decision when there is none (yet) or it is unreadable."""
    try:
        return read_json_object(path)
    except (OSError, ValueError, TypeError):
        return {}


def _day(run: dict[str, Any]) -> str:
    return str(run.get("logical_date") or "")[:10]


async def predictions_late(context: dict[str, Any] | None = None, **_: Any) -> None:
    """The ``predict`` deadline: a day's predictions are not written in time."""
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time", "the deadline")
    alert = run_alert(
        context,
        "predictions late",
        f"no predictions for {_day(run)} by {deadline}: the run is {run.get('state')} "
        f"(queued at {run.get('queued_at')}); /data/predictions/{_day(run)}/ is not complete",
    )
    if alert is not None:
        await send_async(alert)


async def approval_reminder(context: dict[str, Any] | None = None, **_: Any) -> None:
    """The ``train_model`` reminder: the run is still going long after it was queued,
    normally because its approval waits for a person."""
    context = context or {}
    run = context.get("dag_run") or {}
    day = _day(run)
    decision = await asyncio.to_thread(_read_decision, promotion_path(day))
    if decision.get("outcome") == "awaiting_review" and not decision.get("review"):
        run_id = quote(str(run.get("dag_run_id", "?")), safe="")
        url = f"{_base_url()}/dags/train_model/runs/{run_id}/tasks/approval/required_actions"
        detail = (
            f"{decision.get('registered_model')} version {decision.get('version')} still "
            f"awaits approval (queued at {run.get('queued_at')}): answer it at {url}"
        )
        event = "approval pending"
    else:
        detail = (
            f"the run is still {run.get('state')} since it was queued at "
            f"{run.get('queued_at')}, and no approval is pending: look at its tasks"
        )
        event = "still running"
    alert = run_alert(context, event, detail)
    if alert is not None:
        await send_async(alert)
