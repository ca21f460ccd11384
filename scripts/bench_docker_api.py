#!/usr/bin/env python3
"""What the Docker API guard adds to a task: DockerOperator's calls through ml-docker-guard
against the same calls straight to the Docker socket, side by side in one run.

It starts the guard from its image (``ml-docker-guard:<tag>``, as compose runs it: the
socket, a read-only view of a throwaway data directory, a published loopback port), then
runs one task container of ``ml-generate:<tag>`` at a time the way DockerOperator 4.6 does
with docker-py 7: ``GET /images/json``, ``POST /containers/create`` (the body docker-py
sends for the generate task, ``crates/ml-docker-guard/tests/fixtures/create-generate.json``,
moved to this machine's user and directory), start, attach and read the log stream, wait,
remove. Each round runs one task through the guard and one straight to the socket, in
alternating order, so both see the same machine. It prints the median and p90 of each
path's wall time per task and the difference.

    .venv/bin/python scripts/bench_docker_api.py              # 30 rounds
    .venv/bin/python scripts/bench_docker_api.py --rounds 100

It is a benchmark, not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "crates/ml-docker-guard/tests/fixtures/create-generate.json"
FIXTURE_DATA_DIR = "/srv/ml-test/data"
SOCKET = "/var/run/docker.sock"
# As scripts/stack.sh env: root's tasks run as a dedicated uid, anyone else's as themselves.
ROOT_TASK_USER = (10001, 10001)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def task_user() -> tuple[int, int]:
    return ROOT_TASK_USER if os.getuid() == 0 else (os.getuid(), os.getgid())


def create_body(tag: str, user: str, data_dir: Path) -> dict:
    """The generate task's create body (the guard's fixture, made from the real DAGs) at
    this image tag, task user and host data directory: one the guard allows."""
    body = json.loads(FIXTURE.read_text())
    body["Image"] = f"ml-generate:{tag}"
    body["User"] = user
    for mount in body["HostConfig"]["Mounts"]:
        mount["Source"] = mount["Source"].replace(FIXTURE_DATA_DIR, str(data_dir))
    return body


def run_task(api: docker.APIClient, body: dict) -> float:
    """One task container as DockerOperator runs it; returns its wall time in seconds."""
    started = time.perf_counter()
    assert api.images(name=body["Image"]), f"{body['Image']} is not built"
    answer = api._post_json(api._url("/containers/create"), data=body)
    if answer.status_code != 201:
        raise SystemExit(f"create: {answer.status_code} {answer.text}")
    container = answer.json()["Id"]
    try:
        api.start(container)
        for _ in api.attach(container, stdout=True, stderr=True, stream=True):
            pass
        status = api.wait(container)["StatusCode"]
        if status != 0:
            raise SystemExit(f"ml-generate exited {status}: {api.logs(container)!r}")
    finally:
        api.remove_container(container)
    return time.perf_counter() - started


def start_guard(tag: str, data_dir: Path, port: int) -> str:
    name = f"bench-docker-guard-{port}"
    gid = os.stat(SOCKET).st_gid
    subprocess.run(
        [
            "docker",
            "run",
            "--detach",
            "--rm",
            "--pull=never",
            "--init",
            f"--name={name}",
            "--read-only",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            f"--group-add={gid}",
            f"--publish=127.0.0.1:{port}:2375",
            f"--volume={SOCKET}:{SOCKET}",
            f"--volume={data_dir}:/data-view:ro",
            f"--env=ML_GUARD_IMAGES=ml-generate:{tag}",
            f"--env=ML_HOST_DATA_DIR={data_dir}",
            "--env=ML_TASK_NETWORK=bench-docker-api-tasks",
            f"ml-docker-guard:{tag}",
            "--listen=0.0.0.0:2375",
            f"--docker-socket={SOCKET}",
            "--data-dir-view=/data-view",
        ],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if docker.APIClient(base_url=f"tcp://127.0.0.1:{port}").ping():
                return name
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="tasks per path (30)")
    parser.add_argument("--tag", default=os.environ.get("ML_IMAGE_TAG", "latest"))
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-docker-api-") as tmp:
        data_dir = Path(tmp) / "data"
        (data_dir / "raw").mkdir(parents=True)
        for path in (data_dir, data_dir / "raw"):
            os.chown(path, *task_user())
        body = create_body(args.tag, "{}:{}".format(*task_user()), data_dir)
        body["Labels"]["ml.pipeline.dag_id"] = "bench_docker_api"
        port = free_port()
        guard = start_guard(args.tag, data_dir, port)
        try:
            paths = {
                "guard": docker.APIClient(base_url=f"tcp://127.0.0.1:{port}"),
                "socket": docker.APIClient(base_url=f"unix://{SOCKET}"),
            }
            times: dict[str, list[float]] = {name: [] for name in paths}
            run_task(paths["socket"], body)  # warm the image and the page cache
            for i in range(args.rounds):
                order = list(paths) if i % 2 == 0 else list(reversed(paths))
                for name in order:
                    times[name].append(run_task(paths[name], body))
                if (i + 1) % 10 == 0:
                    print(f"bench: {i + 1}/{args.rounds} rounds", file=sys.stderr)
        finally:
            subprocess.run(["docker", "stop", guard], check=False, capture_output=True)

    print(f"DockerOperator's calls for one ml-generate task, {args.rounds} rounds:")
    print("| path | median | p90 |")
    print("|---|---|---|")
    for name, label in (("socket", "Docker socket"), ("guard", "ml-docker-guard")):
        values = times[name]
        print(
            f"| {label} | {statistics.median(values) * 1000:.0f} ms | "
            f"{percentile(values, 0.9) * 1000:.0f} ms |"
        )
    paired = [g - s for g, s in zip(times["guard"], times["socket"], strict=True)]
    print(
        f"guard minus socket, per round: median {statistics.median(paired) * 1000:+.1f} ms, "
        f"p90 {percentile(paired, 0.9) * 1000:+.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
