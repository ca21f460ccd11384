"""The compose stack itself: health, login, secrets, and the paths tasks take.

Runs against the real stack started by the ``stack`` fixture (conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import Stack

PROBE_CRATE = Path(__file__).parent / "resolve_probe"
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from bench_docker_api import create_body

SERVICES = {
    "postgres",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "mlflow",
    "mlflow-init",
    "docker-guard",
}


def test_every_service_is_healthy(stack: Stack) -> None:
    states = stack.service_states()
    assert set(states) == SERVICES
    for service, state in states.items():
        expected = "exited(0)" if service.endswith("-init") else "healthy"
        assert state == expected, f"{service}: {state}"


def test_airflow_reports_every_component_healthy(stack: Stack) -> None:
    response = requests.get(f"{stack.airflow_url}/api/v2/monitor/health", timeout=30)
    assert response.status_code == 200
    health = response.json()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health


def test_mlflow_is_healthy_and_uses_postgres(stack: Stack) -> None:
    response = requests.get(f"{stack.mlflow_url}/health", timeout=30)
    assert response.status_code == 200
    assert response.text.strip() == "OK"
    # A search goes through the backend store: it fails if the database is unreachable.
    response = stack.mlflow_api().post(
        f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search",
        json={"max_results": 10},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    names = [e["name"] for e in response.json()["experiments"]]
    assert "Default" in names


def test_api_login_with_generated_credentials(stack: Stack) -> None:
    api = stack.airflow_api()
    response = api.get(f"{stack.airflow_url}/api/v2/dags", timeout=30)
    assert response.status_code == 200, response.text
    assert "dags" in response.json()


def test_api_refuses_anonymous_and_wrong_password(stack: Stack) -> None:
    anonymous = requests.get(f"{stack.airflow_url}/api/v2/dags", timeout=30)
    assert anonymous.status_code == 401
    wrong = requests.post(
        f"{stack.airflow_url}/auth/token",
        json={"username": stack.username, "password": stack.password + "x"},
        timeout=30,
    )
    assert wrong.status_code == 401


def test_mlflow_refuses_anonymous_and_wrong_credentials(stack: Stack) -> None:
    """MLflow's basic-auth app is on: without the generated credentials neither the REST API
    nor the UI answers; the stages' account works but cannot manage users."""
    search = f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search"
    body = {"max_results": 1}
    assert requests.post(search, json=body, timeout=30).status_code == 401
    assert requests.get(stack.mlflow_url, timeout=30).status_code == 401
    wrong = requests.post(search, json=body, auth=("admin", "admin"), timeout=30)
    assert wrong.status_code == 401
    pipeline = stack.mlflow_api("pipeline")
    assert pipeline.post(search, json=body, timeout=30).status_code == 200
    create_user = pipeline.post(
        f"{stack.mlflow_url}/api/2.0/mlflow/users/create",
        json={"username": "intruder", "password": "intruder-password-1"},
        timeout=30,
    )
    assert create_user.status_code == 403, create_user.text
    assert stack.mlflow_api().get(stack.mlflow_url, timeout=30).status_code == 200


def test_model_path_variable_exists(stack: Stack) -> None:
    api = stack.airflow_api()
    response = api.get(f"{stack.airflow_url}/api/v2/variables/model_path", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["key"] == "model_path"


def test_fs_data_connection_comes_from_compose(stack: Stack) -> None:
    result = stack.compose(
        "exec",
        "-T",
        "airflow-scheduler",
        "airflow",
        "connections",
        "get",
        "fs_data",
        "--output",
        "json",
    )
    assert '"conn_type": "fs"' in result.stdout
    assert '\\"path\\": \\"/\\"' in result.stdout or '"path": "/"' in result.stdout


def test_secrets_file_is_private(stack: Stack) -> None:
    mode = stat.S_IMODE(stack.env_file.stat().st_mode)
    assert mode == 0o600, oct(mode)


def in_task_launcher(stack: Stack, script: str, given: object = None) -> dict:
    """Runs a Python script in the scheduler (the LocalExecutor's task launcher), with
    ``given`` as its global ``GIVEN``, and returns the JSON object its last output line
    holds. ``given`` travels inside the script (argv), not on stdin, which not every
    compose passes to ``exec -T``."""
    prelude = f"import json\nGIVEN = json.loads({json.dumps(given)!r})\n"
    result = stack.compose(
        "exec", "-T", "airflow-scheduler", "python", "-c", prelude + script
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_scheduler_reaches_docker_only_through_the_guard(stack: Stack) -> None:
    """LocalExecutor runs tasks in the scheduler, as non-root, without the Docker socket:
    the guard (crates/ml-docker-guard) passes what DockerOperator needs and refuses the
    rest, which would amount to root on the host."""
    script = """
import json, os, docker
api = docker.APIClient(base_url=os.environ["ML_DOCKER_URL"])
refused = {
    "exec": ("post", "/containers/airflow-scheduler/exec"),
    "build": ("post", "/build"),
    "pull": ("post", "/images/create?fromImage=ml-generate&tag=latest"),
    "volumes": ("get", "/volumes"),
    "networks": ("post", "/networks/create"),
    "events": ("get", "/events"),
    "info": ("get", "/info"),
    "archive": ("get", "/containers/airflow-scheduler/archive?path=/"),
    "list containers": ("get", "/containers/json"),
}
out = {
    "uid": os.getuid(),
    "socket": os.path.exists("/var/run/docker.sock"),
    "ping": api.ping(),
    "images": bool(api.images(name="ml-generate")),
}
for name, (method, path) in refused.items():
    out[name] = getattr(api, method)(api._url(path), timeout=30).status_code
print(json.dumps(out))
"""
    out = in_task_launcher(stack, script)
    assert out.pop("uid") != 0
    assert out.pop("socket") is False
    assert out.pop("ping") is True
    assert out.pop("images") is True
    assert out == dict.fromkeys(out, 403), out


def allowed_create(stack: Stack) -> dict:
    """The body docker-py sends for the generate task, moved to this stack's settings."""
    return create_body(stack.image_tag, stack.task_user, stack.data_dir)


def forbidden_creates(stack: Stack) -> dict[str, dict]:
    """One create body per rule an attacker would break, each otherwise allowed."""

    def changed(change) -> dict:
        body = allowed_create(stack)
        change(body, body["HostConfig"])
        return body

    root_bind = {
        "Type": "bind",
        "Source": "/",
        "Target": "/data/raw",
        "ReadOnly": False,
    }
    return {
        "privileged": changed(lambda b, h: h.update(Privileged=True)),
        "CapAdd": changed(lambda b, h: h.update(CapAdd=["SYS_ADMIN"])),
        "bind of / (Mounts)": changed(lambda b, h: h.update(Mounts=[root_bind])),
        "bind of / (Binds)": changed(lambda b, h: h.update(Binds=["/:/data/host"])),
        "bind of the socket": changed(
            lambda b, h: h.update(Binds=["/var/run/docker.sock:/data/docker.sock"])
        ),
        "host network": changed(lambda b, h: h.update(NetworkMode="host")),
        "host pid": changed(lambda b, h: h.update(PidMode="host")),
        "root user": changed(lambda b, h: b.update(User="0:0")),
        "no user": changed(lambda b, h: b.pop("User")),
        "foreign image": changed(
            lambda b, h: b.update(Image=f"ml-mlflow:{stack.image_tag}")
        ),
        "stage image at another tag": changed(
            lambda b, h: b.update(Image=f"ml-generate:{stack.image_tag}-other")
        ),
        "writable root": changed(lambda b, h: h.update(ReadonlyRootfs=False)),
        "no memory limit": changed(lambda b, h: h.pop("Memory")),
        "device": changed(
            lambda b, h: h.update(
                Devices=[
                    {
                        "PathOnHost": "/dev/kmsg",
                        "PathInContainer": "/dev/kmsg",
                        "CgroupPermissions": "r",
                    }
                ]
            )
        ),
    }


def test_guard_refuses_every_forbidden_create(stack: Stack) -> None:
    """From inside the task launcher: the generate task's own create body is allowed (and
    the container it makes can be inspected and removed), and each change an attacker would
    make to it gets 403 with the rule it broke, logged by the guard."""
    script = """
import json, os, docker
api = docker.APIClient(base_url=os.environ["ML_DOCKER_URL"])
bodies = GIVEN
url = api._url("/containers/create")
out = {}
allowed = api._post_json(url, data=bodies.pop("allowed"), timeout=30)
out["allowed"] = allowed.status_code
if allowed.status_code == 201:
    cid = allowed.json()["Id"]
    out["inspect own"] = api._get(api._url("/containers/{0}/json", cid)).status_code
    out["remove own"] = api._delete(api._url("/containers/{0}", cid)).status_code
else:
    out["allowed body"] = allowed.text
for name, body in bodies.items():
    answer = api._post_json(url, data=body, timeout=30)
    out[name] = [answer.status_code, answer.text]
print(json.dumps(out))
"""
    bodies = {"allowed": allowed_create(stack), **forbidden_creates(stack)}
    out = in_task_launcher(stack, script, bodies)
    assert out.pop("allowed") == 201, out.get("allowed body")
    assert out.pop("inspect own") == 200
    assert out.pop("remove own") == 204
    logs = stack.compose("logs", "--no-color", "docker-guard").stdout
    for name, (status, text) in out.items():
        assert status == 403, (name, status, text)
        message = json.loads(text)["message"]
        assert message.startswith("ml-docker-guard: "), (name, message)
        # The refusal names its rule, and the guard's log has the same line.
        assert message.removeprefix("ml-docker-guard: ") in logs, (name, message)


def test_guard_refuses_calls_on_other_services_containers(stack: Stack) -> None:
    """Postgres's container holds the database password in its environment: inspecting it
    (or stopping, killing or removing it) through the guard gets 403."""
    postgres = stack.compose("ps", "-q", "postgres").stdout.strip()
    assert postgres
    script = """
import json, os, docker
api = docker.APIClient(base_url=os.environ["ML_DOCKER_URL"])
cid = GIVEN
calls = {
    "inspect": ("_get", "/containers/{0}/json"),
    "inspect by short id": ("_get", "/containers/{1}/json"),
    "logs": ("_get", "/containers/{0}/logs?stdout=1"),
    "stop": ("_post", "/containers/{0}/stop"),
    "kill": ("_post", "/containers/{0}/kill"),
    "remove": ("_delete", "/containers/{0}?force=1"),
}
out = {}
for name, (method, path) in calls.items():
    answer = getattr(api, method)(api.base_url + path.format(cid, cid[:12]), timeout=30)
    out[name] = [answer.status_code, answer.text]
print(json.dumps(out))
"""
    out = in_task_launcher(stack, script, postgres)
    for name, (status, text) in out.items():
        assert status == 403, (name, status, text)
        assert "was not created through the guard" in text, (name, text)
    assert stack.service_states()["postgres"] == "healthy"


def test_airflow_sees_the_data_dir_read_only(stack: Stack) -> None:
    marker = stack.data_dir / "stack-test-marker"
    marker.write_text("seen\n")
    try:
        result = stack.compose(
            "exec", "-T", "airflow-triggerer", "cat", "/data/stack-test-marker"
        )
        assert result.stdout == "seen\n"
        denied = stack.compose(
            "exec", "-T", "airflow-triggerer", "touch", "/data/x", check=False
        )
        assert denied.returncode != 0
    finally:
        marker.unlink()


def test_task_network_reaches_mlflow_by_name(stack: Stack) -> None:
    """A container on the task network gets MLflow at http://mlflow:5000 and nothing else."""
    probe = [
        "docker",
        "run",
        "--rm",
        "--pull=never",
        f"--network={stack.task_network}",
        "--entrypoint=http-ok",
        f"ml-mlflow:{stack.image_tag}",
    ]
    ok = subprocess.run(
        [*probe, "http://mlflow:5000/health"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    # Airflow and Postgres are not on that network.
    refused = subprocess.run(
        [*probe, "http://airflow-apiserver:8080/api/v2/version"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0


@pytest.fixture(scope="module")
def probe_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """resolve_probe/ packaged exactly like a stage: static glibc, images/stage/Dockerfile."""
    target_dir = tmp_path_factory.mktemp("probe-target")
    subprocess.run(
        ["cargo", "build", "--release", "--quiet"],
        cwd=PROBE_CRATE,
        env={**os.environ, "CARGO_TARGET_DIR": str(target_dir)},
        check=True,
    )
    binary = target_dir / "x86_64-unknown-linux-gnu" / "release" / "resolve-probe"
    context = tmp_path_factory.mktemp("probe-context")
    shutil.copy(binary, context / "stage")
    (context / "stage").chmod(0o555)
    tag = "mlpipeline-resolve-probe:test"
    subprocess.run(
        [
            "docker",
            "build",
            "--quiet",
            "--file",
            str(REPO / "images" / "stage" / "Dockerfile"),
            "--build-arg",
            "STAGE=resolve-probe",
            "--tag",
            tag,
            str(context),
        ],
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        check=True,
        capture_output=True,
    )
    try:
        yield tag
    finally:
        subprocess.run(
            ["docker", "image", "rm", "--force", tag], check=False, capture_output=True
        )


def test_static_stage_binary_reaches_mlflow_by_name(
    stack: Stack, probe_image: str
) -> None:
    """A scratch image with a static glibc binary resolves `mlflow` through Docker's DNS."""
    locked_down = [
        "--rm",
        "--pull=never",
        "--read-only",
        "--cap-drop=ALL",
        f"--user={stack.task_user}",
    ]
    on_task_net = subprocess.run(
        [
            "docker",
            "run",
            *locked_down,
            f"--network={stack.task_network}",
            probe_image,
            "mlflow:5000",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert on_task_net.returncode == 0, on_task_net.stderr
    assert "mlflow:5000: connected to" in on_task_net.stdout
    # Stages without network_mode get no network at all: the name does not even resolve.
    isolated = subprocess.run(
        ["docker", "run", *locked_down, "--network=none", probe_image, "mlflow:5000"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert isolated.returncode == 1
    assert "resolve" in isolated.stderr


def test_stage_image_writes_one_day_of_data(stack: Stack) -> None:
    """ml-generate, run as DockerOperator runs it, writes raw/<ds>/ into the host data dir."""
    day = "2026-01-05"
    result = stack.run_stage(
        "generate", "--output-dir", f"/data/raw/{day}", "--date", day
    )
    assert result.returncode == 0, result.stderr
    raw = stack.data_dir / "raw" / day
    data = (raw / "data.csv").read_text().splitlines()
    target = (raw / "target.csv").read_text().splitlines()
    assert len(data) > 1
    assert len(data) == len(target)
    # Files belong to the task user, so the host user (or the dedicated uid) owns them.
    uid = int(stack.task_user.split(":")[0])
    assert (raw / "data.csv").stat().st_uid == uid
