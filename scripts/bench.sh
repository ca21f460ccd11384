#!/usr/bin/env bash
# Speed and peak memory of every stage on large inputs (release binaries), printing figures.
# This script measures the data stages (generate, preprocess, split) on BENCH_ROWS rows, then
# runs scripts/bench_model.sh for train, validate and predict.
# Target (issue 2, 2-core machine): generate and preprocess >= 1,000,000 rows/s end to end.
# Usage: scripts/bench.sh   (env: BENCH_ROWS, BENCH_DIR, KEEP=1, and bench_model.sh's)
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release"
rows="${BENCH_ROWS:-1000000}"
work="${BENCH_DIR:-$(mktemp -d /tmp/ml-bench.XXXXXX)}"
ds=2026-01-05
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time missing (Debian package 'time')" >&2; exit 1; }

for stage in generate preprocess split; do
  [ -x "$bin/ml-$stage" ] || { echo "error: $bin/ml-$stage not built; run 'make build'" >&2; exit 1; }
done

# Runs a command with its output discarded and prints: label, rows, seconds, rows/s, peak RSS.
# Wall time comes from the shell (nanoseconds), peak RSS from GNU time.
measure() {
  local label="$1" n="$2"
  shift 2
  local t0 t1 kib
  t0=$(date +%s.%N)
  kib="$(/usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1)"
  t1=$(date +%s.%N)
  awk -v l="$label" -v r="$n" -v a="$t0" -v b="$t1" -v k="$kib" 'BEGIN {
    s = b - a; rate = (s > 0) ? r / s : 0
    printf "%-34s %12d rows %8.2f s %12.0f rows/s %8.1f MB peak\n", l, r, s, rate, k / 1024
  }'
}

raw="$work/raw/$ds" processed="$work/processed/$ds"
measure "generate" "$rows" \
  "$bin/ml-generate" --output-dir "$raw" --date "$ds" --rows "$rows" --quiet
measure "preprocess" "$rows" \
  "$bin/ml-preprocess" --input-dir "$raw" --output-dir "$processed" --quiet
measure "split" "$rows" \
  "$bin/ml-split" --input-dir "$processed" --output-dir "$processed" --quiet
echo "  $(du -h "$raw/data.csv" | cut -f1) data.csv, $(($(wc -l <"$processed/train.csv") - 1)) train and $(($(wc -l <"$processed/val.csv") - 1)) val rows"
rm -rf "$work/raw" "$work/processed"

# Model stages; add further data stages above with one `measure` line each.
if [ -x scripts/bench_model.sh ]; then
  BENCH_DIR="$work/model" KEEP=1 scripts/bench_model.sh
fi
