#!/usr/bin/env bash
# Builds every image of the project from package registries alone (no container
# registry), then prints a size table.
#
#   scripts/images.sh            everything: base, binaries, stage images, platform images
#   scripts/images.sh stages     cargo build + the stage images and ml-docker-guard only
#   scripts/images.sh platform   base + postgres, redis, airflow, mlflow only
#   scripts/images.sh sizes      the size table only
#   scripts/images.sh lock       re-lock the Python packages of the platform images
#
# An image is rebuilt only when its inputs changed: each image carries a label with
# the hash of what went into it (Dockerfile, lock file, binary, base image), so a warm
# run costs a no-op `cargo build` and a few `docker image inspect` calls.
#
# Settings (environment):
#   BASE_IMAGE      base of the platform images (default ml-debian-base:bookworm, built
#                   by images/base/build.sh; a machine that can pull may use
#                   debian:bookworm-slim and skip debootstrap)
#   STAGE_BIN_DIR   where the static stage binaries are (default: cargo's release dir);
#   SKIP_CARGO=1    do not run cargo (package binaries that are already in STAGE_BIN_DIR)
#   FORCE=1         rebuild even when the inputs are unchanged
#   NO_CACHE=1      with FORCE=1: rebuild every layer (fresh Debian packages; measures a
#                   cold build)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

BASE_IMAGE="${BASE_IMAGE:-ml-debian-base:bookworm}"
TRIPLE=x86_64-unknown-linux-gnu
STAGE_BIN_DIR="${STAGE_BIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/$TRIPLE/release}"
VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
SOURCE_URL="$(sed -n '/^\[workspace.package\]/,/^\[/s/^repository *= *"\(.*\)"/\1/p' Cargo.toml)"
LICENSE="$(sed -n '/^\[workspace.package\]/,/^\[/s/^license *= *"\(.*\)"/\1/p' Cargo.toml)"
# Built after ml-python (the shared Python runtime), in this order. ml-redis is the Celery
# broker of the `celery` compose profile only.
PLATFORM_IMAGES=(postgres redis airflow mlflow)
# Rust services packaged like the stages (a static binary on an empty base), each from its
# own images/<name>/Dockerfile: the Docker API guard in front of the engine's socket.
SERVICE_IMAGES=(docker-guard)
STAGE_BUDGET_MB=25
BUILD_DIR="$root/build"
LOG_DIR="$BUILD_DIR/logs"
PY=(python3)
UV="${UV:-$root/.venv/bin/uv}"

# Each line of images/stages.txt: "<stage> <description>"; comments and blanks skipped.
stages() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' images/stages.txt | awk '{print $1}'; }
stage_description() { awk -v s="$1" '$1 == s { $1 = ""; sub(/^ +/, ""); print; exit }' images/stages.txt; }

say() { printf '%s\n' "images: $*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Labels of an image, or nothing when it does not exist.
label() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

# Runs `docker build` quietly into a log, with the time it took; on failure shows the log's end.
# Usage: docker_build <name> <context> <inputs-hash> [docker build args...]
declare -A BUILD_SECONDS=()
docker_build() {
  local name=$1 context=$2 inputs=$3
  shift 3
  mkdir -p "$LOG_DIR"
  local log="$LOG_DIR/$name.log" start=$SECONDS cache=()
  [ "${NO_CACHE:-0}" = 1 ] && cache=(--no-cache)
  # DOCKER_BUILDKIT=0: Docker 20.10 without the buildx plugin has only the legacy
  # builder; saying so explicitly keeps its deprecation banner out of the output.
  if ! DOCKER_BUILDKIT=0 docker build --label "ml.inputs=$inputs" \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.source=$SOURCE_URL" \
    --label "org.opencontainers.image.licenses=$LICENSE" \
    "${cache[@]}" \
    -t "$name:latest" -t "$name:$VERSION" "$@" "$context" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "building $name failed (full log: $log)"
  fi
  BUILD_SECONDS[$name]=$((SECONDS - start))
  say "built $name:$VERSION in ${BUILD_SECONDS[$name]} s"
}

# True (0) when the image exists and was built from exactly these inputs.
up_to_date() {
  [ "${FORCE:-0}" != 1 ] && [ "$(label "$1:$VERSION" ml.inputs)" = "$2" ]
}

build_base() {
  if [ "$BASE_IMAGE" = ml-debian-base:bookworm ]; then
    BASE_IMAGE="$BASE_IMAGE" images/base/build.sh
  elif ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    # Another base (debian:bookworm-slim, a mirror's copy) is for machines that can pull.
    say "pulling $BASE_IMAGE"
    docker pull "$BASE_IMAGE"
  fi
}

build_binaries() {
  if [ "${SKIP_CARGO:-0}" = 1 ]; then
    say "SKIP_CARGO=1: using the binaries already in $STAGE_BIN_DIR"
    return
  fi
  local args=() s
  for s in $(stages); do
    [ -f "crates/ml-$s/Cargo.toml" ] || die "stage $s is listed in images/stages.txt but crates/ml-$s does not exist"
    args+=(-p "ml-$s")
  done
  for s in "${SERVICE_IMAGES[@]}"; do args+=(-p "ml-$s"); done
  say "cargo build --release: $((${#args[@]} / 2)) binaries (stages and services), static glibc"
  local start=$SECONDS
  cargo build --release "${args[@]}"
  say "binaries ready in $((SECONDS - start)) s"
}

# A build context holding only <binary>, installed there as <file> with mode 0555 (the
# legacy builder has no COPY --chmod): nothing else is sent to the engine. Prints its path.
binary_context() {
  local bin=$1 file=$2 ctx
  ctx="$(mktemp -d "${TMPDIR:-/tmp}/ml-binary-ctx.XXXXXX")"
  install -m 0555 "$bin" "$ctx/$file"
  echo "$ctx"
}

# Stage images are tiny but the legacy builder spends seconds per Dockerfile step, so
# they are built in parallel: six take as long as one.
build_stage_images() {
  local s bin inputs ctx n=0 total pids=() names=() failed=() i
  total=$(stages | wc -l)
  for s in $(stages); do
    n=$((n + 1))
    bin="$STAGE_BIN_DIR/ml-$s"
    [ -x "$bin" ] || die "missing binary $bin (run cargo build --release -p ml-$s)"
    inputs="$(cat images/stage/Dockerfile "$bin" | sha256sum | cut -c1-16)-$(stage_description "$s" | sha256sum | cut -c1-8)"
    if up_to_date "ml-$s" "$inputs"; then
      say "[$n/$total] ml-$s:$VERSION is up to date"
      continue
    fi
    say "[$n/$total] building ml-$s"
    ctx="$(binary_context "$bin" stage)"
    (
      trap 'rm -rf "$ctx"' EXIT
      docker_build "ml-$s" "$ctx" "$inputs" -f images/stage/Dockerfile --build-arg "STAGE=$s" \
        --build-arg "DESCRIPTION=$(stage_description "$s")"
    ) &
    pids+=($!)
    names+=("ml-$s")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${names[$i]}")
  done
  [ ${#failed[@]} -eq 0 ] || die "stage images failed: ${failed[*]}"
}

# The Rust services' images: images/<name>/Dockerfile over a context holding only the
# binary ml-<name>, like the stages.
build_service_images() {
  local name bin inputs ctx
  for name in "${SERVICE_IMAGES[@]}"; do
    bin="$STAGE_BIN_DIR/ml-$name"
    [ -x "$bin" ] || die "missing binary $bin (run cargo build --release -p ml-$name)"
    inputs="$(cat "images/$name/Dockerfile" "$bin" | sha256sum | cut -c1-16)"
    if up_to_date "ml-$name" "$inputs"; then
      say "ml-$name:$VERSION is up to date"
      continue
    fi
    say "building ml-$name"
    ctx="$(binary_context "$bin" "ml-$name")"
    docker_build "ml-$name" "$ctx" "$inputs" -f "images/$name/Dockerfile"
    rm -rf "$ctx"
  done
}

# Downloads the wheels listed in images/<name>/requirements.lock for the image's
# platform (CPython 3.11, glibc 2.36 = Debian bookworm) into build/wheels/<name>.
# Runs on the host, whose pip trusts the host's CA bundle and proxies. Re-downloads
# only when the lock changed.
fetch_wheels() {
  local name=$1 lock="images/$1/requirements.lock" dir="$BUILD_DIR/wheels/$1"
  local want stamp="$BUILD_DIR/wheels/$1.lock-sha"
  want="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [ -d "$dir" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  rm -rf "$dir" "$stamp"
  mkdir -p "$dir"
  # pip does not widen --platform to older manylinux tags: list glibc 2.36 down to 2.5.
  local platforms=() v
  for v in $(seq 36 -1 5); do platforms+=(--platform "manylinux_2_${v}_x86_64"); done
  platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
  say "downloading the wheels of $lock"
  local start=$SECONDS
  "${PY[@]}" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 "${platforms[@]}" \
    --require-hashes -r "$lock" -d "$dir"
  echo "$want" >"$stamp"
  say "$(find "$dir" -name '*.whl' | wc -l) wheels, $(du -sh "$dir" | cut -f1), in $((SECONDS - start)) s"
}

# Inputs hash of an image: the files of its images/<dir> plus the ids of the images
# it is built FROM, so rebuilding a parent rebuilds its children.
inputs_of() {
  local dir=$1 parent
  shift
  {
    for parent in "$@"; do docker image inspect -f '{{.Id}}' "$parent"; done
    cat images/"$dir"/*
  } | sha256sum | cut -c1-24
}

# A fresh build context holding only images/<dir> (and, for a lock file, its wheels as
# hard links): build/context/<dir>.
make_context() {
  local dir=$1 ctx="$BUILD_DIR/context/$1"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp images/"$dir"/* "$ctx"/
  if [ -f "images/$dir/requirements.lock" ]; then
    fetch_wheels "$dir" >&2
    cp -al "$BUILD_DIR/wheels/$dir" "$ctx/wheels"
  fi
  echo "$ctx"
}

build_platform_images() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
    die "base image $BASE_IMAGE is missing (images/base/build.sh builds it)"
  local name inputs ctx n=0 total=$((${#PLATFORM_IMAGES[@]} + 1))

  # The shared Python runtime and its ONBUILD builder: two targets of one Dockerfile.
  n=$((n + 1))
  inputs="$(inputs_of python "$BASE_IMAGE")"
  if up_to_date ml-python "$inputs" && up_to_date ml-python-builder "$inputs"; then
    say "[$n/$total] ml-python:$VERSION is up to date"
  else
    say "[$n/$total] building ml-python and ml-python-builder (log: build/logs/ml-python*.log)"
    ctx="$(make_context python)"
    docker_build ml-python "$ctx" "$inputs" --target runtime --build-arg "BASE_IMAGE=$BASE_IMAGE"
    docker_build ml-python-builder "$ctx" "$inputs" --target builder --build-arg "BASE_IMAGE=$BASE_IMAGE"
    rm -rf "$ctx"
  fi

  for name in "${PLATFORM_IMAGES[@]}"; do
    n=$((n + 1))
    local parents=("$BASE_IMAGE")
    [ -f "images/$name/requirements.lock" ] && parents=("ml-python:$VERSION" "ml-python-builder:$VERSION")
    inputs="$(inputs_of "$name" "${parents[@]}")"
    if up_to_date "ml-$name" "$inputs"; then
      say "[$n/$total] ml-$name:$VERSION is up to date"
      continue
    fi
    ctx="$(make_context "$name")"
    say "[$n/$total] building ml-$name (log: build/logs/ml-$name.log)"
    if [ -f "images/$name/requirements.lock" ]; then
      docker_build "ml-$name" "$ctx" "$inputs" \
        --build-arg "PYTHON_RUNTIME=ml-python:$VERSION" --build-arg "PYTHON_BUILDER=ml-python-builder:$VERSION"
    else
      docker_build "ml-$name" "$ctx" "$inputs" --build-arg "BASE_IMAGE=$BASE_IMAGE"
    fi
    rm -rf "$ctx"
  done
}

print_sizes() {
  local name size over=0
  printf '\n%-16s %-8s %10s %10s\n' IMAGE TAG SIZE "BUILD (s)"
  for name in $(stages | sed 's/^/ml-/') "${SERVICE_IMAGES[@]/#/ml-}" ml-python "${PLATFORM_IMAGES[@]/#/ml-}"; do
    size="$(docker image inspect -f '{{.Size}}' "$name:$VERSION" 2>/dev/null || echo)"
    if [ -z "$size" ]; then
      printf '%-16s %-8s %10s\n' "$name" "$VERSION" missing
      continue
    fi
    printf '%-16s %-8s %8.1f MB %10s\n' "$name" "$VERSION" "$(awk -v b="$size" 'BEGIN { print b / 1e6 }')" "${BUILD_SECONDS[$name]:--}"
    if [[ " $(stages | sed 's/^/ml-/' | tr '\n' ' ') " == *" $name "* ]] && [ "$size" -gt $((STAGE_BUDGET_MB * 1000000)) ]; then
      echo "  ^ over the ${STAGE_BUDGET_MB} MB budget of a stage image" >&2
      over=1
    fi
  done
  return "$over"
}

lock() {
  local name
  for name in "${PLATFORM_IMAGES[@]}"; do
    [ -f "images/$name/requirements.in" ] || continue
    say "locking images/$name/requirements.lock"
    "$UV" pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
      --generate-hashes --custom-compile-command "scripts/images.sh lock" \
      "images/$name/requirements.in" -o "images/$name/requirements.lock"
  done
}

# One build at a time per machine: the Docker engine and its image names are shared, so two
# runs (two checkouts, CI beside a developer) would replace the base image or a stage
# image under each other ("unknown parent image"). The second run waits for the first.
wait_for_other_builds() {
  local lock="${TMPDIR:-/tmp}/ml-pipeline-images.lock"
  command -v flock >/dev/null || return 0
  if [ -e "$lock" ] && [ ! -w "$lock" ]; then
    say "cannot lock $lock (not writable); building without waiting for other runs"
    return 0
  fi
  exec 9>>"$lock"
  if ! flock --nonblock 9; then
    say "another images.sh run is building on this machine; waiting for it to finish"
    flock 9
  fi
}

main() {
  local what="${1:-all}" start=$SECONDS
  [ "$what" = sizes ] || wait_for_other_builds
  case "$what" in
    all)
      build_base
      build_binaries
      build_stage_images
      build_service_images
      build_platform_images
      ;;
    stages)
      build_binaries
      build_stage_images
      build_service_images
      ;;
    platform)
      build_base
      build_platform_images
      ;;
    sizes) ;;
    lock)
      lock
      return
      ;;
    *) die "unknown command '$what' (all, stages, platform, sizes, lock)" ;;
  esac
  # Superseded builds of our images (untagged, labelled ml.inputs) would pile up.
  [ "$what" = sizes ] || docker image prune --force --filter label=ml.inputs >/dev/null
  print_sizes
  [ "$what" = sizes ] || say "done in $((SECONDS - start)) s"
}

# On one line: bash reads a script while running it, and an edit made meanwhile must
# not be read as more commands.
main "$@"; exit $?
