"""One-shot set-up of the Airflow metadata database, run by the airflow-init service.

1. ``airflow db migrate`` (creates or upgrades the schema, FAB's tables included);
2. ``airflow users create`` for the admin (a no-op when the user exists);
3. the Airflow Variables ``model_path`` (from ``_ML_MODEL_PATH``, default the registry's
   production alias) and ``promotion_mode`` (from ``_ML_PROMOTION_MODE``, default
   ``auto``), each only when absent, because a person may have changed them since.

All three run in this one process through Airflow's own CLI parser: each separate
``airflow`` command would spend several seconds importing Airflow again, and this
step gates the start of every other Airflow service.
"""

import os
import sys
import time

from airflow.cli.cli_parser import get_parser


def airflow(*argv: str) -> None:
    args = get_parser().parse_args(list(argv))
    args.func(args)


def main() -> None:
    start = time.monotonic()
    airflow("db", "migrate")

    username = os.environ["_AIRFLOW_ADMIN_USERNAME"]
    airflow(
        "users",
        "create",
        "--role",
        "Admin",
        "--username",
        username,
        "--password",
        os.environ["_AIRFLOW_ADMIN_PASSWORD"],
        "--firstname",
        "Pipeline",
        "--lastname",
        "Admin",
        "--email",
        f"{username}@example.invalid",
    )

    # Imported after the migration: the model needs the configured database.
    from airflow.models.variable import Variable

    defaults = {
        "model_path": os.environ.get("_ML_MODEL_PATH")
        or "models:/heart-disease-classifier@production",
        "promotion_mode": os.environ.get("_ML_PROMOTION_MODE") or "auto",
    }
    for key, value in defaults.items():
        if Variable.get(key, default_var=None) is None:
            Variable.set(key, value)
            print(f"airflow-init: Variable {key} = {value}")
        else:
            print(f"airflow-init: Variable {key} kept")
    # Once per start, whether failures reach a person: the same check as the DAGs' callback
    # (airflow_ml_dags/dags/alerts.py, mounted with the DAG folder).
    sys.path.insert(0, os.path.join(os.environ["AIRFLOW_HOME"], "dags"))
    from alerts import startup_message

    print(f"airflow-init: {startup_message()}")
    print(f"airflow-init: done in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
