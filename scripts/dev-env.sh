#!/usr/bin/env bash
# Creates (or refreshes) the host virtualenv .venv with the test tooling pinned in
# requirements-dev.lock. uv installs the ~200 locked packages in well under a minute;
# it comes from PyPI like everything else.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "dev-env: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/pip install -q uv==0.13.9
fi
stamp=.venv/.lock-sha
want=$(sha256sum requirements-dev.lock | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "dev-env: installing requirements-dev.lock"
  VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip sync -q requirements-dev.lock
  echo "$want" >"$stamp"
fi
echo "dev-env: ready ($(.venv/bin/python -c 'import airflow; print("airflow", airflow.__version__)'))"
