"""The monitoring loop on the real stack: an old production model decays on the labels that
arrive, monitor_model finds it, a retraining starts by itself, the gate promotes the new
model, and live ROC AUC recovers.

Runs after test_drills.py (file order) on the same drill stack. Dates are fixed, not
relative to today: the generated data is a pure function of the date, so the outcome is
the same on every run (and the days lie outside the ones the other drills use; checked).

1. **The old model.** ``train_model`` trains on MODEL_DAY (January) through Airflow, and
   ``set_production`` pins that version as production, as a person rolling back would.
2. **The months, prepared directly.** For every day from MODEL_DAY to the day before
   DECAY_DAY (but the days the other drills use), the stage binaries themselves (``ml-generate``, ``ml-predict`` with the
   January model's directory, ``ml-monitor`` without MLflow; no Airflow) write the day's
   data, predictions and report, as the issue allows: they are the history the charts read,
   and they show the decay building up over the months.
3. **The days that decide, through Airflow.** ``predict`` scores DECAY_DAY with the
   production version, ``monitor_model`` (label delay 1) judges it ``decay``, alerts a real
   receiver and starts the ``train_model`` run ``retrain__DECAY_DAY``, which trains on
   that day and goes through the normal gate (auto mode) to production. ``predict`` and
   ``monitor_model`` then run the RECOVERY_DAYS with the new model.

The prepared days evaluate the model *directory*, the Airflow days the registry *version*;
the retraining cooldown counts only decays of the same version, so the prepared history
does not hold back the retraining of DECAY_DAY.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from datetime import date, timedelta
from pathlib import Path

from alert_channel import Receiver
from browser import chromium, full_page_png
from conftest import REPO, Stack
from faults import drill
from loop_chart import timeline_svg
from pipeline_runs import AirflowClient, run_green, training_day, version_tags
from test_drills import BAD_DAYS, DAYS, give_to_task_user

MODEL_DAY = date(2026, 1, 4)
DECAY_DAY = date(2026, 11, 2)
RECOVERY_DAYS = [date(2026, 11, 3), date(2026, 11, 4)]
HISTORY = [
    MODEL_DAY + timedelta(days=n) for n in range(1, (DECAY_DAY - MODEL_DAY).days)
]
PRODUCTION_URI = "models:/heart-disease-classifier@production"
RUN_TIMEOUT = 900
BIN_DIR = Path(
    os.environ.get("STAGE_BIN_DIR")
    or Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    / "x86_64-unknown-linux-gnu"
    / "release"
)


def stage(name: str, *args: str | Path) -> None:
    """A stage binary of this build, on the host, as scripts/pipeline-local.sh runs it."""
    done = subprocess.run(
        [str(BIN_DIR / f"ml-{name}"), "--quiet", *map(str, args)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        check=False,
    )
    assert done.returncode == 0, f"ml-{name} {args}: {done.stderr.strip()}"


def report(stack: Stack, day: date) -> dict:
    return json.loads(
        (stack.data_dir / "monitoring" / day.isoformat() / "report.json").read_text()
    )


def production(stack: Stack) -> str:
    answer = stack.mlflow_rest(
        "GET",
        "registered-models/alias",
        name="heart-disease-classifier",
        alias="production",
    )
    return answer["model_version"]["version"]


def run_all(airflow: AirflowClient, dag_id: str, days: list[date]) -> None:
    airflow.set_paused(dag_id, False)
    keys = [(dag_id, airflow.ensure_run(dag_id, day)["dag_run_id"]) for day in days]
    final = airflow.wait_for_runs(keys, RUN_TIMEOUT)
    states = {run_id: run["state"] for (_, run_id), run in final.items()}
    assert set(states.values()) == {"success"}, states


def test_decay_is_found_retrained_and_recovers(
    stack: Stack, airflow: AirflowClient, receiver: Receiver
) -> None:
    with drill(
        "monitoring loop",
        f"the January model decays by {DECAY_DAY}: monitor_model says decay, alerts, "
        "retrains on that day by itself; the gate promotes; live ROC AUC recovers",
    ) as row:
        # The days the other drills use (relative to today) stay theirs: the history
        # leaves them out (a gap in its chart); the days that decide must be free.
        used = {*DAYS, *BAD_DAYS.values()}
        mine = {MODEL_DAY, DECAY_DAY, *RECOVERY_DAYS}
        assert not used & mine, f"move this drill's dates: {sorted(used & mine)}"
        history_days = [day for day in HISTORY if day not in used]
        airflow.set_variable("model_path", PRODUCTION_URI)
        airflow.set_variable("promotion_mode", "auto")
        airflow.set_variable("label_delay_days", "1")

        # 1. The January model, pinned as production.
        raw = stack.data_dir / "raw"
        for day in [MODEL_DAY, *history_days, DECAY_DAY, *RECOVERY_DAYS]:
            stage("generate", "--output-dir", raw / day.isoformat(), "--date", day)
        # train_model runs one at a time: its scheduled run of the last Sunday (made when
        # the DAG was unpaused) must not wait for data nobody generates. Earlier drills
        # generated that day; on its own, this drill does.
        sunday = raw / training_day().isoformat()
        if not (sunday / "target.csv").exists():
            stage("generate", "--output-dir", sunday, "--date", training_day())
        give_to_task_user(stack, raw)
        run_green(airflow, "train_model", MODEL_DAY)
        model_dir = stack.data_dir / "models" / MODEL_DAY.isoformat()
        old = json.loads((model_dir / "promotion.json").read_text())["version"]
        airflow.set_paused("set_production", False)
        pinned = airflow.request(
            "POST",
            "/dags/set_production/dagRuns",
            {
                "logical_date": None,
                "conf": {"version": int(old), "reason": "drill: pin the January model"},
            },
        )
        key = ("set_production", pinned["dag_run_id"])
        assert airflow.wait_for_runs([key], RUN_TIMEOUT)[key]["state"] == "success"
        assert production(stack) == old
        row.observe(f"version {old} (trained on {MODEL_DAY}) is production")

        # 2. The months before DECAY_DAY, with the stage binaries directly.
        for day in history_days:
            d = day.isoformat()
            stage(
                "predict",
                "--input-dir",
                raw / d,
                "--model",
                model_dir,
                "--output-dir",
                stack.data_dir / "predictions" / d,
            )
            stage(
                "monitor",
                "--predictions-dir",
                stack.data_dir / "predictions" / d,
                "--labels-dir",
                raw / d,
                "--output-dir",
                stack.data_dir / "monitoring" / d,
            )
        give_to_task_user(stack, stack.data_dir / "predictions")
        give_to_task_user(stack, stack.data_dir / "monitoring")
        history = {day: report(stack, day) for day in history_days}
        first_decay = min(d for d, r in history.items() if r["verdict"] == "decay")
        monthly = {}
        for day, r in history.items():
            monthly.setdefault(day.strftime("%Y-%m"), []).append(
                r["quality"]["roc_auc"]
            )
        table = ", ".join(
            f"{m} {statistics.mean(v):.3f}" for m, v in sorted(monthly.items())
        )
        row.observe(
            f"prepared {len(history_days)} days (left to the other drills: "
            f"{len(HISTORY) - len(history_days)}); monthly live ROC AUC of version {old}: "
            f"{table}; first decay verdict on {first_decay}"
        )
        validation = history[history_days[0]]["model"]["validation_roc_auc"]

        # 3. The decisive day through Airflow.
        run_all(airflow, "predict", [DECAY_DAY])
        run_all(airflow, "monitor_model", [DECAY_DAY + timedelta(days=1)])
        decayed = report(stack, DECAY_DAY)
        assert decayed["verdict"] == "decay", decayed["reasons"]
        assert decayed["model"]["version"] == old
        row.observe(
            f"{DECAY_DAY}: decay, live ROC AUC {decayed['quality']['roc_auc']:.4f} vs "
            f"validation {validation:.4f}: {decayed['reasons'][0]}"
        )
        alerts = [
            a
            for a in receiver.alerts()
            if "monitor_model.alert found the model decaying" in a["payload"]["title"]
        ]
        assert len(alerts) == 1, receiver.alerts()
        message = alerts[0]["payload"]["message"]
        assert f"/data/monitoring/{DECAY_DAY}/report.html" in message, message
        assert f"version {old}" in message, message

        retrain_id = f"retrain__{DECAY_DAY}"
        key = ("train_model", retrain_id)
        retrained = airflow.wait_for_runs([key], RUN_TIMEOUT)[key]
        assert retrained["state"] == "success", retrained
        assert retrained["logical_date"].startswith(DECAY_DAY.isoformat())
        decision = json.loads(
            (
                stack.data_dir / "models" / DECAY_DAY.isoformat() / "promotion.json"
            ).read_text()
        )
        assert decision["outcome"] == "promoted", decision
        new = decision["version"]
        assert production(stack) == new != old
        assert version_tags(stack, new)["promotion.outcome"] == "promoted"
        row.observe(
            f"run {retrain_id} trained on {DECAY_DAY}; version {new} promoted: "
            f"{decision['reason']}"
        )

        # 4. The days after, scored and judged with the new production model.
        run_all(airflow, "predict", RECOVERY_DAYS)
        # One after the other: each report's chart reads the reports before it.
        for day in RECOVERY_DAYS:
            run_all(airflow, "monitor_model", [day + timedelta(days=1)])
        after = [report(stack, day) for day in RECOVERY_DAYS]
        for day, r in zip(RECOVERY_DAYS, after, strict=True):
            assert r["model"]["version"] == new, r["model"]
            assert r["verdict"] != "decay", (day, r["reasons"])
            assert r["quality"]["roc_auc"] > decayed["quality"]["roc_auc"], (day, r)
        row.observe(
            "after: "
            + ", ".join(
                f"{d} {r['verdict']} ROC AUC {r['quality']['roc_auc']:.4f} "
                f"(validation {r['model']['validation_roc_auc']:.4f})"
                for d, r in zip(RECOVERY_DAYS, after, strict=True)
            )
        )

        # The months in one chart, and the last report's own page.
        points = {
            day: (r["quality"]["roc_auc"], r["model"]["validation_roc_auc"])
            for day, r in {
                **history,
                DECAY_DAY: decayed,
                **dict(zip(RECOVERY_DAYS, after, strict=True)),
            }.items()
        }
        marks = {
            first_decay: f"first decay verdict {first_decay:%m-%d}",
            DECAY_DAY: f"{DECAY_DAY:%m-%d}: decay, retrained, v{new} promoted",
        }
        target = os.environ.get("ML_SCREENSHOTS_DIR")
        shots = Path(target) if target else Path(tempfile.mkdtemp(prefix="shots-"))
        shots.mkdir(parents=True, exist_ok=True)
        (shots / "monitoring-loop.svg").write_text(timeline_svg(points, marks))
        html = stack.data_dir / "monitoring" / RECOVERY_DAYS[-1].isoformat()
        with chromium() as driver:
            full_page_png(
                driver, f"file://{html}/report.html", shots / "monitoring-report.png"
            )
        row.observe(f"screenshot {shots / 'monitoring-report.png'}")
