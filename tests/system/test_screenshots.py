"""Screenshots of the running system, taken by a real browser after successful runs.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``; scripts/install-browser.sh)
logs in to the session stack's UI with the generated credentials on FAB's login page, opens
the DAG list and the graph of one successful run of each DAG, checks on the page that the
runs shown succeeded, and saves a 1280x800 PNG of each view.

The PNGs go to ``ML_SCREENSHOTS_DIR`` when it is set (scripts/screenshots.sh sets it to
docs/screenshots, the README's pictures), else to a temporary directory, so ``make test``
leaves the work tree alone.

The runs: every DAG for the last Sunday, with that day's model as the production model
(pipeline_runs.pipeline_day). They are adopted when an earlier test already made them, and
they are the latest runs, so the DAG list shows them.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from browser import HEIGHT, chromium, page_size
from conftest import Stack
from pipeline_runs import (
    DAG_IDS,
    AirflowClient,
    pipeline_day,
    run_green,
    training_day,
)
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

DAY = training_day()
PAGE_TIMEOUT = 60


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("ML_SCREENSHOTS_DIR")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def ui_url(stack: Stack) -> str:
    """The UI as a person opens it: Airflow's [api] base_url (stack.sh env), which is also
    what the alerts link to."""
    values = dict(
        line.split("=", 1)
        for line in stack.env_file.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return values["AIRFLOW_BASE_URL"].rstrip("/")


@pytest.fixture(scope="module")
def runs(stack: Stack) -> dict[str, dict]:
    airflow = AirflowClient(stack.airflow_url, stack.username, stack.password)
    airflow.wait_for_dags(DAG_IDS)
    runs = pipeline_day(airflow, DAY)
    # Judges DAY, the day before it (label delay 1): its predictions are in by now.
    runs["monitor_model"] = run_green(airflow, "monitor_model", DAY + timedelta(days=1))
    return runs


def wait_for(driver: webdriver.Chrome, condition, what: str):
    try:
        return WebDriverWait(driver, PAGE_TIMEOUT, poll_frequency=0.5).until(condition)
    except TimeoutException:
        pytest.fail(
            f"{what} did not show within {PAGE_TIMEOUT} s on {driver.current_url}"
        )


def log_in(driver: webdriver.Chrome, ui_url: str, stack: Stack) -> None:
    driver.get(f"{ui_url}/")
    wait_for(
        driver,
        ec.presence_of_element_located((By.NAME, "username")),
        "FAB's login form",
    )
    driver.find_element(By.NAME, "username").send_keys(stack.username)
    driver.find_element(By.NAME, "password").send_keys(stack.password)
    driver.find_element(By.CSS_SELECTOR, "[type=submit]").click()
    wait_for(
        driver, lambda d: "/auth/login" not in d.current_url, "the page after login"
    )


def states(driver: webdriver.Chrome, css: str) -> list[str]:
    """The states shown by the state badges under ``css`` (the badge's label or text)."""
    return [
        (badge.get_attribute("aria-label") or badge.text).strip().lower()
        for badge in driver.find_elements(
            By.CSS_SELECTOR, f"{css} [data-testid=state-badge]"
        )
    ]


def save(driver: webdriver.Chrome, path: Path) -> None:
    # Let the graph's fit-to-view animation and the last requests settle.
    time.sleep(1.5)
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    print(f"saved {path}")


def test_screenshots_of_successful_runs(
    stack: Stack,
    browser: webdriver.Chrome,
    ui_url: str,
    runs: dict[str, dict],
    shots_dir: Path,
) -> None:
    for dag_id, run in runs.items():
        assert run["state"] == "success", (dag_id, run["state"])

    log_in(browser, ui_url, stack)

    # The DAG list: every DAG with a successful latest run. A scheduled run the unpausing
    # started may still be finishing: reload until the list shows every run green.
    def list_all_green(driver: webdriver.Chrome) -> bool:
        driver.get(f"{ui_url}/dags")
        try:
            WebDriverWait(driver, 15).until(
                lambda d: len(states(d, "[data-testid=latest-run]")) >= len(DAG_IDS)
            )
        except TimeoutException:
            return False
        # set_production has a latest run only once someone rolled back (test_rollout.py).
        shown = states(driver, "[data-testid=latest-run]")
        return len(shown) >= len(DAG_IDS) and set(shown) == {"success"}

    wait_for(browser, list_all_green, "a successful latest run of every DAG")
    body = browser.find_element(By.TAG_NAME, "body").text
    for dag_id in DAG_IDS:
        assert dag_id in body
    save(browser, shots_dir / "dag-list.png")

    # Each DAG's graph for its run, every task green. The UI keeps the chosen view (grid or
    # graph) in the browser's local storage.
    browser.execute_script(
        "window.localStorage.setItem('default_dag_view', '\"graph\"')"
    )
    for dag_id, run in runs.items():
        browser.get(f"{ui_url}/dags/{dag_id}/runs/{quote(run['dag_run_id'], safe='')}")
        # What the API says of each task (success; skipped for train_model's approval in
        # auto mode) is what the graph must show.
        expected = sorted(
            ti["state"]
            for ti in AirflowClient(
                stack.airflow_url, stack.username, stack.password
            ).task_instances(dag_id, run["dag_run_id"])
        )
        tasks = len(expected)
        wait_for(
            browser,
            lambda d, n=tasks: len(states(d, ".react-flow__node")) == n,
            f"the {tasks} tasks of {dag_id}'s graph",
        )
        assert sorted(states(browser, ".react-flow__node")) == expected
        assert set(expected) <= {"success", "skipped"}, expected
        save(browser, shots_dir / f"graph-{dag_id}.png")


def test_mlflow_ui_shows_the_run_and_the_registry(
    stack: Stack,
    browser: webdriver.Chrome,
    runs: dict[str, dict],
    shots_dir: Path,
) -> None:
    """MLflow's UI, signed in (basic auth on every request the page makes): the training
    run in the experiment heart-disease, and the registered model with its production
    alias."""
    api = stack.mlflow_api()
    user, password = api.auth
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders",
        {"headers": {"Authorization": f"Basic {token}"}},
    )
    try:
        experiment = api.get(
            f"{stack.mlflow_url}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": "heart-disease"},
            timeout=30,
        ).json()["experiment"]["experiment_id"]

        def body(driver: webdriver.Chrome) -> str:
            return driver.find_element(By.TAG_NAME, "body").text

        # The runs of the experiment in the model-training view. ml-train tags the experiment
        # so (mlflow.experimentKind); the parameter keeps the address explicit all the same.
        browser.get(
            f"{stack.mlflow_url}/#/experiments/{experiment}/runs"
            "?workflowType=machine_learning"
        )
        wait_for(
            browser,
            lambda d: f"train-{DAY.isoformat()}" in body(d),
            "the training run in MLflow's run list",
        )
        save(browser, shots_dir / "mlflow-runs.png")

        browser.get(f"{stack.mlflow_url}/#/models/heart-disease-classifier")
        wait_for(
            browser,
            lambda d: "production" in body(d),
            "the registered model's production alias",
        )
        save(browser, shots_dir / "mlflow-registry.png")
    finally:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})


def test_approval_page_and_rollback_form(
    stack: Stack,
    browser: webdriver.Chrome,
    ui_url: str,
    runs: dict[str, dict],
    shots_dir: Path,
) -> None:
    """The approval page of a manual-mode train_model run waiting for a person (the
    comparison and the Approve / Reject buttons), and the trigger form of set_production.
    The approval is then rejected through the REST API, so the run finishes."""
    airflow = AirflowClient(stack.airflow_url, stack.username, stack.password)
    day = DAY - timedelta(days=42)
    run_green(airflow, "generate_data", day)
    run = airflow.open_approval(day, 900)
    try:
        # The browser may have left Airflow's UI (MLflow's pages) but keeps its session.
        browser.get(f"{ui_url}/dags")
        time.sleep(2)
        if browser.find_elements(By.NAME, "username"):
            log_in(browser, ui_url, stack)
        browser.get(
            airflow.required_actions_url(
                ui_url, "train_model", run["dag_run_id"], "approval"
            )
        )

        def body(driver: webdriver.Chrome) -> str:
            return driver.find_element(By.TAG_NAME, "body").text

        wait_for(
            browser,
            lambda d: "ROC AUC" in body(d) and "Approve" in body(d),
            "the approval page with the comparison and its buttons",
        )
        assert f"trained on {day.isoformat()}" in body(browser)
        # The comparison, the form and its buttons are one long column: a taller page.
        page_size(browser, HEIGHT * 2)
        try:
            save(browser, shots_dir / "approval.png")
        finally:
            page_size(browser, HEIGHT)

        browser.get(f"{ui_url}/dags/set_production")
        trigger = wait_for(
            browser,
            ec.element_to_be_clickable(
                (By.XPATH, "//button[normalize-space()='Trigger']")
            ),
            "set_production's Trigger button",
        )
        trigger.click()
        wait_for(
            browser,
            lambda d: "Model version" in body(d) and "Reason" in body(d),
            "set_production's trigger form with its params",
        )
        save(browser, shots_dir / "set-production-form.png")
    finally:
        airflow.answer(
            "train_model",
            run["dag_run_id"],
            "approval",
            "Reject",
            {"comment": "screenshot only"},
        )
        key = ("train_model", run["dag_run_id"])
        assert airflow.wait_for_runs([key], 900)[key]["state"] == "success"
