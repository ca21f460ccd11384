"""Shared wiring for the pipeline DAGs: one place for every DockerOperator default.

Each stage of the pipeline is a small binary in its own image (``ml-<stage>``). The DAG files
only say which stage runs with which arguments; this module decides how the container runs:
the image tag, which parts of the host data directory are bound under ``/data`` (what the
stage reads read-only, what it writes read-write), the user, the resource limits, the network,
the MLflow account and the lock-down options that DockerOperator itself has no parameter for.

Everything here is read from the environment at parse time (cheap, no database, no network),
so the DAG files parse the same way in tests, where none of the variables are set.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from alerts import on_failure
from docker.types import Mount

if TYPE_CHECKING:
    from airflow.sdk import Context

# Inside every task container (and every Airflow container) the data directory is /data.
DATA_DIR = "/data"
# The data directory's layout: one directory per kind, one subdirectory per day. The
# kinds' directories are made by scripts/stack.sh env (a bind source must exist).
RAW = "raw"
PROCESSED = "processed"
MODELS = "models"
PREDICTIONS = "predictions"
MONITORING = "monitoring"
MODEL_CACHE = "model-cache"
DATA_KINDS = (RAW, PROCESSED, MODELS, PREDICTIONS, MONITORING, MODEL_CACHE)
DAY = "{{ ds }}"
RAW_DIR = f"{DATA_DIR}/{RAW}/{DAY}"
PROCESSED_DIR = f"{DATA_DIR}/{PROCESSED}/{DAY}"
MODEL_DIR = f"{DATA_DIR}/{MODELS}/{DAY}"
PREDICTIONS_DIR = f"{DATA_DIR}/{PREDICTIONS}/{DAY}"
# monitor_model evaluates an earlier day than its own (labels arrive late): the day its
# `pick_day` task chose, from the run's `ds` and the Variable `label_delay_days`.
MONITORED_DAY = "{{ ti.xcom_pull(task_ids='pick_day') }}"

# The model that `predict` uses: an Airflow Variable, read when the task runs (never at parse
# time). Its default (airflow-init) is the registry's production alias, so inference follows
# promotions; a person may pin a version (models:/NAME/3) or a model directory instead.
MODEL_PATH = "{{ var.value.model_path }}"
REGISTERED_MODEL = "heart-disease-classifier"
DEFAULT_MODEL_URI = f"models:/{REGISTERED_MODEL}@production"

# How `promote` decides, also Variables read when the task runs: `auto` moves the production
# alias when the challenger wins; `manual` stops at the challenger alias for a person to review.
PROMOTION_MODE = "{{ var.value.get('promotion_mode', 'auto') }}"
# The lower end of the 95% paired-bootstrap interval of (challenger - production) ROC AUC
# must be above this margin.
PROMOTION_MIN_IMPROVEMENT = "{{ var.value.get('promotion_min_improvement', '0') }}"
# The floor every challenger's own ROC AUC must reach, the very first model's too.
PROMOTION_MIN_ROC_AUC = "{{ var.value.get('promotion_min_roc_auc', '0.75') }}"


# How long a day's predictions may take after its predict run was queued before an alert
# goes out, and how long a train_model run may go on (normally: waiting for an approval)
# before a reminder does: the stack's environment, read at parse time (Airflow fixes a
# deadline when it creates the run).
def positive_from_env(name: str, default: float) -> float:
    """A positive number from the environment; anything else is the default (a DAG file
    must parse, and a bad value must not turn the alert off)."""
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return default
    return value if 0 < value < float("inf") else default


PREDICT_DEADLINE = timedelta(
    minutes=positive_from_env("ML_PREDICT_DEADLINE_MINUTES", 120)
)
APPROVAL_REMINDER = timedelta(hours=positive_from_env("ML_APPROVAL_REMINDER_HOURS", 24))

# How monitor_model judges a day (Variables, read when the task runs): a feature drifts at a
# population stability index of `monitor_psi_threshold`; the model decays when its live ROC
# AUC is `monitor_auc_margin` below its validation ROC AUC, or below the promotion floor.
# `label_delay_days` says how many days after a day its labels are complete, and
# `retrain_cooldown_days` how long a decayed model version waits before it starts a second
# retraining (the first one may still be on its way through the gate).
LABEL_DELAY_DAYS = "{{ var.value.get('label_delay_days', '1') }}"
MONITOR_PSI_THRESHOLD = "{{ var.value.get('monitor_psi_threshold', '0.2') }}"
MONITOR_AUC_MARGIN = "{{ var.value.get('monitor_auc_margin', '0.03') }}"
RETRAIN_COOLDOWN_DAYS = "{{ var.value.get('retrain_cooldown_days', '7') }}"

# Extra ml-train arguments, for example `--model random-forest --n-trees 200`: tuning
# without editing the DAG (see `ml-train --help`). Empty: logistic regression, defaults.
TRAIN_ARGS = "{{ var.value.get('train_args', '') }}"

# What a stage's exit status means (defined once in crates/ml-cli): 2 is a command-line usage
# error (as clap exits) and 65 bad input data or a bad model; no retry can fix either, so the
# task fails at once and its alert goes out. 75 says a service (MLflow) was unreachable or
# failing and nothing was changed: retried with exponential backoff for as many tries as the
# task has. Any other failure (1) is retried too, but only OTHER_FAILURE_TRIES times in all.
PERMANENT_EXIT_CODES = frozenset({2, 65})
TRANSIENT_EXIT_CODE = 75
OTHER_FAILURE_TRIES = 3
EXIT_MEANINGS = {
    1: "failure",
    2: "usage error, not retried",
    65: "bad input data or model, not retried",
    75: "transient: a service was unreachable or failing, nothing was changed; retried",
}

FS_CONN_ID = "fs_data"
OWNER = "ml-platform"
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
DOCKER_URL = "unix://var/run/docker.sock"
MLFLOW_URL = "http://mlflow:5000"
# Registry models downloaded by predict and promote, one directory per version, kept on the
# data volume so that a version is downloaded once (task containers have a read-only root).
MODEL_CACHE_DIR = f"{DATA_DIR}/{MODEL_CACHE}"

DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    # Each wait is between 1x and 2x of 30 s doubled per try (Airflow spreads them by a
    # hash of the task instance), capped at 5 minutes. A multiplier of 1 (or True) is none.
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=5),
    # Once a task has failed for good (not on a retry), alert a person (alerts.py).
    "on_failure_callback": on_failure,
}


def docker_url() -> str:
    """The Docker API the tasks' containers are started through: in the stack the guard
    (``ML_DOCKER_URL=tcp://docker-guard:2375``, crates/ml-docker-guard), else the local
    socket."""
    return os.environ.get("ML_DOCKER_URL") or DOCKER_URL


def image_tag() -> str:
    return os.environ.get("ML_IMAGE_TAG") or "latest"


def host_data_dir() -> str:
    """The data directory as the Docker daemon sees it (bind-mount sources are host paths).

    Empty when unset; HardenedDockerOperator refuses to start a container without it, so a
    missing variable is a clear task error rather than a container writing somewhere else.
    """
    return os.environ.get("ML_HOST_DATA_DIR", "")


def task_user() -> str:
    # nobody:nogroup unless the stack says which uid:gid owns the data directory.
    return os.environ.get("ML_TASK_USER") or "65534:65534"


def task_network() -> str | None:
    return os.environ.get("ML_TASK_NETWORK") or None


@dataclass(frozen=True)
class Stage:
    """What differs between stages: the image, the memory it may use, the parts of the data
    directory it reads and writes, whether it talks to MLflow (the only reason a task
    container gets a network) and as which MLflow account.

    ``reads`` and ``writes`` are paths under /data, templated (``{{ ds }}``). A day's
    directory that the stage itself creates cannot be bound before it exists, so such a
    stage gets the kind's directory (``models``) read-write; a stage that adds files to a
    day's directory made earlier gets only that day (``models/{{ ds }}``)."""

    name: str
    mem_limit: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    needs_mlflow: bool = False
    # The stage only reads the registry: it signs in as the read-only account.
    mlflow_read_only: bool = False
    # The binary's image when it is another stage's (a subcommand of ml-promote).
    image_of: str = ""

    @property
    def retries(self) -> int:
        """A stage that talks to MLflow rides out an outage of several minutes: with the
        default backoff (30 s doubling, capped at 5 min), 6 retries wait at least 17 minutes."""
        return 6 if self.needs_mlflow else DEFAULT_ARGS["retries"]

    @property
    def image(self) -> str:
        return f"ml-{self.image_of or self.name}:{image_tag()}"


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("generate", mem_limit="256m", writes=(RAW,)),
        Stage(
            "preprocess",
            mem_limit="512m",
            reads=(f"{RAW}/{DAY}",),
            writes=(PROCESSED,),
        ),
        # Reads train_data.csv and writes train.csv and val.csv next to it.
        Stage("split", mem_limit="512m", writes=(f"{PROCESSED}/{DAY}",)),
        Stage(
            "train",
            mem_limit="1g",
            reads=(f"{PROCESSED}/{DAY}",),
            writes=(MODELS,),
            needs_mlflow=True,
        ),
        Stage(
            "validate",
            mem_limit="512m",
            reads=(f"{PROCESSED}/{DAY}",),
            writes=(f"{MODELS}/{DAY}",),
            needs_mlflow=True,
        ),
        # The Variable model_path may name a model directory under /data/models.
        Stage(
            "predict",
            mem_limit="512m",
            reads=(f"{RAW}/{DAY}", MODELS),
            writes=(PREDICTIONS, MODEL_CACHE),
            needs_mlflow=True,
            mlflow_read_only=True,
        ),
        Stage(
            "promote",
            mem_limit="512m",
            reads=(f"{PROCESSED}/{DAY}",),
            writes=(f"{MODELS}/{DAY}", MODEL_CACHE),
            needs_mlflow=True,
        ),
        # `ml-promote review`: a person's answer, recorded in promotion.json and MLflow.
        Stage(
            "review",
            mem_limit="256m",
            writes=(f"{MODELS}/{DAY}",),
            needs_mlflow=True,
            image_of="promote",
        ),
        # Reads the evaluated day's predictions, labels and features, the model (a directory
        # under /data/models or a registry version, downloaded to the cache) and earlier
        # reports (the chart of the last 30 days); writes monitoring/{day}/ and logs the
        # day's run to MLflow (experiment heart-disease-monitoring), as the pipeline account.
        Stage(
            "monitor",
            mem_limit="512m",
            reads=(
                f"{RAW}/{MONITORED_DAY}",
                f"{PREDICTIONS}/{MONITORED_DAY}",
                MODELS,
            ),
            writes=(MONITORING, MODEL_CACHE),
            needs_mlflow=True,
        ),
        # `ml-promote set-production`: downloads the version to check that it loads.
        Stage(
            "set-production",
            mem_limit="512m",
            writes=(MODEL_CACHE,),
            needs_mlflow=True,
            image_of="promote",
        ),
    )
}


class _HardenedAPIClient:
    """Passes every call through to docker-py's APIClient, adding the lock-down options to the
    host config that DockerOperator builds, and remembering the container's exit code."""

    def __init__(self, client: Any, extra_host_config: dict[str, Any]) -> None:
        self._client = client
        self._extra_host_config = extra_host_config
        self.exit_code: int | None = None

    def create_host_config(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        clashes = sorted(set(kwargs) & set(self._extra_host_config))
        if clashes:
            raise ValueError(
                f"DockerOperator already sets {clashes}; refusing to override them"
            )
        return self._client.create_host_config(
            *args, **kwargs, **self._extra_host_config
        )

    def wait(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result = self._client.wait(*args, **kwargs)
        self.exit_code = result.get("StatusCode")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class HardenedDockerOperator(DockerOperator):
    """DockerOperator for locked-down task containers.

    docker provider 4.6.1 has no parameter for a read-only root filesystem, dropped
    capabilities, no-new-privileges, a process limit or a hard CPU limit (its ``cpus`` only sets
    relative CPU shares). It builds the host config through ``self.cli.create_host_config``, so
    this subclass hands it a client that adds those options there, and nowhere else.

    It also refuses to run when a bind mount has no absolute host path (``ML_HOST_DATA_DIR``
    unset) or, where this container sees the data directory, when a bind's directory is
    missing (the daemon would refuse it less clearly), labels each container with the task
    that started it, fails without retries when a stage exits with a usage or bad-input status (PERMANENT_EXIT_CODES), and retries a
    failure other than a transient one (TRANSIENT_EXIT_CODE) at most OTHER_FAILURE_TRIES
    times in all.

    ``extra_arguments`` (templated) is one string split like a shell would, without a
    shell, and appended to ``command``: a Variable can carry several flags.
    """

    template_fields = (*DockerOperator.template_fields, "extra_arguments")

    def __init__(
        self,
        *,
        extra_arguments: str = "",
        read_only: bool = True,
        cap_drop: tuple[str, ...] = ("ALL",),
        no_new_privileges: bool = True,
        pids_limit: int = 256,
        cpu_limit: float = 1.0,
        tmpfs_size: str = "64m",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.extra_arguments = extra_arguments
        self.read_only = read_only
        self.cap_drop = list(cap_drop)
        self.no_new_privileges = no_new_privileges
        self.pids_limit = pids_limit
        self.cpu_limit = cpu_limit
        self.tmpfs_size = tmpfs_size

    def extra_host_config(self) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "read_only": self.read_only,
            "cap_drop": self.cap_drop,
            "security_opt": ["no-new-privileges"] if self.no_new_privileges else [],
            "pids_limit": self.pids_limit,
            "nano_cpus": round(self.cpu_limit * 1e9),
        }
        if self.read_only:
            # A scratch location for anything that insists on /tmp; the data goes to /data.
            extra["tmpfs"] = {"/tmp": f"rw,noexec,nosuid,size={self.tmpfs_size}"}
        return extra

    @cached_property
    def cli(self) -> Any:
        return _HardenedAPIClient(self.hook.api_client, self.extra_host_config())

    def execute(self, context: Context) -> Any:
        for mount in self.mounts:
            if not isinstance(mount, dict) or mount.get("Type") != "bind":
                continue
            source, target = mount.get("Source"), mount.get("Target")
            if not (source and os.path.isabs(source)):
                raise AirflowException(
                    f"bind mount for {target} has no absolute host path ({source!r}); "
                    "set ML_HOST_DATA_DIR to the data directory's absolute path on the Docker host"
                )
            if not data_dir_has(target):
                raise AirflowFailException(
                    f"{target} does not exist, so it cannot be bind-mounted into the "
                    "container: the stage before this one did not write it, or the data "
                    "directory lacks its layout (scripts/stack.sh env makes it)"
                )
        try:
            extra = shlex.split(self.extra_arguments)
        except ValueError as err:
            raise AirflowFailException(
                f"extra arguments {self.extra_arguments!r} cannot be split: {err}"
            ) from err
        if extra:
            self.command = [*self.command, *extra]
        self.labels = {
            **(self.labels or {}),
            "ml.pipeline.dag_id": self.dag_id,
            "ml.pipeline.task_id": self.task_id,
            "ml.pipeline.run_id": context["run_id"],
            "ml.pipeline.try_number": str(context["ti"].try_number),
        }
        try:
            return super().execute(context)
        except DockerContainerFailedException as err:
            code = self.cli.exit_code
            self.log.error(
                "%s exited with status %s (%s)",
                self.image,
                code,
                EXIT_MEANINGS.get(code, "failure"),
            )
            if code in PERMANENT_EXIT_CODES:
                what = "its command line" if code == 2 else "its input data or model"
                raise AirflowFailException(
                    f"{self.image} rejected {what} (exit code {code}): "
                    "not retrying; the container output above says why"
                ) from err
            tries = tries_since_cleared(context["ti"], self.retries)
            if code != TRANSIENT_EXIT_CODE and tries >= OTHER_FAILURE_TRIES:
                raise AirflowFailException(
                    f"{self.image} failed (exit code {code}) on try {tries} since the "
                    "task was last started or cleared: not retrying further"
                ) from err
            raise


def data_dir_has(target: str | None) -> bool:
    """False only when this container sees the data directory (Airflow's containers mount
    it read-only at /data) and ``target``, a path under it, is not a directory there."""
    if (
        not target
        or not target.startswith(f"{DATA_DIR}/")
        or not os.path.isdir(DATA_DIR)
    ):
        return True
    return os.path.isdir(target)


def data_mounts(stage: Stage) -> list[Mount]:
    """The binds of a stage's container: what it reads read-only, what it writes
    read-write, each at its own path under /data (templated, rendered when the task runs)."""
    host = host_data_dir()
    return [
        Mount(
            target=f"{DATA_DIR}/{path}",
            source=f"{host}/{path}" if host else "",
            type="bind",
            read_only=read_only,
        )
        for paths, read_only in ((stage.reads, True), (stage.writes, False))
        for path in paths
    ]


def tries_since_cleared(ti: Any, retries: int) -> int:
    """How many tries the task has had in its current round: a cleared task keeps counting
    its try numbers, and Airflow then gives it ``retries`` more tries beyond the ones it has
    had (``max_tries`` moves up), so the round started at try ``max_tries - retries + 1``."""
    return ti.try_number - max(ti.max_tries - retries, 0)


def stage_task(
    stage_name: str,
    arguments: list[str],
    *,
    task_id: str | None = None,
    extra_arguments: str = "",
    **kwargs: Any,
) -> HardenedDockerOperator:
    """A task that runs one stage binary with ``arguments`` (templated) in its own container,
    followed by the flags in ``extra_arguments`` (templated, split like a shell would)."""
    stage = STAGES[stage_name]
    network = task_network() if stage.needs_mlflow else None
    return HardenedDockerOperator(
        task_id=task_id or stage.name,
        image=stage.image,
        command=arguments,
        extra_arguments=extra_arguments,
        docker_url=docker_url(),
        mounts=data_mounts(stage),
        mount_tmp_dir=False,
        auto_remove="success",
        user=task_user(),
        mem_limit=stage.mem_limit,
        network_mode=network or "none",
        environment=mlflow_environment() if network else {},
        private_environment=mlflow_credentials(stage) if network else {},
        execution_timeout=timedelta(minutes=30),
        retries=stage.retries,
        **kwargs,
    )


def mlflow_environment() -> dict[str, str]:
    """What a stage that talks to MLflow is given: the server and the model cache."""
    return {"MLFLOW_TRACKING_URI": MLFLOW_URL, "ML_MODEL_CACHE": MODEL_CACHE_DIR}


def mlflow_credentials(stage: Stage) -> dict[str, str]:
    """A stage's account on MLflow's basic-auth app, when the stack sets one, under MLflow's
    own variable names: ``ML_TASK_MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` (the
    pipeline's account), or ``ML_TASK_PREDICT_MLFLOW_TRACKING_*`` for a stage that only
    reads the registry. A read-only stage never falls back to the pipeline's account: with
    its own unset it gets none. Passed as DockerOperator's ``private_environment``: not
    templated, so it never shows in the UI's rendered fields."""
    prefix = "ML_TASK_PREDICT_" if stage.mlflow_read_only else "ML_TASK_"
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    return {
        name: os.environ[f"{prefix}{name}"]
        for name in names
        if os.environ.get(f"{prefix}{name}")
    }


def wait_for_file(task_id: str, filepath: str) -> FileSensor:
    """A sensor that frees its worker slot while it waits: it defers to the triggerer, which
    sees the same /data as the workers."""
    return FileSensor(
        task_id=task_id,
        filepath=filepath,
        fs_conn_id=FS_CONN_ID,
        deferrable=True,
        poke_interval=30,
        timeout=int(timedelta(hours=6).total_seconds()),
    )
