#!/usr/bin/env bash
# Checks what `make up` (or `make test`) needs before it spends ten minutes building: one
# line per check, and every problem with what to do about it. What the build installs by
# itself (debootstrap, and for the tests Chromium, with apt-get as root or through sudo) is
# reported as "will be installed", not as missing. Exits 1 only for what nothing installs:
# no Docker daemon, no compose, no cargo or C toolchain, no Python 3.11 with pip, too
# little disk, a port of the stack held by something else.
#
#   scripts/preflight.sh         before `make up`: the stack's own ports (AIRFLOW_PORT, MLFLOW_PORT)
#   scripts/preflight.sh test    before `make test`: the ports of the test stacks instead,
#                                as warnings (they are needed only when the system tests
#                                start, and each test stack removes its own leftovers);
#                                also the virtualenv and the browser of the screenshot test
#
# Settings (environment): AIRFLOW_PORT, MLFLOW_PORT (default: from .env, else 8080 and
# 5000), ML_PREFLIGHT_MIN_GB (free disk needed, default 15), ML_ENV_FILE (default .env),
# ML_STACK_PROJECT (default mlpipeline), BASE_IMAGE (see scripts/images.sh); in test mode
# the settings of tests/system/conftest.py and tests/drills/conftest.py: ML_STACK_PROJECT,
# ML_TEST_AIRFLOW_PORT, ML_TEST_MLFLOW_PORT, ML_CELERY_STACK_PROJECT,
# ML_TEST_CELERY_AIRFLOW_PORT, ML_TEST_CELERY_MLFLOW_PORT.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root="$PWD"

MODE="${1:-up}"
case "$MODE" in
  up | test) ;;
  *)
    echo "usage: scripts/preflight.sh [up|test]" >&2
    exit 2
    ;;
esac
ENV_FILE="${ML_ENV_FILE:-$root/.env}"
MIN_GB="${ML_PREFLIGHT_MIN_GB:-15}"
failures=0

ok() { printf '  ok    %s\n' "$*"; }
bad() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }
warn() { printf '  warn  %s\n' "$*"; }

env_value() { [ -f "$ENV_FILE" ] && sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; }

# How the build's own scripts (images/base/build.sh, scripts/install-browser.sh) install
# Debian packages: apt-get as root, else through sudo. Prints "apt-get", "sudo apt-get"
# or "sudo apt-get (asks for your password)"; fails when neither can run.
apt_installer() {
  command -v apt-get >/dev/null || return 1
  if [ "$(id -u)" = 0 ]; then
    echo "apt-get"
  elif ! command -v sudo >/dev/null; then
    return 1
  elif sudo -n true 2>/dev/null; then
    echo "sudo apt-get"
  else
    echo "sudo apt-get (asks for your password)"
  fi
}

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# A package the build installs itself: ok when present, "will be installed" when the
# build can install it, FAIL otherwise.
# Usage: will_install <what> <present: yes|no> <installer script> <hint> <package...>
will_install() {
  local what=$1 present=$2 script=$3 hint=$4 how
  shift 4
  if [ "$present" = yes ]; then
    ok "$what: present"
  elif how="$(apt_installer)"; then
    if [[ "$how" == *password* ]]; then
      warn "$what: missing; $script will run: $how install $*"
    else
      ok "$what: missing; $script will run: $how install $*"
    fi
  elif ! command -v apt-get >/dev/null; then
    bad "$what: not installed and no apt-get to install it: install $* with your package manager$hint"
  else
    bad "$what: not installed, and installing it needs root: run as root, install sudo, or apt-get install $*$hint"
  fi
}

echo "preflight: checking the prerequisites of $([ "$MODE" = test ] && echo "make test" || echo "the stack")"

# Docker: the client, a daemon it can reach, and permission to use it.
docker_ok=no
if ! command -v docker >/dev/null; then
  bad "docker not found: install Docker Engine 20.10 or later (https://docs.docker.com/engine/install/)"
elif ! docker_err="$(docker info --format '{{ .ServerVersion }}' 2>&1)"; then
  if grep -qi 'permission denied' <<<"$docker_err"; then
    bad "docker: permission denied on the daemon socket: add yourself to the docker group (sudo usermod -aG docker \$USER, then log in again)"
  else
    bad "docker: cannot reach the daemon (is it running? sudo systemctl start docker): $(head -n 1 <<<"$docker_err")"
  fi
else
  ok "docker daemon $docker_err"
  docker_ok=yes
fi

# Compose: v2 plugin or docker-compose 1.29.
if docker compose version >/dev/null 2>&1; then
  ok "compose: $(docker compose version --short 2>/dev/null || docker compose version)"
elif command -v docker-compose >/dev/null; then
  version="$(docker-compose version --short 2>/dev/null || echo unknown)"
  case "$version" in
    1.2[89].* | [2-9].*) ok "compose: docker-compose $version" ;;
    *) bad "compose: docker-compose $version is too old: install Docker Compose v2 (or docker-compose 1.28+)" ;;
  esac
else
  bad "compose not found: install the Docker Compose plugin (apt-get install docker-compose-plugin) or docker-compose"
fi

# The Rust toolchain builds the stage binaries (rust-toolchain.toml pins the version, and
# rustup fetches it on first use); the static glibc link (.cargo/config.toml) needs a C
# compiler and libc.a.
if command -v cargo >/dev/null; then
  ok "cargo: $(cargo --version 2>/dev/null | head -n 1)"
else
  bad "cargo not found: install Rust with rustup (https://rustup.rs); rust-toolchain.toml picks the version"
fi
if ! command -v cc >/dev/null; then
  bad "cc not found: the stage binaries link with the C toolchain: apt-get install gcc libc6-dev"
elif [[ "$(cc -print-file-name=libc.a 2>/dev/null)" != /* ]]; then
  bad "libc.a not found: the stage binaries are linked statically: apt-get install libc6-dev"
else
  ok "cc: $(cc --version 2>/dev/null | head -n 1), static libc present"
fi

# The registry-free base image is built with debootstrap the first time;
# images/base/build.sh installs debootstrap itself when it is missing.
if [ -n "${BASE_IMAGE:-}" ] && [ "$BASE_IMAGE" != ml-debian-base:bookworm ]; then
  ok "base image: BASE_IMAGE=$BASE_IMAGE (pulled if missing, no debootstrap)"
elif [ "$docker_ok" = yes ] && docker image inspect ml-debian-base:bookworm >/dev/null 2>&1; then
  ok "base image: ml-debian-base:bookworm already built"
else
  will_install "debootstrap (builds the Debian base image once)" \
    "$(command -v debootstrap >/dev/null && echo yes || echo no)" images/base/build.sh \
    " (or set BASE_IMAGE=debian:bookworm-slim on a machine that can pull)" debootstrap
fi

# Python 3.11+ runs scripts/run_pipeline.py after the stack is up, and its pip downloads
# the platform images' wheels (scripts/images.sh).
if ! command -v python3 >/dev/null; then
  bad "python3 not found: apt-get install python3 python3-pip (3.11 or later)"
elif ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  bad "python3: $(python3 --version 2>&1) is too old: install Python 3.11 or later"
elif ! python3 -m pip --version >/dev/null 2>&1; then
  bad "python3 -m pip not found: the images' wheels are downloaded with it: apt-get install python3-pip"
else
  ok "python3: $(python3 --version 2>&1) with pip"
fi

if [ "$MODE" = test ]; then
  # scripts/dev-env.sh creates .venv with `python3 -m venv` (Debian splits it out).
  if [ -x "$root/.venv/bin/python" ]; then
    ok "virtualenv: .venv exists (scripts/dev-env.sh syncs it)"
  elif python3 -c 'import ensurepip, venv' 2>/dev/null; then
    ok "virtualenv: python3 -m venv works; scripts/dev-env.sh creates .venv"
  else
    bad "virtualenv: python3 -m venv does not work: apt-get install python3-venv"
  fi
  # The screenshot test drives Debian's Chromium; scripts/install-browser.sh installs it.
  browser=no
  deb_installed chromium && deb_installed chromium-driver && browser=yes
  will_install "chromium and chromium-driver (screenshot test)" "$browser" scripts/install-browser.sh "" chromium chromium-driver
fi

# Disk: images, build caches and the databases take about 10 GB on a first build.
docker_root=""
[ "$docker_ok" = yes ] && docker_root="$(docker info --format '{{ .DockerRootDir }}' 2>/dev/null || true)"
for dir in "$root" ${docker_root:+"$docker_root"}; do
  [ -d "$dir" ] || continue
  free_gb=$(($(df -Pk "$dir" | awk 'NR == 2 {print $4}') / 1024 / 1024))
  if [ "$free_gb" -ge "$MIN_GB" ]; then
    ok "disk: $free_gb GB free for $dir"
  else
    bad "disk: only $free_gb GB free for $dir, the first build needs about $MIN_GB GB (docker system prune frees old images)"
  fi
done

# Ports: free, or already held by the compose project that will use them.
# "<container> <compose project>" of the container publishing a port, if any.
port_owner() {
  [ "$docker_ok" = yes ] || return 0
  docker ps --filter "publish=$1" --format '{{ .Names }} {{ .Label "com.docker.compose.project" }}' 2>/dev/null | head -n 1
}
port_in_use() {
  if command -v ss >/dev/null; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
# check_port <port> <what> <project> <fail|warn> <hint>; each port once.
declare -A checked_ports=()
check_port() {
  local port=$1 what=$2 project=$3 severity=$4 hint=$5 owner container owner_project
  [ -z "${checked_ports[$port]:-}" ] || return 0
  checked_ports[$port]=1
  if ! port_in_use "$port"; then
    ok "port $port free ($what)"
    return
  fi
  owner="$(port_owner "$port")"
  read -r container owner_project <<<"$owner"
  if [ -n "$container" ] && [ "$owner_project" = "$project" ]; then
    ok "port $port held by project $project's own containers ($what)"
  elif [ "$severity" = warn ]; then
    warn "port $port ($what) is in use${container:+ by container $container${owner_project:+ of project $owner_project}}; it must be free when that stack starts: $hint"
  else
    bad "port $port ($what) is in use${container:+ by container $container${owner_project:+ of project $owner_project}}: $hint"
  fi
}

if [ "$MODE" = up ]; then
  project="${ML_STACK_PROJECT:-mlpipeline}"
  for spec in "AIRFLOW_PORT:8080:Airflow UI" "MLFLOW_PORT:5000:MLflow UI"; do
    IFS=: read -r var default what <<<"$spec"
    port="${!var:-$(env_value "$var")}"
    check_port "${port:-$default}" "$what" "$project" fail "stop that, or set $var in .env to a free port"
  done
else
  # The stacks of tests/system and tests/drills, with their defaults. Each runs
  # `down` for its own project before `up`, so leftovers of that project are fine.
  system_project="${ML_STACK_PROJECT:-mlpipeline-test}"
  celery_project="${ML_CELERY_STACK_PROJECT:-mlpipeline-test-celery}"
  drills_project="${ML_STACK_PROJECT:-mlpipeline-drills}"
  hint="stop it, or choose other ports with ML_TEST_AIRFLOW_PORT / ML_TEST_MLFLOW_PORT (ML_TEST_CELERY_* for the celery stack)"
  check_port "${ML_TEST_AIRFLOW_PORT:-18080}" "Airflow of the system-test stack" "$system_project" warn "$hint"
  check_port "${ML_TEST_MLFLOW_PORT:-15000}" "MLflow of the system-test stack" "$system_project" warn "$hint"
  check_port "${ML_TEST_CELERY_AIRFLOW_PORT:-18180}" "Airflow of the celery test stack" "$celery_project" warn "$hint"
  check_port "${ML_TEST_CELERY_MLFLOW_PORT:-15100}" "MLflow of the celery test stack" "$celery_project" warn "$hint"
  check_port "${ML_TEST_AIRFLOW_PORT:-28080}" "Airflow of the drills' stack" "$drills_project" warn "$hint"
  check_port "${ML_TEST_MLFLOW_PORT:-25000}" "MLflow of the drills' stack" "$drills_project" warn "$hint"
fi

# Memory: the idle stack takes about 3 GB, training a few hundred MB more.
mem_gb=$(($(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0) / 1024 / 1024))
if [ "$mem_gb" -ge 4 ]; then
  ok "memory: $mem_gb GB available"
else
  warn "memory: $mem_gb GB available; the stack needs about 4 GB"
fi

if [ "$failures" -gt 0 ]; then
  echo "preflight: $failures problem(s) above; fix them and run make $MODE again" >&2
  exit 1
fi
echo "preflight: all good"
