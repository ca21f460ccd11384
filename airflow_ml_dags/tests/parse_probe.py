"""Parses one DAG file in a fresh interpreter and reports, as JSON, how long it took and
whether it touched the network or a database. Run by test_dag_integrity.py; kept as a file
(not an inline string) so that it can also be run by hand:

    .venv/bin/python airflow_ml_dags/tests/parse_probe.py airflow_ml_dags/dags/predict.py
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

# Events that mean "talks to something": a connection attempt, a name lookup or a database.
WATCHED = ("socket.connect", "socket.getaddrinfo", "sqlite3.connect")


def parse(path: Path) -> float:
    spec = importlib.util.spec_from_file_location(f"dagfile_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    start = time.perf_counter()
    spec.loader.exec_module(module)
    return time.perf_counter() - start


def main() -> None:
    path = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(path.parent))

    start = time.perf_counter()
    import airflow.sdk

    airflow_import = time.perf_counter() - start

    # The operator modules the DAG files use, which every DAG file of any deployment pays
    # for once per process; reported, not part of the file's own budget. (trigger_dagrun
    # imports Airflow's ORM models, some 0.3 s in a fresh interpreter; the dag processor has
    # them loaded already, and there it takes some 20 ms.)
    start = time.perf_counter()
    import airflow.providers.docker.operators.docker
    import airflow.providers.standard.operators.hitl
    import airflow.providers.standard.operators.python
    import airflow.providers.standard.operators.trigger_dagrun
    import airflow.providers.standard.sensors.filesystem  # noqa: F401

    providers_import = time.perf_counter() - start

    # Airflow imports its scheduling machinery (timetables, croniter) lazily, the first time a
    # DAG with a schedule is built: do that with an empty DAG so that the figure below is the
    # cost of our file and not of Airflow's first DAG.
    from datetime import UTC, datetime

    from airflow.sdk import DAG

    start = time.perf_counter()
    DAG("warm_up", schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=UTC))
    warm_up = time.perf_counter() - start

    events: list[str] = []
    sys.addaudithook(
        lambda event, args: event in WATCHED and events.append(f"{event} {args!r:.200}")
    )

    # First parse: the DAG file, including its import of common.py.
    first = parse(path)
    # Second parse: the DAG file alone, as on every re-parse by a warm process.
    again = parse(path)
    print(
        json.dumps(
            {
                "file": path.name,
                "airflow_import_s": airflow_import,
                "providers_import_s": providers_import,
                "airflow_first_dag_s": warm_up,
                "first_parse_s": first,
                "reparse_s": again,
                "events": events,
            }
        )
    )


if __name__ == "__main__":
    main()
