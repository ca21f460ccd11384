#!/usr/bin/env bash
# Speed and memory of the model stages on large inputs (release binaries), printing figures:
#   train (logistic regression) on TRAIN_ROWS rows, validate, predict on PREDICT_ROWS rows.
# Targets (issue 2, 2-core machine): train 1,000,000 rows < 10 s; predict >= 1,000,000 rows/s
# end to end with peak memory < 512 MB at 10,000,000 rows.
# Usage: scripts/bench_model.sh   (env: TRAIN_ROWS, PREDICT_ROWS, BENCH_DIR, KEEP=1)
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release"
train_rows="${TRAIN_ROWS:-1000000}"
predict_rows="${PREDICT_ROWS:-10000000}"
work="${BENCH_DIR:-$(mktemp -d /tmp/ml-bench.XXXXXX)}"
ds=2026-01-05
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

for stage in generate preprocess split train validate predict; do
  [ -x "$bin/ml-$stage" ] || { echo "error: $bin/ml-$stage not built; run 'make build'" >&2; exit 1; }
done

# Runs a command quietly and prints: label, rows, seconds, rows/s, peak RSS.
measure() {
  local label="$1" rows="$2"
  shift 2
  local out
  out="$(/usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -n 1)"
  local secs="${out% *}" kib="${out#* }"
  awk -v l="$label" -v r="$rows" -v s="$secs" -v k="$kib" 'BEGIN {
    rate = (s > 0) ? r / s : 0
    printf "%-34s %12d rows %8.2f s %12.0f rows/s %8.1f MB peak\n", l, r, s, rate, k / 1024
  }'
}

# Training input: raw rows such that the 80% train split holds train_rows rows.
raw_rows=$(( train_rows * 5 / 4 ))
echo "preparing $raw_rows raw rows in $work ..." >&2
"$bin/ml-generate" --output-dir "$work/raw/$ds" --date "$ds" --rows "$raw_rows" >/dev/null 2>&1
"$bin/ml-preprocess" --input-dir "$work/raw/$ds" --output-dir "$work/processed/$ds" >/dev/null 2>&1
"$bin/ml-split" --input-dir "$work/processed/$ds" --output-dir "$work/processed/$ds" >/dev/null 2>&1
n_train=$(( $(wc -l <"$work/processed/$ds/train.csv") - 1 ))
n_val=$(( $(wc -l <"$work/processed/$ds/val.csv") - 1 ))

measure "train logistic-regression" "$n_train" \
  "$bin/ml-train" --input-dir "$work/processed/$ds" --output-dir "$work/models/$ds" --quiet
measure "validate logistic-regression" "$n_val" \
  "$bin/ml-validate" --input-dir "$work/processed/$ds" --model-dir "$work/models/$ds" --quiet
echo "  roc_auc on $n_val validation rows: $(grep -o '"roc_auc": [0-9.]*' "$work/models/$ds/metrics.json" | cut -d' ' -f2)"

# Prediction input: a separate large day; only data.csv is read.
echo "preparing $predict_rows rows to score ..." >&2
rm -rf "$work/raw/$ds" "$work/processed/$ds"
"$bin/ml-generate" --output-dir "$work/raw/big" --date "$ds" --rows "$predict_rows" >/dev/null 2>&1
measure "predict logistic-regression" "$predict_rows" \
  "$bin/ml-predict" --input-dir "$work/raw/big" --model "$work/models/$ds" --output-dir "$work/predictions/$ds" --quiet
lines=$(( $(wc -l <"$work/predictions/$ds/predictions.csv") - 1 ))
[ "$lines" -eq "$predict_rows" ] || { echo "error: $lines predictions for $predict_rows rows" >&2; exit 1; }
