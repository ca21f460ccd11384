#!/usr/bin/env bash
# Checks what `make up` needs before it spends ten minutes building: one line per check,
# and every problem with what to do about it. Exits 1 when something is missing.
#
#   scripts/preflight.sh
#
# Settings (environment): AIRFLOW_PORT, MLFLOW_PORT (default: from .env, else 8080 and
# 5000), ML_PREFLIGHT_MIN_GB (free disk needed, default 15), ML_ENV_FILE (default .env).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root="$PWD"

ENV_FILE="${ML_ENV_FILE:-$root/.env}"
MIN_GB="${ML_PREFLIGHT_MIN_GB:-15}"
failures=0

ok() { printf '  ok    %s\n' "$*"; }
bad() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }
warn() { printf '  warn  %s\n' "$*"; }

env_value() { [ -f "$ENV_FILE" ] && sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; }

echo "preflight: checking the prerequisites of the stack"

# Docker: the client, a daemon it can reach, and permission to use it.
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

# The Rust toolchain builds the stage binaries (rust-toolchain.toml pins the version).
if command -v cargo >/dev/null; then
  ok "cargo: $(cargo --version 2>/dev/null | head -n 1)"
else
  bad "cargo not found: install Rust with rustup (https://rustup.rs); rust-toolchain.toml picks the version"
fi

# The registry-free base image is built with debootstrap the first time.
if [ -n "${BASE_IMAGE:-}" ]; then
  ok "base image: BASE_IMAGE=$BASE_IMAGE"
elif docker image inspect ml-debian-base:bookworm >/dev/null 2>&1; then
  ok "base image: ml-debian-base:bookworm already built"
elif command -v debootstrap >/dev/null; then
  ok "debootstrap: present (builds the Debian base image once)"
else
  bad "debootstrap not found: apt-get install debootstrap (or set BASE_IMAGE=debian:bookworm-slim on a machine that can pull)"
fi

# Disk: images, build caches and the databases take about 10 GB on a first build.
docker_root="$(docker info --format '{{ .DockerRootDir }}' 2>/dev/null || true)"
for dir in "$root" ${docker_root:+"$docker_root"}; do
  [ -d "$dir" ] || continue
  free_gb=$(($(df -Pk "$dir" | awk 'NR == 2 {print $4}') / 1024 / 1024))
  if [ "$free_gb" -ge "$MIN_GB" ]; then
    ok "disk: $free_gb GB free for $dir"
  else
    bad "disk: only $free_gb GB free for $dir, the first build needs about $MIN_GB GB (docker system prune frees old images)"
  fi
done

# Ports: free, or already held by this project's own stack (a second `make up` is fine).
port_owner() {
  docker ps --filter "publish=$1" --format '{{ .Names }}' 2>/dev/null | head -n 1
}
port_in_use() {
  if command -v ss >/dev/null; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
project="${ML_STACK_PROJECT:-mlpipeline}"
for spec in "AIRFLOW_PORT:8080:Airflow UI" "MLFLOW_PORT:5000:MLflow UI"; do
  IFS=: read -r var default what <<<"$spec"
  port="${!var:-$(env_value "$var")}"
  port="${port:-$default}"
  if ! port_in_use "$port"; then
    ok "port $port free ($what)"
  elif [[ "$(port_owner "$port")" == "$project"[_-]* ]]; then
    ok "port $port held by this project's running stack ($what)"
  else
    owner="$(port_owner "$port")"
    bad "port $port ($what) is in use${owner:+ by container $owner}: stop that, or set $var in .env to a free port"
  fi
done

# Python 3 runs scripts/run_pipeline.py after the stack is up.
if command -v python3 >/dev/null; then
  ok "python3: $(python3 --version 2>&1)"
else
  bad "python3 not found: apt-get install python3"
fi

# Memory: the idle stack takes about 3 GB, training a few hundred MB more.
mem_gb=$(($(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0) / 1024 / 1024))
if [ "$mem_gb" -ge 4 ]; then
  ok "memory: $mem_gb GB available"
else
  warn "memory: $mem_gb GB available; the stack needs about 4 GB"
fi

if [ "$failures" -gt 0 ]; then
  echo "preflight: $failures problem(s) above; fix them and run make up again" >&2
  exit 1
fi
echo "preflight: all good"
