#!/usr/bin/env bash
# Runs the whole chain for one date with the release binaries, no Docker and no Airflow:
#   generate -> preprocess -> split -> train -> validate -> predict
# Usage: scripts/pipeline-local.sh [YYYY-MM-DD] [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

ds="${1:-$(date -u +%F)}"
data="${2:-${ML_DATA_DIR:-./data}}"
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release"

for stage in generate preprocess split train validate predict; do
  [ -x "$bin/ml-$stage" ] || { echo "error: $bin/ml-$stage not built; run 'make build'" >&2; exit 1; }
done

step() { echo "==> $*" >&2; "$@"; }
step "$bin/ml-generate"   --output-dir "$data/raw/$ds" --date "$ds"
step "$bin/ml-preprocess" --input-dir "$data/raw/$ds" --output-dir "$data/processed/$ds"
step "$bin/ml-split"      --input-dir "$data/processed/$ds" --output-dir "$data/processed/$ds"
step "$bin/ml-train"      --input-dir "$data/processed/$ds" --output-dir "$data/models/$ds"
step "$bin/ml-validate"   --input-dir "$data/processed/$ds" --model-dir "$data/models/$ds"
step "$bin/ml-predict"    --input-dir "$data/raw/$ds" --model "$data/models/$ds" --output-dir "$data/predictions/$ds"
echo "done: $data/predictions/$ds/predictions.csv ($(($(wc -l <"$data/predictions/$ds/predictions.csv") - 1)) rows), metrics in $data/models/$ds/metrics.json" >&2
