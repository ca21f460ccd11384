"""The person's part of a rollout: the approval page of ``train_model`` in manual mode.

``promote`` writes its decision to ``/data/models/{ds}/promotion.json``. In manual mode the
outcome is ``awaiting_review``; then

1. ``needs_review`` (a short-circuit, no work) lets the approval run only for that outcome,
   so in auto mode everything after it is skipped and the gate alone decides;
2. ``approval`` (:class:`ReviewRequest`, Airflow's human-in-the-loop operator) shows the
   comparison on the task's Required Actions page and waits for *Approve* or *Reject* and
   an optional comment, for the Variable ``approval_timeout_hours`` (default 72); no answer
   in time is taken as *Reject* (the operator's default);
3. ``record_review`` runs ``ml-promote review`` in its container with the answer: it moves
   ``production`` on an approval (only if production is still the version compared with),
   and records the answer, the person, the comment and the time on the version's tags and
   in ``promotion.json``. A timed-out approval then alerts (alerts.py).

Only reading files and rendering text happens here; everything that changes the registry
runs in a stage container.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param, Variable
from airflow.sdk.exceptions import AirflowFailException
from alerts import read_json_object

if TYPE_CHECKING:
    from airflow.sdk import Context

APPROVE = "Approve"
REJECT = "Reject"
AWAITING_REVIEW = "awaiting_review"
# How long the approval waits (a Variable, read when the approval opens), in hours.
APPROVAL_TIMEOUT_VARIABLE = "approval_timeout_hours"
DEFAULT_APPROVAL_TIMEOUT_HOURS = 72.0


def model_dir(ds: str) -> str:
    return f"/data/models/{ds}"


def read_decision(ds: str) -> dict[str, Any]:
    """The decision ``promote`` wrote for ``ds``; a missing or unreadable file fails the
    task (it cannot be told whether a person must look)."""
    path = f"{model_dir(ds)}/promotion.json"
    try:
        return read_json_object(path)
    except (OSError, ValueError, TypeError) as err:
        raise AirflowFailException(f"cannot read {path}: {err}") from err


def awaits_review(ds: str) -> bool:
    """``needs_review``'s condition: True only for a decision awaiting a person."""
    return read_decision(ds).get("outcome") == AWAITING_REVIEW


def approval_timeout(value: str | None) -> timedelta:
    """The Variable ``approval_timeout_hours`` as a duration; a value that is not a positive
    number of hours fails the task rather than waiting forever or not at all."""
    if value is None or not value.strip():
        return timedelta(hours=DEFAULT_APPROVAL_TIMEOUT_HOURS)
    try:
        hours = float(value)
    except ValueError:
        hours = math.nan
    if not (math.isfinite(hours) and hours > 0):
        raise AirflowFailException(
            f"Variable {APPROVAL_TIMEOUT_VARIABLE} = {value!r} is not a positive number of hours"
        )
    return timedelta(hours=hours)


def _number(value: Any, digits: int = 4, sign: str = "") -> str:
    """A figure for the page (``sign="+"`` for a difference), or n/a when it is missing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a"
    return f"{value:{sign}.{digits}f}"


def _signed(value: Any) -> str:
    return _number(value, sign="+")


def _cell(text: Any) -> str:
    """Text for a Markdown table cell: no pipes, no line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def run_link(mlflow_url: str, experiment_id: Any, run_id: Any) -> str:
    if not run_id:
        return "n/a"
    if not experiment_id or not mlflow_url:
        return f"run `{run_id}`"
    base = mlflow_url.rstrip("/")
    return (
        f"[run {str(run_id)[:8]}]({base}/#/experiments/{experiment_id}/runs/{run_id})"
    )


def version_link(mlflow_url: str, name: str, version: Any) -> str:
    if not mlflow_url:
        return f"version {version}"
    base = mlflow_url.rstrip("/")
    return f"[version {version}]({base}/#/models/{name}/versions/{version})"


def review_body(
    decision: dict[str, Any],
    ds: str,
    mlflow_url: str,
    train_rows: Any = None,
    timeout: timedelta | None = None,
) -> str:
    """The approval page's text (Markdown): both versions side by side with the figures the
    rule looked at, the interval, the data date and links to both MLflow runs."""
    name = str(decision.get("registered_model", "?"))
    version = decision.get("version", "?")
    challenger = decision.get("challenger_metrics") or {}
    production = decision.get("production") or None
    prod_metrics = (production or {}).get("metrics") or {}
    header_prod = (
        f"production ({version_link(mlflow_url, name, production.get('version'))})"
        if production
        else "production"
    )
    rows = [
        ("ROC AUC", "roc_auc"),
        ("Log loss", "log_loss"),
        ("Accuracy", "accuracy"),
        ("Precision", "precision"),
        ("Recall", "recall"),
        ("F1", "f1"),
    ]
    table = [
        f"| | challenger ({version_link(mlflow_url, name, version)}) | {header_prod} |",
        "|---|---|---|",
    ]
    for label, key in rows:
        prod_value = _number(prod_metrics.get(key)) if production else "none"
        table.append(f"| {label} | {_number(challenger.get(key))} | {prod_value} |")
    table.append(
        f"| Validation rows | {decision.get('n_val', 'n/a')} | "
        f"{prod_metrics.get('n_val', 'n/a') if production else 'none'} |"
    )
    table.append(
        f"| MLflow run | {run_link(mlflow_url, decision.get('experiment_id'), decision.get('run_id'))} | "
        + (
            run_link(
                mlflow_url, production.get("experiment_id"), production.get("run_id")
            )
            if production
            else "none"
        )
        + " |"
    )

    difference = decision.get("difference")
    if difference:
        interval = (
            f"ROC AUC difference (challenger minus production): "
            f"**{_signed(difference.get('estimate'))}**, "
            f"{_number((difference.get('confidence') or 0) * 100, 0)}% interval "
            f"[{_signed(difference.get('lower'))}, {_signed(difference.get('upper'))}] "
            f"from {difference.get('valid_resamples', '?')} paired bootstrap resamples "
            f"(seed {difference.get('seed', '?')})."
        )
    elif production and production.get("unusable"):
        interval = f"Production cannot be used by this build: {production['unusable']}."
    elif production:
        interval = "The ROC AUC difference is undefined on these rows."
    else:
        interval = "There is no production model yet."
    rule = (
        f"The automatic rule: challenger ROC AUC at least "
        f"{_number(decision.get('min_roc_auc'))}, and the interval's lower end above "
        f"{_signed(decision.get('min_improvement'))}. Its verdict: "
        f"{_cell(decision.get('reason', 'n/a'))}."
    )
    compared = production.get("version") if production else None
    approve = (
        f"**Approve** moves `production` to version {version}, only if production is "
        + (f"still version {compared}" if compared else "still unset")
        + " and the challenger's ROC AUC clears the floor. **Reject** leaves production as it is."
    )
    lines = [
        f"### {_cell(name)} version {version}, trained on {ds}",
        "",
        *table,
        "",
        interval,
        "",
        rule,
        "",
        f"Data date: {ds}; validated on `/data/processed/{ds}/val.csv`"
        + (f"; trained on {train_rows} rows." if train_rows is not None else "."),
        "",
        approve,
    ]
    if timeout is not None:
        hours = timeout.total_seconds() / 3600
        lines += [
            "",
            f"No answer within {hours:g} h counts as **Reject**, with an alert.",
        ]
    return "\n".join(lines)


class ReviewRequest(HITLOperator):
    """The approval of a challenger awaiting review: *Approve* or *Reject*, and a comment.

    The page's text is rendered from ``promotion.json`` when the task starts; the wait is
    the Variable ``approval_timeout_hours`` (default 72). The task's result (XCom) is what
    ``record_review`` passes to ``ml-promote review``: ``answer`` (approve, reject or
    timeout), ``by`` (the respondent's user name, empty on a timeout), ``comment`` and
    ``responded_at``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            subject="Roll out the model trained on {{ ds }} to production?",
            options=[APPROVE, REJECT],
            defaults=[REJECT],
            params={
                "comment": Param(
                    "",
                    type="string",
                    title="Comment",
                    description="Why (recorded on the model version with your name)",
                )
            },
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        ds = context["ds"]
        decision = read_decision(ds)
        if decision.get("outcome") != AWAITING_REVIEW:
            raise AirflowFailException(
                f"{model_dir(ds)}/promotion.json is {decision.get('outcome')!r}, not awaiting review"
            )
        self.response_timeout = approval_timeout(
            Variable.get(APPROVAL_TIMEOUT_VARIABLE, default=None)
        )
        try:
            train_rows = read_json_object(f"{model_dir(ds)}/params.json")["rows"][
                "train"
            ]
        except (OSError, ValueError, KeyError, TypeError):
            train_rows = None
        self.subject = (
            f"Roll out {decision.get('registered_model')} version "
            f"{decision.get('version')} (trained on {ds}) to production?"
        )
        self.body = review_body(
            decision,
            ds,
            os.environ.get("ML_MLFLOW_BASE_URL", ""),
            train_rows,
            self.response_timeout,
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        result = super().execute_complete(context, event)
        return answer_of(result, timed_out=bool(event.get("timedout")))


def answer_of(result: dict[str, Any], timed_out: bool) -> dict[str, str]:
    """The HITL result as ``ml-promote review`` takes it. A response without a user is a
    timeout whatever Airflow's flag says: a rejection, but never one anybody gave."""
    user = result.get("responded_by_user") or {}
    by = str(user.get("name") or user.get("id") or "") if user else ""
    chosen = list(result.get("chosen_options") or [])
    responded_at = result.get("responded_at")
    at = (
        responded_at.isoformat()
        if hasattr(responded_at, "isoformat")
        else str(responded_at or "")
    )
    if timed_out or not by:
        answer = "timeout"
        by = ""
    elif chosen == [APPROVE]:
        answer = "approve"
    else:
        answer = "reject"
    params = result.get("params_input") or {}
    return {
        "answer": answer,
        "by": by,
        "comment": str(params.get("comment") or ""),
        "responded_at": at,
    }
