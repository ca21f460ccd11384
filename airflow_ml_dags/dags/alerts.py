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

import dataclasses
import html
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
        return f"Airflow: {self.dag_id}.{self.task_id} {self.event} for {self.logical_date}"

    def lines(self) -> list[tuple[str, str]]:
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
    if label == "Log":
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
        if alert is None:
            return
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
                self.log.exception("Alert channel %s failed", conn_id)
                failed.append(conn_id)
            else:
                sent.append(conn_id)
        if not sent and not failed:
            self.log.warning("%s", off_message())
            return
        if sent:
            # "Handed to": Apprise reports a service that refused the message only in its
            # own log lines (its hook drops the result), which appear just above.
            self.log.info("Alert handed to %s: %s", ", ".join(sent), alert.title)
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


class UnusableProductionNotifier(FailureAlertNotifier):
    """Alerts when ``promote`` succeeded by replacing a production model that this build
    cannot use (another model file format, a damaged file): the one case in which production
    moves without a comparison, so a person hears of it. It reads the decision the stage
    wrote, ``/data/models/{ds}/promotion.json``; any other decision sends nothing."""

    def make_alert(self, context: Context) -> Alert | None:
        path = promotion_file(context)
        try:
            with open(path, encoding="utf-8") as file:
                decision = json.load(file)
        except (OSError, ValueError) as err:
            self.log.warning("cannot read %s: %s", path, err)
            return None
        if not decision.get("production_unusable"):
            return None
        alert = alert_from_context(context)
        return dataclasses.replace(
            alert,
            event="replaced an unusable production model",
            detail_label="Decision",
            error=(
                f"{decision.get('registered_model')} version {decision.get('version')} "
                f"is production now: {decision.get('reason')}"
            ),
        )


def promotion_file(context: Context) -> str:
    """Where ``promote`` writes its decision for the run's logical date."""
    return f"/data/models/{context['ds']}/promotion.json"


# The callback every task gets (common.DEFAULT_ARGS). Notifiers are callables that take the
# context, which is what Airflow calls a callback with.
on_failure = FailureAlertNotifier()
# The success callback of ``promote``.
on_unusable_production_replaced = UnusableProductionNotifier()
