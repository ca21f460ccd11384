#!/usr/bin/env bash
# Runs a command with a throwaway, real MLflow server on loopback, for the Rust tests that
# talk to MLflow (the `mlflow_*` test targets, `test = false` in their Cargo.toml):
#
#   scripts/mlflow-test-server.sh cargo test --release --workspace --test 'mlflow_*'
#
# The server is the same MLflow as the stack's image (images/mlflow/requirements.lock),
# installed once into build/mlflow-test/venv. Each call gets a fresh sqlite store and
# artifact directory under a temp dir, an unused port, and exports MLFLOW_TEST_URI to the
# command. The server is stopped and the temp dir removed when the command ends, also when
# it fails or is interrupted; the command's exit status is returned.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi

lock=images/mlflow/requirements.lock
venv=build/mlflow-test/venv
py="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "mlflow-test-server: creating $venv with $($py --version)" >&2
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv"
fi
if [ ! -x "$venv/bin/uv" ]; then
  "$venv/bin/pip" install -q uv==0.13.9
fi
stamp="$venv/.lock-sha"
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "mlflow-test-server: installing $lock" >&2
  VIRTUAL_ENV="$PWD/$venv" "$venv/bin/uv" pip sync -q "$lock"
  echo "$want" >"$stamp"
fi

# A migrated, empty database, made once per lock: fresh sqlite stores otherwise spend a
# good part of the server's start-up replaying MLflow's schema migrations.
template="build/mlflow-test/empty-$want.db"
if [ ! -f "$template" ]; then
  echo "mlflow-test-server: creating the empty database template" >&2
  rm -f build/mlflow-test/empty-*.db
  "$venv/bin/python" - "$PWD/$template.tmp" <<'PY'
import sys
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

uri = "sqlite:///" + sys.argv[1]
# What `mlflow server --serve-artifacts` gives the Default experiment, so it proxies too.
TrackingStore(uri, "mlflow-artifacts:/")
RegistryStore(uri)
PY
  mv "$template.tmp" "$template"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mlflow-test.XXXXXX")
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
uri="http://127.0.0.1:$port"
log="$work/server.log"

server_pid=""
# shellcheck disable=SC2329  # invoked by the EXIT trap below
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    # The server runs in its own process group (setsid): stop the whole group, so no
    # gunicorn/uvicorn worker outlives the test run.
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "$template" "$work/mlflow.db"
echo "mlflow-test-server: starting MLflow $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))') on $uri" >&2
setsid "$venv/bin/mlflow" server \
  --host 127.0.0.1 --port "$port" --workers 1 \
  --backend-store-uri "sqlite:///$work/mlflow.db" \
  --artifacts-destination "$work/artifacts" \
  --serve-artifacts \
  >"$log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 120))
until "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)' "$uri" 2>/dev/null; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "mlflow-test-server: the server exited during startup; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "mlflow-test-server: no answer from $uri/health within 120 s; the server log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "mlflow-test-server: healthy after ${SECONDS}s; running: $*" >&2

status=0
MLFLOW_TEST_URI="$uri" "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "mlflow-test-server: command failed ($status); last lines of the server log:" >&2
  tail -n 40 "$log" >&2
fi
exit "$status"
