"""One-shot set-up of MLflow's users, run by the mlflow-init service once MLflow is healthy.

The basic-auth app creates only its admin. The pipeline's stages get an account of their
own (``MLFLOW_PIPELINE_USERNAME``), never the admin's: it may create experiments, runs and
registered models and manages what it creates, but it cannot manage users. The predict
task gets another (``MLFLOW_PREDICT_USERNAME``) that can only read. The passwords
come from the stack's env file; when an account exists its password is set again, so a
rotated secret in .env takes effect on the next start.

Standard library only: it runs in the MLflow image but talks to the server over HTTP.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

BASE = os.environ.get("MLFLOW_URL", "http://mlflow:5000").rstrip("/")


def call(method: str, endpoint: str, body: dict | None = None) -> tuple[int, dict]:
    """One REST call as the admin; (status, JSON answer)."""
    user = os.environ["MLFLOW_AUTH_ADMIN_USERNAME"]
    password = os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"]
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    url = f"{BASE}/api/2.0/mlflow/{endpoint}"
    data = None
    if method == "GET" and body:
        url += "?" + urllib.parse.urlencode(body)
    elif body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, {"message": text}


def ensure_user(role: str) -> bool:
    """Creates the account ``MLFLOW_<ROLE>_USERNAME``, or sets its password again."""
    username = os.environ[f"MLFLOW_{role}_USERNAME"]
    password = os.environ[f"MLFLOW_{role}_PASSWORD"]
    status, answer = call("GET", "users/get", {"username": username})
    if status == 200:
        status, answer = call(
            "PATCH", "users/update-password", {"username": username, "password": password}
        )
        action = "password set"
    elif status == 404:
        status, answer = call(
            "POST", "users/create", {"username": username, "password": password}
        )
        action = "created"
    if status != 200:
        print(
            f"mlflow-init: error: user {username}: HTTP {status} from {BASE}: "
            f"{answer.get('error_code', '')} {answer.get('message', '')}".rstrip(),
            file=sys.stderr,
        )
        return False
    print(f"mlflow-init: user {username} {action}")
    return True


def main() -> int:
    # PIPELINE: the stages that train, validate and promote; it creates the experiment and
    # the registered model, so it manages them. PREDICT: the predict task's account; it
    # creates nothing and is granted nothing, so it has only default_permission (READ,
    # basic_auth.ini) on what PIPELINE made: it can resolve an alias and download a
    # version, but not move an alias or create a version.
    return 0 if all([ensure_user("PIPELINE"), ensure_user("PREDICT")]) else 1


if __name__ == "__main__":
    sys.exit(main())
