"""Fixtures for system tests: a real compose stack of Airflow, Postgres and MLflow.

The session-scoped fixture ``stack`` starts docker-compose.yml under its own compose
project, with its own env file (fresh generated secrets), its own host ports, its own
temporary data directory and its own task network, so it never touches a developer's
stack (``make up``) running on the same machine. It waits until every service is
healthy, yields a :class:`Stack`, and always removes the containers, networks and
volumes afterwards (``down --volumes``), also when a test or the start itself fails.

The images must exist (``scripts/images.sh``, ``make images``); the fixture does not
build them and fails with that hint when one is missing.

Settings (environment):

``ML_STACK_PROJECT``
    compose project name (default ``mlpipeline-test``); the task network is
    ``<project>-tasks``.
``ML_TEST_AIRFLOW_PORT`` / ``ML_TEST_MLFLOW_PORT``
    host ports (default 18080 / 15000), published on 127.0.0.1.
``ML_STACK_TIMEOUT``
    seconds to wait for a healthy stack (default 300).
``ML_IMAGE_TAG``
    tag of the ml-* images (default ``latest``).

The module-scoped fixture ``celery_stack`` is the same stack with the compose profile
``celery`` (CeleryExecutor, Redis, two workers), under a project and ports of its own
(``ML_CELERY_STACK_PROJECT``, default ``mlpipeline-test-celery``;
``ML_TEST_CELERY_AIRFLOW_PORT`` / ``ML_TEST_CELERY_MLFLOW_PORT``, default 18180 / 15100),
so it can run beside ``stack``; it is removed when its test module is done.

Using it::

    def test_dag_run(stack):
        api = stack.airflow_api()            # requests.Session with a fresh JWT
        r = api.get(f"{stack.airflow_url}/api/v2/dags")
        stack.run_stage("generate", "--help")  # a stage image as Airflow would run it
        stack.compose("logs", "airflow-scheduler")
        (stack.data_dir / "raw").exists()    # the host side of /data
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
STACK_SH = REPO / "scripts" / "stack.sh"
PLATFORM_IMAGES = ("ml-postgres", "ml-airflow", "ml-mlflow", "ml-docker-guard")
# Images that only a compose profile uses.
PROFILE_IMAGES = {"celery": ("ml-redis",)}


@dataclass(frozen=True)
class Stack:
    """A running compose stack and the ways to talk to it."""

    project: str
    """Compose project name."""
    airflow_url: str
    """Base URL of the Airflow api-server (UI, ``/api/v2``, ``/auth/token``)."""
    mlflow_url: str
    """Base URL of the MLflow server (UI, ``/api/2.0/mlflow``, ``/health``)."""
    username: str
    """Airflow admin user created by airflow-init."""
    password: str
    """Its generated password."""
    data_dir: Path
    """Host data directory; ``/data`` in task containers, read-only ``/data`` in Airflow."""
    env_file: Path
    """The stack's env file (generated secrets, mode 600)."""
    task_network: str
    """Docker network task containers join to reach ``http://mlflow:5000``."""
    task_user: str
    """``uid:gid`` task containers run as; owns ``data_dir``."""
    image_tag: str
    """Tag of the ml-* images."""
    profile: str = ""
    """Compose profile: empty (LocalExecutor) or ``celery``."""

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ML_STACK_PROJECT": self.project,
            "ML_ENV_FILE": str(self.env_file),
            "ML_STACK_PROFILE": self.profile,
        }

    def compose(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Runs a compose command for this project (``docker-compose`` 1.29 or v2).

        Output is captured as text; with ``check`` a non-zero exit raises
        ``subprocess.CalledProcessError`` carrying stdout and stderr.
        """
        return subprocess.run(
            [str(STACK_SH), "compose", *args],
            env=self._env(),
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Blocks until every service is healthy again (after a restart, for example)."""
        env = self._env()
        if timeout is not None:
            env["ML_WAIT_TIMEOUT"] = str(int(timeout))
        subprocess.run([str(STACK_SH), "wait"], env=env, check=True)

    def airflow_token(self) -> str:
        """A fresh JWT for Airflow's REST API, from ``POST /auth/token``."""
        response = requests.post(
            f"{self.airflow_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def airflow_api(self) -> requests.Session:
        """A session whose requests carry ``Authorization: Bearer <fresh JWT>``."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.airflow_token()}"
        return session

    def mlflow_api(self, user: str = "admin") -> requests.Session:
        """A session for MLflow's REST API and UI, signed in to MLflow's basic-auth app as
        ``admin``, as ``pipeline`` (the stages' account) or as ``predict`` (the predict
        task's read-only account), with the generated passwords."""
        secrets = _read_env_file(self.env_file)
        key = {
            "admin": "MLFLOW_ADMIN_PASSWORD",
            "pipeline": "MLFLOW_PIPELINE_PASSWORD",
            "predict": "MLFLOW_PREDICT_PASSWORD",
        }
        session = requests.Session()
        session.auth = (user, secrets[key[user]])
        return session

    def mlflow_rest(self, method: str, endpoint: str, **params: object) -> dict:
        """One call of MLflow's REST API (``/api/2.0/mlflow/<endpoint>``) as ``admin``:
        ``params`` go in the query of a GET and in the JSON body otherwise."""
        response = self.mlflow_api().request(
            method,
            f"{self.mlflow_url}/api/2.0/mlflow/{endpoint}",
            **({"params": params} if method == "GET" else {"json": params}),
            timeout=30,
        )
        assert response.ok, (
            f"{method} {endpoint}: {response.status_code} {response.text}"
        )
        return response.json()

    def run_stage(
        self,
        stage: str,
        *args: str,
        network: str = "none",
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Runs image ``ml-<stage>`` the way the DAGs do: task user, data dir at /data.

        ``network`` is ``none`` (the default, as for stages without MLflow) or, for
        stages that talk to MLflow, ``stack.task_network``. Returns the finished
        process (exit code, stdout, stderr) without raising on failure.
        """
        return subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--pull=never",
                f"--user={self.task_user}",
                f"--network={network}",
                "--read-only",
                "--cap-drop=ALL",
                "--security-opt=no-new-privileges",
                f"--volume={self.data_dir}:/data",
                f"ml-{stage}:{self.image_tag}",
                *args,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def service_states(self) -> dict[str, str]:
        """Service name -> health status (or running / exited(N) without a healthcheck)."""
        ids = self.compose("ps", "--all", "-q").stdout.split()
        if not ids:
            return {}
        fmt = (
            '{{ index .Config.Labels "com.docker.compose.service" }} '
            "{{ if .State.Health }}{{ .State.Health.Status }}"
            "{{ else if .State.Running }}running"
            "{{ else }}exited({{ .State.ExitCode }}){{ end }}"
        )
        out = subprocess.run(
            ["docker", "inspect", "-f", fmt, *ids],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if line)


# The session stack's predict deadline: short, so that test_rollout.py sees it pass.
PREDICT_DEADLINE_MINUTES = 2


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def _missing_images(tag: str, profile: str = "") -> list[str]:
    return [
        f"{name}:{tag}"
        for name in (*PLATFORM_IMAGES, *PROFILE_IMAGES.get(profile, ()))
        if subprocess.run(
            ["docker", "image", "inspect", f"{name}:{tag}"],
            check=False,
            capture_output=True,
        ).returncode
        != 0
    ]


def _wait_for_http(url: str, deadline: float) -> None:
    """The published port answers a moment after the container reports healthy."""
    while True:
        try:
            if requests.get(url, timeout=5).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer")
        time.sleep(1)


@contextmanager
def running_stack(
    tmp_path_factory: pytest.TempPathFactory,
    project: str,
    airflow_port: str,
    mlflow_port: str,
    profile: str = "",
    settings: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Starts a stack under ``project`` on these host ports with a fresh env file, data
    directory and task network; yields it once healthy; always removes it whole."""
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed: system tests need a Docker engine")
    tag = os.environ.get("ML_IMAGE_TAG", "latest")
    timeout = float(os.environ.get("ML_STACK_TIMEOUT", "300"))
    missing = _missing_images(tag, profile)
    if missing:
        pytest.fail(
            f"images missing: {', '.join(missing)}; build them with scripts/images.sh"
        )

    workdir = tmp_path_factory.mktemp(project)
    env_file = workdir / "stack.env"
    env = {
        **os.environ,
        "ML_STACK_PROJECT": project,
        "ML_ENV_FILE": str(env_file),
        "ML_DATA_DIR": str(workdir / "data"),
        "AIRFLOW_PORT": airflow_port,
        "MLFLOW_PORT": mlflow_port,
        "ML_BIND_ADDRESS": "127.0.0.1",
        "ML_STACK_PROFILE": profile,
        "ML_TASK_NETWORK": f"{project}-tasks",
        "ML_IMAGE_TAG": tag,
        **(settings or {}),
    }
    subprocess.run([str(STACK_SH), "env"], env=env, check=True)
    values = _read_env_file(env_file)
    stack = Stack(
        project=project,
        airflow_url=f"http://127.0.0.1:{values['AIRFLOW_PORT']}",
        mlflow_url=f"http://127.0.0.1:{values['MLFLOW_PORT']}",
        username=values["AIRFLOW_ADMIN_USERNAME"],
        password=values["AIRFLOW_ADMIN_PASSWORD"],
        data_dir=Path(values["ML_HOST_DATA_DIR"]),
        env_file=env_file,
        task_network=values["ML_TASK_NETWORK"],
        task_user=values["ML_TASK_USER"],
        image_tag=values["ML_IMAGE_TAG"],
        profile=profile,
    )

    # Leftovers of an interrupted earlier session would hold the ports and network.
    stack.compose("down", "--volumes", "--remove-orphans", check=False)
    started = False
    try:
        stack.compose("up", "-d", timeout=timeout)
        stack.wait_healthy(timeout)
        deadline = time.monotonic() + 60
        _wait_for_http(f"{stack.airflow_url}/api/v2/version", deadline)
        _wait_for_http(f"{stack.mlflow_url}/health", deadline)
        started = True
        yield stack
    finally:
        if not started:
            logs = stack.compose("logs", "--no-color", "--tail=50", check=False)
            print(
                f"--- compose logs of {project} (start failed) ---\n{logs.stdout}{logs.stderr}"
            )
        stack.compose("down", "--volumes", "--remove-orphans", check=False)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The compose stack under test (LocalExecutor); see the module docstring."""
    with running_stack(
        tmp_path_factory,
        os.environ.get("ML_STACK_PROJECT", "mlpipeline-test"),
        os.environ.get("ML_TEST_AIRFLOW_PORT", "18080"),
        os.environ.get("ML_TEST_MLFLOW_PORT", "15000"),
        # test_rollout.py waits for a predict run to miss its deadline.
        settings={"ML_PREDICT_DEADLINE_MINUTES": str(PREDICT_DEADLINE_MINUTES)},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack with the compose profile celery; see the module docstring."""
    with running_stack(
        tmp_path_factory,
        os.environ.get("ML_CELERY_STACK_PROJECT", "mlpipeline-test-celery"),
        os.environ.get("ML_TEST_CELERY_AIRFLOW_PORT", "18180"),
        os.environ.get("ML_TEST_CELERY_MLFLOW_PORT", "15100"),
        profile="celery",
    ) as running:
        yield running


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "system: needs the real compose stack (tests/system)"
    )


def pytest_collection_modifyitems(items: Sequence[pytest.Item]) -> None:
    """Everything under tests/system needs the stack: mark it for `-m system` selection."""
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.system)
