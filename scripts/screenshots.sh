#!/usr/bin/env bash
# Regenerates the README's pictures, docs/screenshots/*.png, with a real browser.
#
#   scripts/screenshots.sh        (make screenshots)
#
# Runs tests/system/test_screenshots.py on its own: the test starts the compose stack under
# the test project (own ports, data dir and secrets; see tests/system/conftest.py), runs
# every DAG for one day, drives headless Chromium through the login, the DAG list and each
# DAG's graph, checks that the runs shown succeeded, saves the PNGs here and tears the
# stack down. The images must be built (scripts/images.sh); Chromium and its driver come
# from Debian's packages (scripts/install-browser.sh, run first).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-browser.sh
scripts/dev-env.sh >/dev/null
mkdir -p docs/screenshots
ML_SCREENSHOTS_DIR="$PWD/docs/screenshots" .venv/bin/pytest -q -s tests/system/test_screenshots.py
ls -l docs/screenshots/*.png
