"""A real alert channel for tests on the stack: a webhook receiver container and the Apprise
connection that points Airflow's failure callback (dags/alerts.py) at it.

The receiver is one of the project's own containers (the ml-python image running
alert_receiver.py) on the stack's network, reachable by the Airflow services as
``alert-receiver``. Used by test_failure_alerts.py and by the fault drills (tests/drills).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import Stack
from pipeline_runs import AirflowClient

RECEIVER_ALIAS = "alert-receiver"
RECEIVER_PORT = 8000
RECEIVER_SCRIPT = Path(__file__).resolve().parent / "alert_receiver.py"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], check=check, capture_output=True, text=True, timeout=120
    )


def stack_network(stack: Stack) -> str:
    """The network the Airflow services share (compose's default network of the project)."""
    [container] = stack.compose("ps", "-q", "airflow-scheduler").stdout.split()
    networks = json.loads(
        docker(
            "inspect", "-f", "{{ json .NetworkSettings.Networks }}", container
        ).stdout
    )
    [name] = [n for n in networks if n.endswith("_default")]
    return name


class Receiver:
    def __init__(self, container: str) -> None:
        self.container = container

    def alerts(self) -> list[dict]:
        out = docker("logs", self.container).stdout
        return [
            json.loads(line.removeprefix("ALERT "))
            for line in out.splitlines()
            if line.startswith("ALERT ")
        ]


@contextmanager
def running_receiver(stack: Stack) -> Iterator[Receiver]:
    """Starts the receiver on the stack's network; removes it afterwards, also on failure."""
    name = f"{stack.project}-alert-receiver-{uuid.uuid4().hex[:6]}"
    docker(
        "run",
        "--detach",
        "--pull=never",
        f"--name={name}",
        f"--network={stack_network(stack)}",
        f"--network-alias={RECEIVER_ALIAS}",
        "--user=65534:65534",
        "--read-only",
        "--cap-drop=ALL",
        f"--volume={RECEIVER_SCRIPT}:/srv/alert_receiver.py:ro",
        "--entrypoint=python3",
        f"ml-python:{stack.image_tag}",
        "-u",
        "/srv/alert_receiver.py",
        str(RECEIVER_PORT),
    )
    try:
        deadline = time.monotonic() + 30
        while "listening" not in docker("logs", name).stdout:
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr
            time.sleep(0.5)
        yield Receiver(name)
    finally:
        docker("rm", "--force", name, check=False)


@contextmanager
def apprise_connection(airflow: AirflowClient) -> Iterator[None]:
    """The alert_apprise connection, pointing at the receiver. Created through the REST API
    (stored in the metadata database) so the running stack need not restart; the unit tests
    cover the AIRFLOW_CONN_* form, which Airflow looks up first."""
    connection = {
        "connection_id": "alert_apprise",
        "conn_type": "apprise",
        "extra": json.dumps(
            {"config": {"path": f"json://{RECEIVER_ALIAS}:{RECEIVER_PORT}/alerts"}}
        ),
    }
    airflow.request("DELETE", "/connections/alert_apprise", ok=(204, 404))
    airflow.request("POST", "/connections", connection)
    try:
        yield
    finally:
        airflow.request("DELETE", "/connections/alert_apprise", ok=(204, 404))
