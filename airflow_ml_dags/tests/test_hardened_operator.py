"""HardenedDockerOperator: the lock-down options really reach the container's host config.

These tests run DockerOperator 4.6.1's own execute() path with docker-py's real APIClient;
only the calls that would reach a Docker daemon (image lookup, create, attach, start, wait,
remove) are answered locally and recorded. tests/system/test_e2e.py runs the same operator
against the real daemon and checks the running container from the inside.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import docker
import pytest
from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from common import (
    OTHER_FAILURE_TRIES,
    PERMANENT_EXIT_CODES,
    STAGES,
    TRANSIENT_EXIT_CODE,
    HardenedDockerOperator,
)
from ml_dag_testing import RENDER_INPUTS, STACK_ENV, STAGE_TASKS

API_VERSION = "1.41"  # Docker Engine 20.10, the oldest engine we support


class LocalDaemonClient(docker.APIClient):
    """docker-py's APIClient, whose create_host_config is the code under test, with the
    daemon round trips answered here."""

    def __init__(self, exit_code: int = 0, output: bytes = b"stage done\n") -> None:
        super().__init__(
            base_url="unix:///nonexistent/docker.sock", version=API_VERSION
        )
        self.exit_code = exit_code
        self.output = output
        self.created: dict = {}
        self.removed: list[tuple[str, bool]] = []

    def images(self, name=None, **kwargs):
        return [{"Id": "sha256:0123", "RepoTags": [name]}]

    def create_container(self, **kwargs):
        self.created = kwargs
        return {"Id": "c0ffee"}

    def attach(self, container, **kwargs):
        return iter([self.output])

    def start(self, container, **kwargs):
        pass

    def wait(self, container, **kwargs):
        return {"StatusCode": self.exit_code, "Error": None}

    def remove_container(self, container, force=False, **kwargs):
        self.removed.append((container, force))


def run_with(task, render, client: LocalDaemonClient, **inputs):
    rendered, context = render(task, **inputs)
    rendered.__dict__["hook"] = SimpleNamespace(api_client=client)
    return rendered.execute(context), context


def plain_twin(task) -> DockerOperator:
    """The same task as a stock DockerOperator, for comparison."""
    kwargs = {
        name: copy.deepcopy(getattr(task, name))
        for name in (
            "image",
            "command",
            "docker_url",
            "mounts",
            "mount_tmp_dir",
            "auto_remove",
            "user",
            "mem_limit",
            "network_mode",
            "environment",
        )
    }
    twin_dag = DAG(
        f"{task.dag_id}_stock", schedule=None, start_date=task.dag.start_date
    )
    return DockerOperator(task_id=task.task_id, dag=twin_dag, **kwargs)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_host_config_is_docker_operators_plus_the_lock_down(dags, render, stage):
    dag_id, task_id = STAGE_TASKS[stage]
    task = dags[dag_id].get_task(task_id)
    # What the task needs to render besides a scheduled run (an XCom, a form's values).
    inputs = RENDER_INPUTS.get((dag_id, task_id), {})

    hardened = LocalDaemonClient()
    run_with(task, render, hardened, **inputs)
    stock = LocalDaemonClient()
    run_with(plain_twin(task), render, stock, **inputs)

    # What docker-py itself makes of the options DockerOperator has no parameter for (less
    # the defaults docker-py puts into every host config, such as NetworkMode).
    baseline = docker.types.HostConfig(version=API_VERSION)
    lock_down = {
        key: value
        for key, value in docker.types.HostConfig(
            version=API_VERSION,
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=task.pids_limit,
            nano_cpus=10**9,
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
        ).items()
        if key not in baseline
    }
    assert set(lock_down) == {
        "ReadonlyRootfs",
        "CapDrop",
        "SecurityOpt",
        "PidsLimit",
        "NanoCpus",
        "Tmpfs",
    }
    host_config = hardened.created["host_config"]
    assert host_config == {**stock.created["host_config"], **lock_down}

    # And the settings from common.py, as the daemon will receive them.
    # The binds with the day rendered: each under /data, none of the whole data directory.
    mounts = host_config["Mounts"]
    assert mounts, stage
    for mount in mounts:
        assert "{{" not in mount["Target"] and "{{" not in mount["Source"], mount
        assert mount["Target"].startswith("/data/"), mount
        assert mount["Source"] == STACK_ENV["ML_HOST_DATA_DIR"] + mount["Target"][5:]
        assert mount["Type"] == "bind"
    assert host_config["Memory"] > 0
    assert host_config.get("Privileged", False) is False
    assert "AutoRemove" not in host_config or host_config["AutoRemove"] is False
    expected_network = (
        STACK_ENV["ML_TASK_NETWORK"] if STAGES[stage].needs_mlflow else "none"
    )
    assert host_config["NetworkMode"] == expected_network
    assert hardened.created["user"] == STACK_ENV["ML_TASK_USER"]
    image = STAGES[stage].image_of or stage
    assert hardened.created["image"] == f"ml-{image}:{STACK_ENV['ML_IMAGE_TAG']}"
    # The command the container gets is the rendered one, whole.
    assert hardened.created["command"] == stock.created["command"]
    assert "{{" not in " ".join(hardened.created["command"])
    # auto_remove="success": removed by the operator once it exited 0.
    assert hardened.removed == [("c0ffee", False)]


def test_containers_are_labelled_with_their_task(dags, render):
    task = dags["train_model"].get_task("train")
    client = LocalDaemonClient()
    _, context = run_with(task, render, client)
    assert client.created["labels"] == {
        "ml.pipeline.dag_id": "train_model",
        "ml.pipeline.task_id": "train",
        "ml.pipeline.run_id": context["run_id"],
        "ml.pipeline.try_number": "1",
    }


def test_usage_error_fails_without_retry(dags, render):
    assert 2 in PERMANENT_EXIT_CODES  # clap's usage-error status, kept by ml-cli
    task = dags["predict"].get_task("predict")
    client = LocalDaemonClient(
        exit_code=2,
        output=b"error: unexpected argument '--modle' found\n",
    )
    with pytest.raises(AirflowFailException, match="exit code 2"):
        run_with(task, render, client)
    # DockerOperator 4.6.1 removes the container in a `finally` under "success" too, so a
    # failed container is gone as well; its output is in the task log.
    assert client.removed == [("c0ffee", False)]


def test_bad_input_fails_without_retry(dags, render):
    assert 65 in PERMANENT_EXIT_CODES  # ml-cli's EXIT_BAD_INPUT
    task = dags["train_model"].get_task("promote")
    client = LocalDaemonClient(
        exit_code=65, output=b"error: /data/processed/x/val.csv: row 3 ...\n"
    )
    with pytest.raises(AirflowFailException, match="input data or model .exit code 65"):
        run_with(task, render, client)


def run_on_try(
    task, render, client: LocalDaemonClient, try_number: int, cleared_after: int = 0
):
    """Runs ``task`` as try ``try_number``; ``cleared_after``: the task had that many tries
    before a person cleared it (Airflow then moves max_tries up by the task's retries)."""
    rendered, context = render(task)
    context["ti"].try_number = try_number
    context["ti"].max_tries = cleared_after + task.retries
    rendered.__dict__["hook"] = SimpleNamespace(api_client=client)
    return rendered.execute(context)


def test_transient_failures_are_retried_past_other_failures(dags, render):
    """Exit 75 (MLflow unreachable, nothing changed) stays retryable on every try; any
    other failure only until OTHER_FAILURE_TRIES."""
    task = dags["train_model"].get_task("promote")
    last = OTHER_FAILURE_TRIES
    with pytest.raises(DockerContainerFailedException) as failure:
        run_on_try(task, render, LocalDaemonClient(exit_code=TRANSIENT_EXIT_CODE), last)
    assert not isinstance(failure.value, AirflowFailException)
    with pytest.raises(DockerContainerFailedException) as failure:
        run_on_try(task, render, LocalDaemonClient(exit_code=1), last - 1)
    assert not isinstance(failure.value, AirflowFailException)
    with pytest.raises(AirflowFailException, match=f"on try {last} since"):
        run_on_try(task, render, LocalDaemonClient(exit_code=1), last)


def test_a_cleared_task_gets_its_tries_again(dags, render):
    """Try numbers keep counting across a clear; the limit on other failures counts the
    tries since the clear (the kill drill clears a task that already ran twice)."""
    task = dags["train_model"].get_task("train")
    with pytest.raises(DockerContainerFailedException) as failure:
        run_on_try(task, render, LocalDaemonClient(exit_code=137), 3, cleared_after=2)
    assert not isinstance(failure.value, AirflowFailException)
    last = 2 + OTHER_FAILURE_TRIES
    with pytest.raises(
        AirflowFailException, match=f"on try {OTHER_FAILURE_TRIES} since"
    ):
        run_on_try(
            task, render, LocalDaemonClient(exit_code=137), last, cleared_after=2
        )


def test_mlflow_stages_ride_out_a_five_minute_outage(dags):
    """The waits Airflow puts between tries (next_retry_datetime: at least retry_delay *
    multiplier ** (try - 1), capped by max_retry_delay) add up to more than 5 minutes for
    every task that talks to MLflow."""
    for dag in dags.values():
        for task in dag.tasks:
            stage = getattr(task, "image", "").removeprefix("ml-").split(":")[0]
            if stage not in STAGES or not STAGES[stage].needs_mlflow:
                continue
            waits = [
                min(
                    task.retry_delay.total_seconds()
                    * task.retry_exponential_backoff ** (n - 1),
                    task.max_retry_delay.total_seconds(),
                )
                for n in range(1, task.retries + 1)
            ]
            assert task.retry_exponential_backoff > 1, task.task_id
            assert sum(waits) >= 300, (task.task_id, waits)


def test_other_failures_stay_retryable(dags, render):
    task = dags["predict"].get_task("predict")
    client = LocalDaemonClient(exit_code=1, output=b"error: out of memory\n")
    with pytest.raises(DockerContainerFailedException) as failure:
        run_with(task, render, client)
    assert not isinstance(failure.value, AirflowFailException)
    assert failure.value.logs == ["error: out of memory"]


def test_refuses_to_run_without_a_host_data_dir(dags, render):
    task = copy.deepcopy(dags["generate_data"].get_task("generate"))
    task.mounts = [docker.types.Mount(target="/data", source="", type="bind")]
    client = LocalDaemonClient()
    with pytest.raises(AirflowException, match="ML_HOST_DATA_DIR"):
        run_with(task, render, client)
    assert client.created == {}


def test_refuses_a_bind_whose_directory_is_missing(dags, render, monkeypatch, tmp_path):
    """Where the launcher sees the data directory, a missing bind source is a clear,
    final error before any container is created."""
    import common

    (tmp_path / "raw").mkdir()
    monkeypatch.setattr(common, "DATA_DIR", str(tmp_path))
    task = copy.deepcopy(dags["train_model"].get_task("preprocess"))
    task.mounts = [
        docker.types.Mount(
            target=f"{tmp_path}/raw/{{{{ ds }}}}", source="/srv/raw/x", type="bind"
        )
    ]
    client = LocalDaemonClient()
    with pytest.raises(AirflowFailException, match="does not exist"):
        run_with(task, render, client)
    assert client.created == {}


def test_lock_down_cannot_be_silently_overridden():
    from common import _HardenedAPIClient

    client = _HardenedAPIClient(LocalDaemonClient(), {"read_only": True})
    with pytest.raises(ValueError, match="read_only"):
        client.create_host_config(read_only=False)


def test_lock_down_can_be_relaxed_explicitly_per_task():
    task = HardenedDockerOperator(
        task_id="debug", image="ml-generate:latest", read_only=False, cap_drop=()
    )
    extra = task.extra_host_config()
    assert extra["read_only"] is False
    assert extra["cap_drop"] == []
    assert "tmpfs" not in extra
    assert extra["security_opt"] == ["no-new-privileges"]
