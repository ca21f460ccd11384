"""`scripts/stack.sh env` on an env file copied from .env.example, as a newcomer would.

Each test runs the real script against an env file and a data directory of its own
(``ML_ENV_FILE``, ``ML_DATA_DIR``) under a compose project name nobody uses, with a clean
environment (the DAG tests' ``ML_*`` variables would otherwise become the file's values).
Nothing is started: ``env`` only writes the file.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK_SH = REPO / "scripts" / "stack.sh"
EXAMPLE = REPO / ".env.example"
DOCKER_SOCKET = Path("/var/run/docker.sock")

SECRETS = {
    # key: hex characters of the generated value (None: the Fernet key, base64)
    "POSTGRES_PASSWORD": 48,
    "AIRFLOW_DB_PASSWORD": 48,
    "MLFLOW_DB_PASSWORD": 48,
    "MLFLOW_ADMIN_PASSWORD": 32,
    "MLFLOW_PIPELINE_PASSWORD": 48,
    "MLFLOW_PREDICT_PASSWORD": 48,
    "MLFLOW_SECRET_KEY": 64,
    "AIRFLOW_FERNET_KEY": None,
    "AIRFLOW_JWT_SECRET": 64,
    "AIRFLOW_API_SECRET_KEY": 64,
    "AIRFLOW_ADMIN_PASSWORD": 24,
    "REDIS_PASSWORD": 48,
}
DETECTED = {"ML_HOST_DATA_DIR", "DOCKER_GID", "ML_TASK_USER"}
PLACEHOLDER = re.compile(r"^(<.*>|/absolute/path/to/.*)$")


@pytest.fixture(autouse=True)
def docker_socket() -> None:
    """scripts/stack.sh env reads the group of the Docker socket: without one these tests
    cannot run, which is a failure here, never a skip."""
    assert DOCKER_SOCKET.is_socket(), f"{DOCKER_SOCKET} is not a socket: start Docker"


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def expected_task_user() -> str:
    return "10001:10001" if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def project() -> str:
    return f"mlpipeline-envtest-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def run_env(workdir: Path, project: str):
    """run_env() -> CompletedProcess of `scripts/stack.sh env` on workdir/.env."""

    def _run() -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(workdir)),
            "ML_ENV_FILE": str(workdir / ".env"),
            "ML_DATA_DIR": str(workdir / "data"),
            "ML_STACK_PROJECT": project,
        }
        return subprocess.run(
            [str(STACK_SH), "env"],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return _run


def copy_example(workdir: Path) -> Path:
    env_file = workdir / ".env"
    env_file.write_text(EXAMPLE.read_text())
    env_file.chmod(0o644)  # what `cp` gives: the example is not secret
    return env_file


def test_the_example_has_the_placeholders_this_test_expects():
    example = read_env(EXAMPLE)
    for key in [*SECRETS, *DETECTED]:
        assert PLACEHOLDER.match(example[key]), key
    # The addresses people open, as stack.sh env derives them from the ports.
    assert example["AIRFLOW_BASE_URL"] == f"http://localhost:{example['AIRFLOW_PORT']}"
    assert example["MLFLOW_BASE_URL"] == f"http://localhost:{example['MLFLOW_PORT']}"


def test_compose_gives_airflow_what_the_dag_helpers_read():
    """Every Airflow container gets MLflow's address for the approval page (rollout.py
    reads ML_MLFLOW_BASE_URL), the deadlines' intervals with common.py's defaults, and the
    DAG folder on PYTHONPATH (the triggerer imports alerts.py for the deadline callbacks)."""
    import yaml

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = {n: s for n, s in compose["services"].items() if n.startswith("airflow")}
    assert {"airflow-triggerer", "airflow-scheduler", "airflow-dag-processor"} <= set(
        services
    )
    for name, service in services.items():
        env = service["environment"]
        assert env["ML_MLFLOW_BASE_URL"] == "${MLFLOW_BASE_URL:-http://localhost:5000}"
        assert env["AIRFLOW__API__BASE_URL"] == (
            "${AIRFLOW_BASE_URL:-http://localhost:8080}"
        ), name
        assert env["ML_PREDICT_DEADLINE_MINUTES"] == (
            "${ML_PREDICT_DEADLINE_MINUTES:-120}"
        ), name
        assert env["ML_APPROVAL_REMINDER_HOURS"] == (
            "${ML_APPROVAL_REMINDER_HOURS:-24}"
        ), name
        assert env["PYTHONPATH"] == "/opt/airflow/dags", name
        assert "./airflow_ml_dags/dags:/opt/airflow/dags:ro" in service["volumes"], name
        # The approval and the reminder read promotion.json there.
        assert "${ML_HOST_DATA_DIR}:/data:ro" in service["volumes"], name


def test_a_copied_example_gets_generated_and_detected_values(workdir, run_env):
    env_file = copy_example(workdir)
    result = run_env()
    assert result.returncode == 0, result.stderr
    assert "replaced the placeholders of" in result.stdout

    values = read_env(env_file)
    assert not [k for k, v in values.items() if PLACEHOLDER.match(v)]
    for key, hex_chars in SECRETS.items():
        if hex_chars is None:
            assert len(base64.urlsafe_b64decode(values[key])) == 32, key
        else:
            assert re.fullmatch(f"[0-9a-f]{{{hex_chars}}}", values[key]), key
    secrets = [values[k] for k in SECRETS]
    assert len(set(secrets)) == len(secrets), "every secret is drawn on its own"

    assert values["ML_HOST_DATA_DIR"] == str((workdir / "data").resolve())
    assert (workdir / "data").is_dir()
    assert values["DOCKER_GID"] == str(DOCKER_SOCKET.stat().st_gid)
    assert values["ML_TASK_USER"] == expected_task_user()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    # Everything else, comments included, is the example's, in its order, once.
    example_lines = EXAMPLE.read_text().splitlines()
    lines = env_file.read_text().splitlines()
    assert len(lines) == len(example_lines)
    for mine, theirs in zip(lines, example_lines, strict=True):
        key = theirs.split("=", 1)[0]
        if key in SECRETS or key in DETECTED:
            assert mine.startswith(f"{key}=")
        else:
            assert mine == theirs

    # A second run finds nothing to do.
    before = env_file.read_text()
    again = run_env()
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout
    assert env_file.read_text() == before


def test_real_values_are_kept_and_missing_ones_added(workdir, run_env):
    env_file = workdir / ".env"
    data_dir = workdir / "elsewhere"
    data_dir.mkdir()
    mine = {
        "POSTGRES_PASSWORD": "my-own-postgres-password",
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "AIRFLOW_ADMIN_PASSWORD": "correct horse battery staple",
        "ML_HOST_DATA_DIR": str(data_dir),
        "DOCKER_GID": "4242",
        "ML_TASK_USER": "2000:2000",
        "ML_MODEL_PATH": "",
        "AIRFLOW_PORT": "8181",
        "MLFLOW_PORT": "5151",
    }
    env_file.write_text("".join(f"{k}={v}\n" for k, v in mine.items()))
    result = run_env()
    assert result.returncode == 0, result.stderr
    assert "replaced" not in result.stdout

    values = read_env(env_file)
    for key, value in mine.items():
        assert values[key] == value, key
    for key in SECRETS.keys() - mine.keys():
        assert values[key] and not PLACEHOLDER.match(values[key]), key
    assert values["AIRFLOW_BASE_URL"] == "http://localhost:8181"
    assert values["MLFLOW_BASE_URL"] == "http://localhost:5151"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_an_empty_secret_is_generated(workdir, run_env):
    env_file = workdir / ".env"
    env_file.write_text("POSTGRES_PASSWORD=\nREDIS_PASSWORD=kept\n")
    result = run_env()
    assert result.returncode == 0, result.stderr
    values = read_env(env_file)
    assert re.fullmatch("[0-9a-f]{48}", values["POSTGRES_PASSWORD"])
    assert values["REDIS_PASSWORD"] == "kept"


@pytest.mark.parametrize(
    "line",
    [
        "ML_IMAGE_TAG=<tag>",
        "AIRFLOW_BASE_URL=<the UI's address>",
        "MLFLOW_BASE_URL=<MLflow's address>",
        "AIRFLOW_CONN_ALERT_EMAIL=<smtp://user:password@host:587>",
        "ML_TASK_NETWORK=/absolute/path/to/network",
    ],
)
def test_a_placeholder_nothing_can_fill_in_is_refused_by_name(workdir, run_env, line):
    env_file = copy_example(workdir)
    with env_file.open("a") as f:
        f.write(line + "\n")
    before = env_file.read_bytes()
    result = run_env()
    key = line.split("=", 1)[0]
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: ") and f" {line} " in errors[0]
    assert key in errors[0]
    # Refused before anything was written: the secrets' placeholders are still there.
    assert env_file.read_bytes() == before
    assert not (workdir / "data").exists()


def docker_works() -> bool:
    try:
        return (
            subprocess.run(
                ["docker", "volume", "ls", "-q"],
                check=False,
                capture_output=True,
                timeout=30,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_placeholder_secrets_are_not_replaced_under_existing_volumes(
    workdir, run_env, project
):
    """A stack once started with the placeholders set its databases up with them: new
    secrets would lock it out, so the script says so instead."""
    assert docker_works(), "this test needs a reachable Docker daemon"
    volume = f"{project}_postgres-data"
    subprocess.run(
        [
            "docker",
            "volume",
            "create",
            "--label",
            f"com.docker.compose.project={project}",
            volume,
        ],
        check=True,
        capture_output=True,
    )
    try:
        env_file = copy_example(workdir)
        before = env_file.read_bytes()
        result = run_env()
        assert result.returncode == 1
        errors = result.stderr.splitlines()
        assert len(errors) == 1, result.stderr
        assert "POSTGRES_PASSWORD" in errors[0] and project in errors[0]
        assert "scripts/stack.sh clean" in errors[0]
        assert env_file.read_bytes() == before
    finally:
        subprocess.run(
            ["docker", "volume", "rm", volume], check=False, capture_output=True
        )
