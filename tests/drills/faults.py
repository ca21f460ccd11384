"""The means of the fault drills: breaking things on the stack and looking at what is left.

Everything here acts only on the drills' own stack: compose services through
``Stack.compose`` (the project's name), and task containers, which Airflow starts outside
compose, only when they carry the labels of the run in question *and* bind this stack's
own data directory (``Stack.data_dir``, a fresh temporary path), so a container of another
stack on the same machine is never touched.
"""

from __future__ import annotations

import csv
import hashlib
import json
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import quote

import docker as docker_sdk
from alert_channel import docker
from conftest import REPO, Stack
from pipeline_runs import AirflowClient

REPORT_FILE = REPO / "build" / "drills" / "report.md"
FINISHED_TI = {"success", "failed", "skipped", "upstream_failed", "removed"}


# -- the report -------------------------------------------------------------------------


@dataclass
class Drill:
    """One row of the report; ``observe`` adds what was measured, in order."""

    name: str
    expected: str
    observed: list[str] = field(default_factory=list)
    result: str = "not run"
    started: float = field(default_factory=time.monotonic)

    def observe(self, text: str) -> None:
        print(f"[drill {time.strftime('%H:%M:%S')}] {self.name}: {text}", flush=True)
        self.observed.append(text)


DRILLS: list[Drill] = []


@contextmanager
def drill(name: str, expected: str) -> Iterator[Drill]:
    """Records a drill in the report: passed, or FAILED with the first line of the reason."""
    row = Drill(name, expected)
    DRILLS.append(row)
    try:
        yield row
    except BaseException as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        row.observed.append(f"FAILED: {type(err).__name__}: {reason}"[:300])
        row.result = "FAILED"
        traceback.print_exc()
        raise
    else:
        row.result = "passed"
    finally:
        row.observed.append(f"{time.monotonic() - row.started:.0f} s")


def report_table() -> str:
    if not DRILLS:
        return ""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| drill | expected | observed | result |",
        "|---|---|---|---|",
        *(
            f"| {cell(d.name)} | {cell(d.expected)} | {cell('; '.join(d.observed))} | {d.result} |"
            for d in DRILLS
        ),
    ]
    return "\n".join(lines) + "\n"


# -- files ------------------------------------------------------------------------------


def file_hashes(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (hidden ones included)."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def leftovers(root: Path) -> list[str]:
    """Temporary or hidden files: what an interrupted atomic write leaves behind."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and (path.name.startswith(".") or path.suffix == ".tmp")
    )


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file; fails on ragged rows (a half-written file)."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        width = len(next(reader))
        rows = 0
        for row in reader:
            assert len(row) == width, f"{path}: line {reader.line_num} is ragged"
            rows += 1
    return rows


# -- Airflow ----------------------------------------------------------------------------


def task_instance(
    airflow: AirflowClient, dag_id: str, run_id: str, task_id: str
) -> dict:
    return airflow.request(
        "GET",
        f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}",
    )


def wait_for_task(
    airflow: AirflowClient,
    dag_id: str,
    run_id: str,
    task_id: str,
    states: Iterable[str],
    timeout: float,
    min_try: int = 1,
) -> dict:
    """Polls until the task instance is in one of ``states`` at try ``min_try`` or later."""
    wanted = set(states)
    deadline = time.monotonic() + timeout
    while True:
        ti = task_instance(airflow, dag_id, run_id, task_id)
        if ti["state"] in wanted and ti["try_number"] >= min_try:
            return ti
        assert time.monotonic() < deadline, (
            f"{dag_id}.{task_id} of {run_id}: still {ti['state']} (try "
            f"{ti['try_number']}) after {timeout:.0f} s, wanted {sorted(wanted)}"
        )
        time.sleep(0.5)


def clear_run(
    airflow: AirflowClient,
    dag_id: str,
    run_id: str,
    task_ids=None,
    downstream: bool = False,
) -> None:
    """Clears a finished run (all its tasks, or ``task_ids`` and, with ``downstream``,
    the tasks after them) so Airflow runs it again."""
    body = {
        "dag_run_id": run_id,
        "only_failed": False,
        "dry_run": False,
        "reset_dag_runs": True,
    }
    if task_ids is not None:
        body["task_ids"] = list(task_ids)
        body["include_downstream"] = downstream
    airflow.request("POST", f"/dags/{dag_id}/clearTaskInstances", body)


def _pages(airflow: AirflowClient, path: str, key: str) -> list[dict]:
    items: list[dict] = []
    while True:
        page = airflow.request("GET", path, params={"limit": 100, "offset": len(items)})
        items.extend(page[key])
        if not page[key] or len(items) >= page["total_entries"]:
            return items


def metadata_snapshot(airflow: AirflowClient) -> dict[str, dict]:
    """Every DAG run (state) and every task instance (state, try) in the metadata DB."""
    runs = _pages(airflow, "/dags/~/dagRuns", "dag_runs")
    tis = _pages(airflow, "/dags/~/dagRuns/~/taskInstances", "task_instances")
    return {
        "runs": {f"{r['dag_id']}/{r['dag_run_id']}": r["state"] for r in runs},
        "tis": {
            f"{t['dag_id']}/{t['dag_run_id']}/{t['task_id']}": (
                t["state"],
                t["try_number"],
            )
            for t in tis
        },
    }


def mlflow_tasks(stack: Stack, dag_id: str) -> list[str]:
    """The tasks of ``dag_id`` whose container talks to MLflow, as the stack itself parses
    the DAG file: a network other than ``none`` or ``MLFLOW_TRACKING_URI`` in its
    environment."""
    code = (
        "import json, sys\n"
        "sys.path.insert(0, '/opt/airflow/dags')\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"dag = DagBag('/opt/airflow/dags/{dag_id}.py').dags['{dag_id}']\n"
        "print(json.dumps([t.task_id for t in dag.topological_sort()"
        " if getattr(t, 'network_mode', 'none') not in (None, 'none')"
        " or 'MLFLOW_TRACKING_URI' in (getattr(t, 'environment', None) or {})]))\n"
    )
    out = stack.compose(
        "exec", "-T", "airflow-scheduler", "python", "-c", code, timeout=180
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# -- containers -------------------------------------------------------------------------


def service_container(stack: Stack, service: str) -> str:
    [container] = stack.compose("ps", "-q", service).stdout.split()
    return container


def inspect(container: str) -> dict | None:
    result = docker("inspect", container, check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)[0]


def binds_data_dir(stack: Stack, mounts: list[dict]) -> bool:
    """The mounts bind this stack's data directory or a part of it (each stage gets only
    the subdirectories it reads and writes, dags/common.py)."""
    return any(
        Path(mount["Source"]).is_relative_to(stack.data_dir)
        for mount in mounts
        if mount.get("Source")
    )


def is_ours(stack: Stack, info: dict | None) -> bool:
    """A task container of this stack: it binds this stack's data directory or a part."""
    return info is not None and binds_data_dir(stack, info["Mounts"])


def task_containers(stack: Stack, **labels: str) -> list[dict]:
    """This stack's task containers (running or not) with these ``ml.pipeline.*`` labels."""
    filters = [f"--filter=label=ml.pipeline.{k}={v}" for k, v in labels.items()]
    ids = docker("ps", "--all", "--quiet", "--no-trunc", *filters).stdout.split()
    infos = [inspect(container) for container in ids]
    return [info for info in infos if is_ours(stack, info)]


def remove_task_containers(stack: Stack) -> int:
    """Removes what failed or orphaned task containers this stack left (Airflow removes
    only the successful ones)."""
    infos = task_containers(stack)
    for info in infos:
        docker("rm", "--force", info["Id"], check=False)
    return len(infos)


class ContainerTrap:
    """Holds the container of one task of one run still, mid-run, so a drill can act while
    it is certainly running.

    The stages finish a default day in tens of milliseconds, less than the daemon takes to
    report the container as running. So the moment the container is created it is
    throttled to 1% of a core (the same knob as the operator's CPU limit), and the moment
    it starts it is paused: its process exists and has done almost nothing. ``release``
    lets it go on at full speed; a paused container can also be killed as it is. Talks to
    the daemon through its API (docker-py), not the CLI, to be fast enough.
    """

    def __init__(self, stack: Stack, run_id: str, task_id: str) -> None:
        self.stack = stack
        self.client = docker_sdk.from_env()
        self.container: str | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.paused = False
        self.pause_error = ""
        # Which try of holding this task got it (see test_drills.hold_task).
        self.attempt = 1
        self._events = self.client.events(
            decode=True,
            filters={
                "type": "container",
                "event": ["create", "start"],
                "label": [
                    f"ml.pipeline.run_id={run_id}",
                    f"ml.pipeline.task_id={task_id}",
                ],
            },
        )
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _set_cpus(self, container: str, cpus: float) -> None:
        # docker-py's update_container has no NanoCpus; the Engine API has.
        api = self.client.api
        response = api._post_json(
            api._url("/containers/{0}/update", container),
            data={"NanoCpus": int(cpus * 1e9)},
        )
        api._raise_for_status(response)

    def _watch(self) -> None:
        try:
            self._hold()
        except Exception as err:  # noqa: BLE001  (handed to the waiting drill)
            self._error = err
            self._ready.set()

    def _hold(self) -> None:
        for event in self._events:
            container = event.get("id") or event["Actor"]["ID"]
            action = event.get("Action") or event.get("status")
            print(f"[trap] {action} {container[:12]}", flush=True)
            if action == "create" and self.container is None:
                mounts = self.client.api.inspect_container(container)["Mounts"]
                if binds_data_dir(self.stack, mounts):
                    self._set_cpus(container, 0.01)
                    self.container = container
            elif action == "start" and container == self.container:
                self.paused = self._pause(container)
                self._ready.set()
                return

    def _pause(self, container: str) -> bool:
        """Pauses the container; the daemon can refuse while the start is settling, and
        then the 1% throttle alone holds it (seconds for what takes milliseconds)."""
        for _ in range(40):
            try:
                self.client.api.pause(container)
                return True
            except docker_sdk.errors.APIError as err:
                self.pause_error = str(err.explanation or err)
                time.sleep(0.025)
        return False

    def wait(self, timeout: float) -> str:
        """The container, once started and paused."""
        assert self._ready.wait(timeout), (
            f"no task container started in {timeout:.0f} s"
        )
        if self._error is not None:
            raise RuntimeError(f"holding the container failed: {self._error!r}")
        assert self.container is not None
        return self.container

    def kill(self) -> int | None:
        """SIGKILLs the held container (unpaused first: a frozen process gets no signal);
        its exit status, unless the operator has removed it already."""
        assert self.container is not None
        if self.paused:
            self.client.api.unpause(self.container)
        self.client.api.kill(self.container)
        try:
            return self.client.api.wait(self.container, timeout=30)["StatusCode"]
        except docker_sdk.errors.NotFound:
            return None  # the operator saw it die and removed it first

    def release(self) -> None:
        """Lets the held container run on at full speed (if it still exists)."""
        if self.container is None:
            return
        try:
            self._set_cpus(self.container, 1.0)
            if self.paused:
                self.client.api.unpause(self.container)
        except docker_sdk.errors.APIError:
            pass

    def close(self) -> None:
        self._events.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ContainerEscaped(AssertionError):
    """The task's container finished, or was removed, before the drill could act on it."""


def wait_running(container: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = inspect(container)
        if info is None:
            raise ContainerEscaped(f"container {container[:12]} disappeared")
        if info["State"]["Running"]:
            return info
        if info["State"]["Status"] != "created":
            raise ContainerEscaped(
                f"container {container[:12]} is {info['State']['Status']} "
                f"(exit {info['State']['ExitCode']}) before the drill could act"
            )
        assert time.monotonic() < deadline, f"{container[:12]} never started"
        time.sleep(0.1)
