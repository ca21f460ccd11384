#!/usr/bin/env python3
"""What orchestration costs: the LocalExecutor stack against the Celery profile.

For each executor it starts a stack of its own (own compose project, ports, env file, data
directory and task network; the images must exist: ``scripts/images.sh``), then measures:

1. idle memory and CPU: ``docker stats`` over the stack's containers, after the DAGs are
   parsed and the stack has settled;
2. the wall time of a backfill of every DAG over the last ``--days`` days (default 30):
   ``scripts/run_pipeline.py`` asks for a ``generate_data`` run per day and a
   ``train_model`` run per Sunday (weekly; one at a time), points ``model_path`` at the
   newest model and asks for a ``predict`` run per day, as ``make up`` does;
3. the overhead of one DockerOperator task: for every ``generate`` task of that backfill
   (a stage that does almost nothing: a few thousand rows in milliseconds), the task
   instance's duration in Airflow against the container's own run time (its ``start`` and
   ``die`` events from the Docker daemon). The difference is what Airflow and the Docker
   API add around the container: worker start, creating and removing the container,
   streaming its log.

Then it removes the stack (``down --volumes``) and prints one table. It is a benchmark, not a
test: the figures depend on the machine and on whatever else runs there.

    .venv/bin/python scripts/bench_orchestration.py                 # both executors, 30 days
    .venv/bin/python scripts/bench_orchestration.py --modes celery --days 7
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[1]
STACK_SH = REPO / "scripts" / "stack.sh"
sys.path.insert(0, str(REPO / "scripts"))
from run_pipeline import DAG_IDS, AirflowClient, read_env_file

MODES = {"local": ("", "LocalExecutor"), "celery": ("celery", "Celery, 2 workers")}
UNITS = {
    "b": 1,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
}


@dataclass
class Figures:
    label: str
    up_seconds: float = 0.0
    idle_mib: float = 0.0
    idle_cpu: float = 0.0
    per_service: dict[str, float] = field(default_factory=dict)
    backfill_seconds: float = 0.0
    runs: int = 0
    task_seconds: list[float] = field(default_factory=list)
    container_seconds: list[float] = field(default_factory=list)
    overhead_seconds: list[float] = field(default_factory=list)
    queued_seconds: list[float] = field(default_factory=list)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def to_bytes(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)\s*([A-Za-z]+)", text.strip()).groups()
    return float(number) * UNITS[unit.lower()]


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class BenchStack:
    """One stack under its own project, driven through scripts/stack.sh."""

    def __init__(self, mode: str, args: argparse.Namespace) -> None:
        self.mode = mode
        self.project = f"{args.project_prefix}-{mode}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.project}-"))
        self.env = {
            **os.environ,
            "ML_STACK_PROJECT": self.project,
            "ML_ENV_FILE": str(self.workdir / "stack.env"),
            "ML_DATA_DIR": str(self.workdir / "data"),
            "ML_STACK_PROFILE": MODES[mode][0],
            "ML_TASK_NETWORK": f"{self.project}-tasks",
            "AIRFLOW_PORT": str(args.airflow_port),
            "MLFLOW_PORT": str(args.mlflow_port),
            "ML_BIND_ADDRESS": "127.0.0.1",
            "ML_SKIP_BUILD": "1",
        }

    def stack_sh(
        self, *args: str, check: bool = False, **kwargs
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(STACK_SH), *args], check=check, env=self.env, **kwargs
        )

    def up(self) -> float:
        self.stack_sh("clean", capture_output=True)  # leftovers of an interrupted run
        started = time.monotonic()
        self.stack_sh("up", check=True, stdout=subprocess.DEVNULL)
        return time.monotonic() - started

    def remove(self) -> None:
        self.stack_sh("clean", capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def client(self) -> AirflowClient:
        values = read_env_file(Path(self.env["ML_ENV_FILE"]))
        return AirflowClient(
            f"http://127.0.0.1:{values['AIRFLOW_PORT']}",
            values["AIRFLOW_ADMIN_USERNAME"],
            values["AIRFLOW_ADMIN_PASSWORD"],
        )

    def containers(self) -> list[str]:
        return subprocess.run(
            [
                "docker",
                "ps",
                "-q",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()

    def idle(self, samples: int) -> tuple[float, float, dict[str, float]]:
        """Memory (MiB) and CPU (% of one core) of the stack, averaged over samples."""
        memory: dict[str, list[float]] = {}
        cpu_total = []
        for _ in range(samples):
            out = subprocess.run(
                [
                    "docker",
                    "stats",
                    "--no-stream",
                    "--format",
                    "{{ .Name }};{{ .MemUsage }};{{ .CPUPerc }}",
                    *self.containers(),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            cpu = 0.0
            for line in out.splitlines():
                name, usage, percent = line.split(";")
                service = name.removeprefix(f"{self.project}_").removeprefix(
                    f"{self.project}-"
                )
                service = re.sub(r"[-_]1$", "", service)
                memory.setdefault(service, []).append(
                    to_bytes(usage.split("/")[0]) / 2**20
                )
                cpu += float(percent.rstrip("%"))
            cpu_total.append(cpu)
        per_service = {name: statistics.mean(v) for name, v in sorted(memory.items())}
        return sum(per_service.values()), statistics.mean(cpu_total), per_service

    def backfill(self, days: int) -> float:
        log = self.workdir / "run_pipeline.log"
        started = time.monotonic()
        with log.open("w") as handle:
            done = subprocess.run(
                [sys.executable, str(REPO / "scripts" / "run_pipeline.py")]
                + ["--days", str(days), "--env-file", self.env["ML_ENV_FILE"]]
                + ["--no-approval"],
                check=False,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        seconds = time.monotonic() - started
        if done.returncode != 0:
            print(log.read_text()[-4000:])
            raise RuntimeError(f"{self.mode}: the backfill failed (log above)")
        return seconds


class ContainerEvents:
    """Collects the start and die events of task containers while they happen.

    Asking the daemon afterwards is not enough: it keeps only its most recent events, and
    on a busy machine a backfill's first containers are gone from that window by the end.
    """

    def __init__(self) -> None:
        self._stream = docker.from_env().events(
            filters={
                "type": "container",
                "event": ["start", "die"],
                "label": ["ml.pipeline.dag_id"],
            },
            decode=True,
        )
        self.events: list[dict] = []
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        # The stream ends, possibly with an error, when stop() closes it.
        with contextlib.suppress(Exception):
            for event in self._stream:
                self.events.append(event)

    def stop(self) -> list[dict]:
        self._stream.close()
        self._thread.join(timeout=10)
        return self.events


def container_runs(events: list[dict]) -> dict[tuple, float]:
    """(dag_id, run_id, task_id, try) -> seconds from the container's start to its exit."""
    starts: dict[tuple, float] = {}
    runs: dict[tuple, float] = {}
    for event in events:
        labels = event["Actor"]["Attributes"]
        key = (
            labels["ml.pipeline.dag_id"],
            labels["ml.pipeline.run_id"],
            labels["ml.pipeline.task_id"],
            int(labels["ml.pipeline.try_number"]),
        )
        at = event["timeNano"] / 1e9
        if event.get("Action", event.get("status")) == "start":
            starts[key] = at
        elif key in starts:
            runs[key] = at - starts[key]
    return runs


def measure(mode: str, args: argparse.Namespace) -> Figures:
    figures = Figures(MODES[mode][1])
    stack = BenchStack(mode, args)
    try:
        say(f"{mode}: starting project {stack.project}")
        figures.up_seconds = stack.up()
        client = stack.client()
        client.wait_for_dags(DAG_IDS)
        say(f"{mode}: up in {figures.up_seconds:.0f} s; settling {args.settle} s")
        time.sleep(args.settle)
        figures.idle_mib, figures.idle_cpu, figures.per_service = stack.idle(
            args.samples
        )
        say(f"{mode}: idle {figures.idle_mib:.0f} MiB, {figures.idle_cpu:.1f}% CPU")

        say(f"{mode}: backfill of {args.days} days (scripts/run_pipeline.py)")
        watcher = ContainerEvents()
        figures.backfill_seconds = stack.backfill(args.days)
        containers = container_runs(watcher.stop())
        say(f"{mode}: backfill in {figures.backfill_seconds:.0f} s")

        for dag_id in DAG_IDS:
            runs = client.request(
                "GET",
                f"/dags/{dag_id}/dagRuns",
                params={"limit": 100},
            )["dag_runs"]
            figures.runs += len(runs)
            if dag_id != "generate_data":
                continue
            for run in runs:
                for ti in client.task_instances(dag_id, run["dag_run_id"]):
                    key = (dag_id, run["dag_run_id"], ti["task_id"], ti["try_number"])
                    if ti["state"] != "success" or key not in containers:
                        continue
                    figures.task_seconds.append(ti["duration"])
                    figures.container_seconds.append(containers[key])
                    figures.overhead_seconds.append(ti["duration"] - containers[key])
                    if ti.get("queued_when"):
                        figures.queued_seconds.append(
                            timestamp(ti["start_date"]) - timestamp(ti["queued_when"])
                        )
    finally:
        say(f"{mode}: removing project {stack.project}")
        stack.remove()
    return figures


def report(results: list[Figures], days: int) -> None:
    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.2f}" if values else "-"

    def p90(values: list[float]) -> str:
        return f"{percentile(values, 0.9):.2f}" if values else "-"

    rows = [
        ("stack up, empty volumes (s)", lambda f: f"{f.up_seconds:.0f}"),
        ("idle memory (MiB)", lambda f: f"{f.idle_mib:.0f}"),
        ("idle CPU (% of one core)", lambda f: f"{f.idle_cpu:.1f}"),
        (f"{days}-day backfill, all DAGs (s)", lambda f: f"{f.backfill_seconds:.0f}"),
        ("  DAG runs in it", lambda f: f"{f.runs}"),
        ("generate tasks measured", lambda f: f"{len(f.task_seconds)}"),
        ("  task instance duration, median (s)", lambda f: median(f.task_seconds)),
        (
            "  container start -> exit, median (s)",
            lambda f: median(f.container_seconds),
        ),
        ("  overhead per task, median (s)", lambda f: median(f.overhead_seconds)),
        ("  overhead per task, p90 (s)", lambda f: p90(f.overhead_seconds)),
        ("  queued -> running, median (s)", lambda f: median(f.queued_seconds)),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    print(f"{'':<{width}}  " + "  ".join(f"{f.label:>18}" for f in results))
    for name, value in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{value(f):>18}" for f in results))
    for f in results:
        services = ", ".join(f"{name} {mib:.0f}" for name, mib in f.per_service.items())
        print(f"\nidle memory of {f.label} by service (MiB): {services}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--modes",
        default="local,celery",
        help="comma-separated: local, celery (default both, one after the other)",
    )
    parser.add_argument("--days", type=int, default=30, help="backfill length (30)")
    parser.add_argument(
        "--settle", type=int, default=60, help="seconds idle before measuring (60)"
    )
    parser.add_argument("--samples", type=int, default=3, help="docker stats samples")
    parser.add_argument("--project-prefix", default="mlpipeline-bench")
    parser.add_argument("--airflow-port", type=int, default=18280)
    parser.add_argument("--mlflow-port", type=int, default=15200)
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    results = [measure(mode, args) for mode in modes]
    report(results, args.days)
    return 0


if __name__ == "__main__":
    sys.exit(main())
