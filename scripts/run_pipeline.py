#!/usr/bin/env python3
"""Runs the pipeline over the last two weeks on the running stack, through Airflow's REST API.

What it does, in order (every step is idempotent: a second run reuses the runs that exist):

1. waits until the dag processor has parsed the three DAGs;
2. unpauses ``generate_data`` and ``train_model`` and asks for a ``generate_data`` run for
   each day of the stretch and a ``train_model`` run for each Sunday in it. They all start
   at once: the training runs' sensors wait until their day's data has arrived;
3. reports each training run's promotion decision (``train_model``'s ``promote`` task
   registers every model in MLflow and moves the alias ``production`` when it wins);
4. unpauses ``predict`` and asks for a run for each day, scoring it with the model the
   Variable ``model_path`` names: by default ``models:/heart-disease-classifier@production``;
5. prints a summary and where the files are;
6. trains once more in manual mode (on the last day of the stretch that is not a Sunday),
   so that one approval waits for a person, and prints the address of its page
   (``--no-approval`` skips this).

It needs only Python's standard library, so it runs before (or without) the dev venv:

    python3 scripts/run_pipeline.py                 # 14 days ending today (UTC)
    python3 scripts/run_pipeline.py --days 7 --end 2026-11-22

The address and credentials come from the stack's env file (``.env``, written by
``scripts/stack.sh env``; ``ML_ENV_FILE`` or ``--env-file`` to use another one).

Unpausing a DAG can also let the scheduler start the run of its latest tick (catchup is off;
Airflow does so when the tick is recent: for example within 2.4 hours of midnight for a daily
DAG). Such a run falls inside the stretch, so it is one this script would have asked for:
it finds it and waits for it instead.

The ``AirflowClient`` class is the REST client that tests/system/test_e2e.py uses as well.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAG_IDS = ("generate_data", "train_model", "predict", "monitor_model")
FINISHED = {"success", "failed"}


class AirflowError(RuntimeError):
    """An API call answered with an unexpected status."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class AirflowClient:
    """A small client for Airflow 3's REST API (``/api/v2``), authenticated with a JWT from
    ``POST /auth/token``; the token is renewed when the server stops accepting it."""

    def __init__(
        self, base_url: str, username: str, password: str, timeout: float = 30
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._timeout = timeout
        self._token: str | None = None

    # -- plumbing -------------------------------------------------------------------------

    def _send(self, method: str, url: str, body: object, headers: dict[str, str]):
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def token(self) -> str:
        url = f"{self.base_url}/auth/token"
        status, text = self._send("POST", url, self._credentials, {})
        if status not in (200, 201):
            raise AirflowError("POST", url, status, text)
        self._token = json.loads(text)["access_token"]
        return self._token

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        params: dict[str, object] | None = None,
        ok: Iterable[int] = (200, 201, 204),
    ):
        """Calls ``/api/v2{path}`` and returns the decoded JSON (None for no content)."""
        url = f"{self.base_url}/api/v2{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._token or self.token()}"}
            status, text = self._send(method, url, body, headers)
            if status == 401 and attempt == 1:
                self._token = None
                continue
            break
        if status not in set(ok):
            raise AirflowError(method, url, status, text)
        return json.loads(text) if text.strip() else None

    # -- DAGs and runs --------------------------------------------------------------------

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 180) -> None:
        """Blocks until the dag processor has parsed every DAG (the API knows it)."""
        deadline = time.monotonic() + timeout
        for dag_id in dag_ids:
            while True:
                try:
                    self.request("GET", f"/dags/{dag_id}")
                    break
                except AirflowError as err:
                    if err.status != 404 or time.monotonic() > deadline:
                        raise
                time.sleep(2)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", {"is_paused": paused})

    def find_run(self, dag_id: str, day: date) -> dict | None:
        stamp = logical_date(day)
        runs = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns",
            params={"logical_date_gte": stamp, "logical_date_lte": stamp},
        )["dag_runs"]
        return runs[0] if runs else None

    def trigger(self, dag_id: str, day: date) -> dict:
        """A new manual run of ``dag_id`` for logical date ``day`` (00:00 UTC)."""
        return self.request(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            {"logical_date": logical_date(day), "conf": {}},
        )

    def ensure_run(self, dag_id: str, day: date) -> dict:
        """The run of ``dag_id`` for ``day``: the existing one (scheduled, or from an earlier
        call) or a new one. A failed existing run is kept as it is; see ``rerun_failed``."""
        run = self.find_run(dag_id, day)
        if run is not None:
            return run
        try:
            return self.trigger(dag_id, day)
        except AirflowError as err:
            # The scheduler created the same logical date in between.
            if err.status != 409:
                raise
            run = self.find_run(dag_id, day)
            if run is None:
                raise
            return run

    def rerun_failed(self, dag_id: str, run_id: str) -> None:
        """Clears the failed (and upstream-failed) tasks of a run so they run again."""
        self.request(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            {
                "dag_run_id": run_id,
                "only_failed": True,
                "dry_run": False,
                "reset_dag_runs": True,
            },
        )

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id)}")

    def wait_for_runs(
        self,
        runs: Iterable[tuple[str, str]],
        timeout: float,
        on_change: Callable[[str, str, str, dict], None] | None = None,
        poll: float = 2,
    ) -> dict[tuple[str, str], dict]:
        """Polls until every (dag_id, run_id) has finished; returns the final runs.

        ``on_change(dag_id, run_id, state, run)`` is called whenever a run changes state."""
        pending = {key: "" for key in runs}
        final: dict[tuple[str, str], dict] = {}
        deadline = time.monotonic() + timeout
        while pending:
            for key in list(pending):
                run = self.dag_run(*key)
                if run["state"] != pending[key] and on_change:
                    on_change(key[0], key[1], run["state"], run)
                pending[key] = run["state"]
                if run["state"] in FINISHED:
                    final[key] = run
                    del pending[key]
            if pending:
                if time.monotonic() > deadline:
                    waiting = ", ".join(
                        f"{d} {r} ({s})" for (d, r), s in pending.items()
                    )
                    raise TimeoutError(
                        f"runs not finished after {timeout:.0f} s: {waiting}"
                    )
                time.sleep(poll)
        return final

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.request(
            "GET", f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances"
        )["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The task's log as text, one line per log event."""
        data = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
        )
        content = data.get("content", [])
        if isinstance(content, str):
            return content
        lines = []
        for event in content:
            if not isinstance(event, dict):
                lines.append(str(event))
                continue
            lines.append(event.get("event", ""))
            # A task's failure: the exception, without the stack frames.
            for error in event.get("error_detail") or []:
                lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
        return "\n".join(lines)

    def wait_for_task(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: Iterable[str],
        timeout: float,
        poll: float = 2,
    ) -> dict:
        """Polls until the task instance is in one of ``states``; fails early when its run
        finishes without the task getting there."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        while True:
            ti = self.request(
                "GET",
                f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}",
            )
            if ti["state"] in wanted:
                return ti
            run_state = self.dag_run(dag_id, run_id)["state"]
            if run_state in FINISHED or time.monotonic() > deadline:
                raise TimeoutError(
                    f"{dag_id} {run_id} {task_id} is {ti['state']} (run {run_state}), "
                    f"not {'/'.join(sorted(wanted))}"
                )
            time.sleep(poll)

    # -- Human-in-the-loop ----------------------------------------------------------------

    def open_approval(self, day: date, timeout: float) -> dict:
        """A train_model run for ``day`` waiting at its approval: the Variable
        promotion_mode is ``manual`` until the approval opens, then as it was."""
        before = self.get_variable("promotion_mode")
        self.set_variable("promotion_mode", "manual")
        try:
            run = self.ensure_run("train_model", day)
            self.wait_for_task(
                "train_model",
                run["dag_run_id"],
                "approval",
                {"awaiting_input"},
                timeout,
            )
            self.wait_for_pending(run["dag_run_id"], "approval", 120)
            # A moment more for the paused task to settle before anyone answers.
            time.sleep(3)
        finally:
            self.set_variable("promotion_mode", before or "auto")
        return run

    def wait_for_pending(
        self, run_id: str, task_id: str, timeout: float, poll: float = 1
    ) -> dict:
        """Polls until the run's human-in-the-loop request is listed as waiting for an
        answer. The rollout tests saw an answer given right as the task paused end with
        the resumed task killed ("the task shouldn't be running anymore"); answering only
        once the request is listed is what a person on the page does anyway."""
        deadline = time.monotonic() + timeout
        while True:
            listed = [
                p
                for p in self.pending_approvals()
                if p["task_instance"]["dag_run_id"] == run_id
                and p["task_instance"]["task_id"] == task_id
            ]
            if listed:
                return listed[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{run_id} {task_id}: no pending request listed")
            time.sleep(poll)

    def pending_approvals(self) -> list[dict]:
        """Every human-in-the-loop request still waiting for an answer."""
        return self.request(
            "GET",
            "/dags/~/dagRuns/~/hitlDetails",
            params={"response_received": "false"},
        )["hitl_details"]

    def answer(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen: str,
        params: dict[str, object] | None = None,
    ) -> dict:
        """Answers a waiting human-in-the-loop task, as its page's buttons do."""
        return self.request(
            "PATCH",
            f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/-1/hitlDetails",
            {"chosen_options": [chosen], "params_input": params or {}},
        )

    def required_actions_url(
        self, ui_url: str, dag_id: str, run_id: str, task_id: str
    ) -> str:
        """The page on which a person answers the task (Browse > Required Actions)."""
        return (
            f"{ui_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"
            f"/tasks/{task_id}/required_actions"
        )

    # -- Variables ------------------------------------------------------------------------

    def get_variable(self, key: str) -> str | None:
        try:
            return self.request("GET", f"/variables/{quote(key)}")["value"]
        except AirflowError as err:
            if err.status == 404:
                return None
            raise

    def set_variable(self, key: str, value: str) -> None:
        body = {"key": key, "value": value}
        try:
            self.request("PATCH", f"/variables/{quote(key)}", body)
        except AirflowError as err:
            if err.status != 404:
                raise
            self.request("POST", "/variables", body)


def quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def logical_date(day: date) -> str:
    return (
        datetime(day.year, day.month, day.day, tzinfo=UTC)
        .isoformat()
        .replace("+00:00", "Z")
    )


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


# -- the demo -----------------------------------------------------------------------------


def stretch(end: date, days: int) -> tuple[list[date], list[date]]:
    """The days of the stretch and its Sundays (when the weekly training is scheduled)."""
    all_days = [end - timedelta(days=n) for n in range(days - 1, -1, -1)]
    return all_days, [d for d in all_days if d.weekday() == 6]


class Progress:
    """Prints one line per state change, with the time since the run was asked for."""

    def __init__(self, labels: dict[tuple[str, str], str]) -> None:
        self.labels = labels
        self.start = time.monotonic()

    def __call__(self, dag_id: str, run_id: str, state: str, run: dict) -> None:
        label = self.labels.get((dag_id, run_id), run_id)
        print(
            f"  {time.monotonic() - self.start:6.0f} s  {dag_id:<14} {label}  {state}",
            flush=True,
        )


def ask_for_runs(client: AirflowClient, wanted: list[tuple[str, date]]) -> dict:
    """(dag_id, run_id) -> day, one run per (dag_id, day): the existing one or a new one."""
    runs = {}
    for dag_id, day in wanted:
        run = client.ensure_run(dag_id, day)
        if run["state"] == "failed":
            print(f"  {dag_id} {day}: failed before, running its failed tasks again")
            client.rerun_failed(dag_id, run["dag_run_id"])
        runs[(dag_id, run["dag_run_id"])] = day.isoformat()
    return runs


def wait(client: AirflowClient, runs: dict, timeout: float, progress: Progress) -> dict:
    progress.labels.update(runs)
    return client.wait_for_runs(runs, timeout, on_change=progress)


def report_failures(client: AirflowClient, runs: dict[tuple[str, str], dict]) -> int:
    failed = [key for key, run in runs.items() if run["state"] != "success"]
    for dag_id, run_id in failed:
        for ti in client.task_instances(dag_id, run_id):
            if ti["state"] == "failed":
                log = client.task_log(dag_id, run_id, ti["task_id"], ti["try_number"])
                tail = "\n".join(log.splitlines()[-15:])
                print(
                    f"\nFAILED {dag_id} {run_id} task {ti['task_id']}; end of its log:\n{tail}"
                )
    return len(failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    today = datetime.now(UTC).date()
    parser.add_argument(
        "--days", type=int, default=14, help="length of the stretch (14)"
    )
    parser.add_argument(
        "--end", type=date.fromisoformat, default=today, help="last day (today)"
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path(os.environ.get("ML_ENV_FILE", REPO / ".env")),
        help="the stack's env file (.env)",
    )
    parser.add_argument("--airflow-url", help="default: from the env file")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds per phase (1800)"
    )
    parser.add_argument(
        "--no-approval",
        action="store_true",
        help="do not leave a manual-mode approval open at the end",
    )
    args = parser.parse_args(argv)

    if not args.env_file.exists():
        parser.error(f"{args.env_file} not found: start the stack first (make up)")
    env = read_env_file(args.env_file)
    host = env.get("ML_BIND_ADDRESS", "127.0.0.1")
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    url = args.airflow_url or f"http://{host}:{env.get('AIRFLOW_PORT', '8080')}"
    client = AirflowClient(
        url, env["AIRFLOW_ADMIN_USERNAME"], env["AIRFLOW_ADMIN_PASSWORD"]
    )
    data_dir = Path(env.get("ML_HOST_DATA_DIR", REPO / "data"))

    days, sundays = stretch(args.end, args.days)
    if not sundays:
        parser.error(
            "the stretch has no Sunday, so no weekly training: use --days 7 or more"
        )
    started = time.monotonic()
    print(f"pipeline: {days[0]} .. {days[-1]} on {url}")
    client.wait_for_dags(DAG_IDS)

    print(
        f"pipeline: generate_data for {len(days)} days, train_model for {len(sundays)} Sundays"
    )
    for dag_id in ("generate_data", "train_model"):
        client.set_paused(dag_id, False)
    # Asked for together: the training runs' sensors wait for their Sunday's data.
    generated = ask_for_runs(client, [("generate_data", d) for d in days])
    trained = ask_for_runs(client, [("train_model", d) for d in sundays])
    progress = Progress({})
    runs = wait(client, generated, args.timeout, progress)
    if report_failures(client, runs):
        print("pipeline: stopped; the training runs keep waiting for their data")
        return 1
    runs.update(wait(client, trained, args.timeout, progress))
    if report_failures(client, runs):
        return 1

    for sunday in sundays:
        decision = data_dir / "models" / sunday.isoformat() / "promotion.json"
        if decision.exists():
            d = json.loads(decision.read_text())
            print(
                f"pipeline: model of {sunday}: {d['registered_model']} version "
                f"{d['version']} {d['outcome']} ({d['reason']})"
            )
    print(f"pipeline: model_path = {client.get_variable('model_path')}")

    print(f"pipeline: predict for {len(days)} days")
    client.set_paused("predict", False)
    wanted = [("predict", d) for d in days]
    predictions = wait(client, ask_for_runs(client, wanted), args.timeout, progress)
    runs.update(predictions)
    if report_failures(client, predictions):
        return 1

    # Each monitor_model run judges the day before it (label delay 1): every day but the
    # first has its labels and its predictions by now.
    print(f"pipeline: monitor_model for {len(days) - 1} days")
    client.set_paused("monitor_model", False)
    wanted = [("monitor_model", d) for d in days[1:]]
    monitored = wait(client, ask_for_runs(client, wanted), args.timeout, progress)
    runs.update(monitored)
    if report_failures(client, monitored):
        return 1
    verdicts = {}
    for day in days[:-1]:
        report = data_dir / "monitoring" / day.isoformat() / "report.json"
        if report.exists():
            verdicts[day] = json.loads(report.read_text()).get("verdict", "?")
    print(
        "pipeline: verdicts "
        + ", ".join(f"{d:%m-%d} {v}" for d, v in sorted(verdicts.items()))
    )

    metrics = data_dir / "models" / sundays[-1].isoformat() / "metrics.json"
    other = f"/data/models/{sundays[0].isoformat()}"
    mlflow_port = env.get("MLFLOW_PORT", "5000")
    print(
        f"\npipeline: {len(runs)} runs succeeded in {time.monotonic() - started:.0f} s\n"
        f"  raw data      {data_dir}/raw/<day>/data.csv, target.csv\n"
        f"  training data {data_dir}/processed/<Sunday>/train_data.csv, train.csv, val.csv\n"
        f"  models        {', '.join(f'{data_dir}/models/{d}' for d in sundays)}\n"
        f"  metrics       {metrics}\n"
        f"  predictions   {data_dir}/predictions/<day>/predictions.csv "
        f"({days[0]} .. {days[-1]})\n"
        f"  monitoring    {data_dir}/monitoring/{days[-2]}/report.html "
        f"(and report.json, one per day)\n"
        f"  Airflow UI    {url}  (DAG runs, task logs, Admin > Variables > model_path)\n"
        f"  MLflow UI     http://127.0.0.1:{mlflow_port}  (user admin, MLFLOW_ADMIN_PASSWORD "
        f"in the env file: runs, metrics, the registry)\n"
        f"Switch the production model: move the alias production in MLflow's registry, or set\n"
        f"the Variable model_path to a version (models:/heart-disease-classifier/1) or a model\n"
        f"directory, for example {other}, in the UI or with\n"
        f"  scripts/stack.sh compose exec airflow-scheduler airflow variables set model_path {other}"
    )
    if metrics.exists():
        print(f"metrics of {sundays[-1]}: {metrics.read_text().strip()}")
    if not args.no_approval:
        base = env.get("AIRFLOW_BASE_URL") or url
        return leave_approval_pending(client, days, base, args.timeout)
    return 0


def leave_approval_pending(
    client: AirflowClient, days: list[date], ui_url: str, timeout: float
) -> int:
    """One week in manual mode (``open_approval``): a train_model run for the last day of
    the stretch that is not a Sunday (a Sunday's weekly run exists already). Prints the
    approval page's address."""
    day = next(d for d in reversed(days) if d.weekday() != 6)
    print(f"pipeline: train_model for {day} in manual mode, to leave its approval open")
    try:
        run = client.open_approval(day, timeout)
    except TimeoutError as err:
        found = client.find_run("train_model", day)
        if found is not None and found["state"] == "success":
            print(f"pipeline: the approval of {day} was answered already ({err})")
            return 0
        print(f"pipeline: no approval opened: {err}")
        return 1
    page = client.required_actions_url(
        ui_url, "train_model", run["dag_run_id"], "approval"
    )
    print(
        f"\npipeline: the model trained on {day} waits for a person's approval:\n"
        f"  {page}\n"
        f"Approve moves production to it, Reject keeps production (Browse > Required Actions\n"
        f"lists every pending approval). Roll back later with the DAG set_production\n"
        "(Trigger, then version and reason). README: 'A person approves the rollout'."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
