#!/usr/bin/env bash
# How often does each promotion rule move production on noise? Generates two independent
# samples (seeds 1 and 2) of every Sunday in a stretch of months, runs preprocess, split and
# train on each with the release binaries (no Docker, no MLflow), then judges them with
# crates/ml-promote/examples/flip_rates.rs, which prints a table (the README's promotion
# section quotes it).
#
#   scripts/flip_rates.sh [FIRST_SUNDAY] [WEEKS] [ROOT]     default: 2026-01-04, 26, build/flip-rates
#
# Extra ml-train flags can be given in TRAIN_ARGS (for example "--model random-forest").
set -euo pipefail
cd "$(dirname "$0")/.."

first="${1:-2026-01-04}"
weeks="${2:-26}"
root="${3:-build/flip-rates}"
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release"

cargo build --release -q -p ml-generate -p ml-preprocess -p ml-split -p ml-train
rm -rf "$root"
read -r -a train_args <<<"${TRAIN_ARGS:-}"
for ((w = 0; w < weeks; w++)); do
  ds=$(date -u -d "$first + $((7 * w)) days" +%F)
  for sample in a b; do
    seed=$([ "$sample" = a ] && echo 1 || echo 2)
    dir="$root/$sample"
    "$bin/ml-generate" -q --output-dir "$dir/raw/$ds" --date "$ds" --seed "$seed"
    "$bin/ml-preprocess" -q --input-dir "$dir/raw/$ds" --output-dir "$dir/processed/$ds"
    "$bin/ml-split" -q --input-dir "$dir/processed/$ds" --output-dir "$dir/processed/$ds"
    "$bin/ml-train" -q --input-dir "$dir/processed/$ds" --output-dir "$dir/models/$ds" "${train_args[@]}"
  done
  echo "flip-rates: $ds trained (a and b)" >&2
done
cargo run --release -q -p ml-promote --example flip_rates -- "$root"
