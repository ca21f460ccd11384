#!/usr/bin/env bash
# Runs the compose stack (docker-compose.yml): Airflow, Postgres, MLflow; with the profile
# celery also Redis and two Celery workers.
#
#   scripts/stack.sh env     write .env with generated secrets (first run only; later runs
#                            add variables that are missing and keep the rest). Placeholders
#                            left by copying .env.example (`<generated>`, `<detected>`,
#                            `/absolute/path/to/data`, any `<...>`) are replaced: secrets
#                            by fresh ones, ML_HOST_DATA_DIR, DOCKER_GID and ML_TASK_USER
#                            by detected values; a placeholder in any other variable is
#                            refused with one line naming it, before anything is written
#   scripts/stack.sh up      env + build the images that changed + start + wait until healthy
#   scripts/stack.sh wait    wait until every service is healthy (and the *-init one-shots are done)
#   scripts/stack.sh down    stop and remove the containers; the data is kept
#   scripts/stack.sh clean   also remove the volumes (databases, MLflow artifacts, logs);
#                            the host data directory is left alone
#   scripts/stack.sh ps|logs|compose ARGS...   pass through to compose for this project
#
# Settings (environment):
#   ML_STACK_PROJECT  compose project name (default mlpipeline)
#   ML_STACK_PROFILE  empty (LocalExecutor, the default) or celery (CeleryExecutor, Redis,
#                     two workers). `env` and `up` record it in the env file, so later
#                     commands act on the same services; without it the file's value holds
#                     (`ML_STACK_PROFILE= scripts/stack.sh up` goes back to LocalExecutor)
#   ML_ENV_FILE       the env file (default .env at the repository root)
#   ML_WAIT_TIMEOUT   seconds `wait` allows (default 300)
#   ML_SKIP_BUILD=1   `up` does not run scripts/images.sh
#   COMPOSE           compose command (default: `docker compose` if present, else docker-compose)
# and, read only when .env is first written: ML_DATA_DIR (default ./data), AIRFLOW_PORT,
# MLFLOW_PORT, ML_BIND_ADDRESS, ML_TASK_NETWORK, ML_IMAGE_TAG, AIRFLOW_ADMIN_USERNAME,
# ML_MODEL_PATH, ML_PROMOTION_MODE (see .env.example).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

PROJECT="${ML_STACK_PROJECT:-mlpipeline}"
ENV_FILE="${ML_ENV_FILE:-$root/.env}"
WAIT_TIMEOUT="${ML_WAIT_TIMEOUT:-300}"

say() { printf '%s\n' "stack: $*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if [ -n "${COMPOSE:-}" ]; then
  read -r -a compose_cmd <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
else
  compose_cmd=(docker-compose)
fi

# The profile: from the environment when set there (even empty), else from the env file.
stack_profile() {
  if [ -n "${ML_STACK_PROFILE+set}" ]; then
    printf '%s\n' "$ML_STACK_PROFILE"
  elif [ -f "$ENV_FILE" ]; then
    env_value ML_STACK_PROFILE
  fi
}

# The executor goes with the profile: the services of `celery` are useless without the
# CeleryExecutor, and the LocalExecutor's tasks would never reach them.
executor_of() {
  case "$1" in
    "") echo LocalExecutor ;;
    celery) echo CeleryExecutor ;;
    *) die "ML_STACK_PROFILE=$1: unknown profile (empty for LocalExecutor, or celery)" ;;
  esac
}

compose() {
  local profile executor
  profile="$(stack_profile)"
  executor="$(executor_of "$profile")"
  COMPOSE_PROFILES="$profile" ML_AIRFLOW_EXECUTOR="$executor" \
    "${compose_cmd[@]}" --project-name "$PROJECT" --env-file "$ENV_FILE" --file "$root/docker-compose.yml" "$@"
}

# The services `up` starts for the profile. Compose v2 lists only those in
# `config --services`; docker-compose 1.29 lists every profile's, so the profiles are
# read from the rendered file instead (a service is active when it has no profiles or
# names the active one).
active_services() {
  compose config | awk -v active="$(stack_profile)" '
    /^[^ ]/ { in_services = ($0 == "services:"); next }
    !in_services { next }
    /^  [^ ]+:$/ { svc = substr($1, 1, length($1) - 1); order[++n] = svc; in_profiles = 0; next }
    in_profiles && $1 == "-" { if ($2 == active) enabled[svc] = 1; next }
    /^    [^ ]/ { in_profiles = ($1 == "profiles:"); if (in_profiles) profiled[svc] = 1 }
    END { for (i = 1; i <= n; i++) if (!profiled[order[i]] || enabled[order[i]]) print order[i] }'
}

# Random secrets from the kernel, no tools beyond coreutils. Hex keeps them safe in
# URLs (database connection strings) and in .env without quoting.
random_hex() { head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
# Airflow's Fernet key: 32 random bytes, URL-safe base64.
fernet_key() { head -c 32 /dev/urandom | base64 | tr '+/' '-_'; }

# Adds KEY=VALUE to the env file unless KEY is already there.
ensure() {
  local key=$1 value=$2
  grep -q "^$key=" "$ENV_FILE" 2>/dev/null && return
  printf '%s=%s\n' "$key" "$value" >>"$ENV_FILE"
  added+=("$key")
}

# Placeholders: what .env.example shows where a real value goes. A .env copied from it
# (the usual habit) keeps them, and `ensure` alone would never replace them.
EXAMPLE_FILE="$root/.env.example"
SECRET_KEYS=(POSTGRES_PASSWORD AIRFLOW_DB_PASSWORD MLFLOW_DB_PASSWORD MLFLOW_ADMIN_PASSWORD
  MLFLOW_PIPELINE_PASSWORD MLFLOW_PREDICT_PASSWORD MLFLOW_SECRET_KEY AIRFLOW_FERNET_KEY AIRFLOW_JWT_SECRET
  AIRFLOW_API_SECRET_KEY AIRFLOW_ADMIN_PASSWORD REDIS_PASSWORD)
DETECTED_KEYS=(ML_HOST_DATA_DIR DOCKER_GID ML_TASK_USER)
is_placeholder() { [[ $1 == \<*\> || $1 == /absolute/path/to/* ]]; }
example_value() { sed -n "s/^$1=//p" "$EXAMPLE_FILE" 2>/dev/null | tail -n 1; }
has_key() { grep -q "^$1=" "$ENV_FILE" 2>/dev/null; }
is_one_of() {
  local key=$1 k
  shift
  for k in "$@"; do [ "$k" = "$key" ] && return 0; done
  return 1
}

# True when KEY (a secret or a detected value) is in the env file with a value that is no
# real one: empty, a placeholder, or, for a secret, the example's own text (public in git).
needs_value() {
  local key=$1 value
  has_key "$key" || return 1
  value="$(env_value "$key")"
  if [ -z "$value" ] || is_placeholder "$value"; then
    return 0
  fi
  is_one_of "$key" "${SECRET_KEYS[@]}" && [ "$value" = "$(example_value "$key")" ]
}

# Replaces KEY's line(s) by KEY=VALUE in place (the file keeps its inode and mode).
replace() {
  local key=$1 value=$2 tmp
  tmp="$(umask 077 && mktemp "$ENV_FILE.XXXXXX")"
  KEY="$key" VALUE="$value" awk 'index($0, ENVIRON["KEY"] "=") == 1 {
      if (!done) print ENVIRON["KEY"] "=" ENVIRON["VALUE"]; done = 1; next } { print }' \
    "$ENV_FILE" >"$tmp"
  cat "$tmp" >"$ENV_FILE"
  rm -f "$tmp"
  replaced+=("$key")
}

# Refuses the env file, before anything is written, when a variable that is neither a
# secret nor detected holds a placeholder (nothing knows what it should be), or when a
# secret must be replaced although the stack's volumes exist already: the databases were
# set up with the old value and would refuse the new one.
check_placeholders() {
  [ -f "$ENV_FILE" ] || return 0
  local key value problems=0 volumes secrets=()
  while IFS= read -r key; do
    value="$(env_value "$key")"
    is_placeholder "$value" || continue
    is_one_of "$key" "${SECRET_KEYS[@]}" "${DETECTED_KEYS[@]}" && continue
    printf 'error: %s: %s=%s is a placeholder, not a value: set a real one or delete the line\n' \
      "$ENV_FILE" "$key" "$value" >&2
    problems=$((problems + 1))
  done < <(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' "$ENV_FILE" | sort -u)
  for key in "${SECRET_KEYS[@]}"; do
    needs_value "$key" && secrets+=("$key")
  done
  if [ ${#secrets[@]} -gt 0 ] && command -v docker >/dev/null; then
    volumes="$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null || true)"
    if [ -n "$volumes" ]; then
      printf 'error: %s: %s hold(s) placeholders, but project %s already has volumes set up with them: run scripts/stack.sh clean first, or set real values by hand\n' \
        "$ENV_FILE" "${secrets[*]}" "$PROJECT" >&2
      problems=$((problems + 1))
    fi
  fi
  [ "$problems" -eq 0 ] || exit 1
}

# ensure, and replace a placeholder left from .env.example.
ensure_real() {
  local key=$1 value=$2
  if needs_value "$key"; then
    replace "$key" "$value"
  else
    ensure "$key" "$value"
  fi
}

cmd_env() {
  local data_dir task_user docker_gid added=() replaced=()
  check_placeholders
  # The Docker daemon resolves bind-mount sources on the host: the path must be absolute.
  data_dir="${ML_DATA_DIR:-$root/data}"
  mkdir -p "$data_dir"
  data_dir="$(cd "$data_dir" && pwd -P)"
  [ -S /var/run/docker.sock ] || die "/var/run/docker.sock not found: the scheduler starts tasks through it"
  docker_gid="$(stat -c %g /var/run/docker.sock)"
  # Tasks must not run as root. A root host user gets a dedicated uid that owns the
  # data dir; anyone else runs tasks as themselves, so they own the files tasks write.
  if [ "$(id -u)" = 0 ]; then
    task_user=10001:10001
  else
    task_user="$(id -u):$(id -g)"
  fi

  [ -e "$ENV_FILE" ] || { (umask 077 && : >"$ENV_FILE"); say "writing $ENV_FILE"; }
  chmod 600 "$ENV_FILE"
  if ! grep -q '^# ' "$ENV_FILE"; then
    echo "# Generated by scripts/stack.sh env; secrets: keep this file private (mode 600). See .env.example." >>"$ENV_FILE"
  fi
  ensure_real POSTGRES_PASSWORD "$(random_hex 24)"
  ensure_real AIRFLOW_DB_PASSWORD "$(random_hex 24)"
  ensure_real MLFLOW_DB_PASSWORD "$(random_hex 24)"
  ensure_real MLFLOW_ADMIN_PASSWORD "$(random_hex 16)"
  ensure_real MLFLOW_PIPELINE_PASSWORD "$(random_hex 24)"
  ensure_real MLFLOW_PREDICT_PASSWORD "$(random_hex 24)"
  ensure_real MLFLOW_SECRET_KEY "$(random_hex 32)"
  ensure_real AIRFLOW_FERNET_KEY "$(fernet_key)"
  ensure_real AIRFLOW_JWT_SECRET "$(random_hex 32)"
  ensure_real AIRFLOW_API_SECRET_KEY "$(random_hex 32)"
  ensure AIRFLOW_ADMIN_USERNAME "${AIRFLOW_ADMIN_USERNAME:-admin}"
  ensure_real AIRFLOW_ADMIN_PASSWORD "$(random_hex 12)"
  ensure_real ML_HOST_DATA_DIR "$data_dir"
  ensure_real DOCKER_GID "$docker_gid"
  ensure_real ML_TASK_USER "$task_user"
  ensure ML_TASK_NETWORK "${ML_TASK_NETWORK:-${PROJECT}-tasks}"
  ensure ML_IMAGE_TAG "${ML_IMAGE_TAG:-latest}"
  ensure ML_MODEL_PATH "${ML_MODEL_PATH:-}"
  ensure ML_PROMOTION_MODE "${ML_PROMOTION_MODE:-}"
  ensure ML_PREDICT_DEADLINE_MINUTES "${ML_PREDICT_DEADLINE_MINUTES:-120}"
  ensure ML_APPROVAL_REMINDER_HOURS "${ML_APPROVAL_REMINDER_HOURS:-24}"
  ensure AIRFLOW_PORT "${AIRFLOW_PORT:-8080}"
  ensure AIRFLOW_BASE_URL "${AIRFLOW_BASE_URL:-http://localhost:$(env_value AIRFLOW_PORT)}"
  ensure MLFLOW_PORT "${MLFLOW_PORT:-5000}"
  ensure MLFLOW_BASE_URL "${MLFLOW_BASE_URL:-http://localhost:$(env_value MLFLOW_PORT)}"
  ensure ML_BIND_ADDRESS "${ML_BIND_ADDRESS:-127.0.0.1}"
  ensure_real REDIS_PASSWORD "$(random_hex 24)"
  if [ -n "${ML_STACK_PROFILE+set}" ]; then
    executor_of "$ML_STACK_PROFILE" >/dev/null
    if ! grep -q '^ML_STACK_PROFILE=' "$ENV_FILE"; then
      ensure ML_STACK_PROFILE "$ML_STACK_PROFILE"
    elif [ "$(env_value ML_STACK_PROFILE)" != "$ML_STACK_PROFILE" ]; then
      sed -i "s/^ML_STACK_PROFILE=.*/ML_STACK_PROFILE=$ML_STACK_PROFILE/" "$ENV_FILE"
      say "$ENV_FILE: ML_STACK_PROFILE=$ML_STACK_PROFILE"
    fi
  fi

  if [ "${#replaced[@]}" -gt 0 ]; then
    say "$ENV_FILE: replaced the placeholders of ${replaced[*]}"
  fi
  if [ "${#added[@]}" -gt 0 ]; then
    say "$ENV_FILE: added ${added[*]}"
  elif [ "${#replaced[@]}" -eq 0 ]; then
    say "$ENV_FILE is complete, nothing changed"
  fi
  # The data dir as the env file says (it may predate this run).
  data_dir="$(env_value ML_HOST_DATA_DIR)"
  task_user="$(env_value ML_TASK_USER)"
  # Its layout: each task gets bind mounts of the kinds' directories it writes (a bind
  # source must exist; airflow_ml_dags/dags/common.py, DATA_KINDS).
  mkdir -p "$data_dir"/{raw,processed,models,predictions,monitoring,model-cache}
  # Also after the fact: files a root user wrote there by hand (scripts/pipeline-local.sh,
  # docker run without --user) would otherwise make later tasks fail with EACCES.
  if [ "$(id -u)" = 0 ] && [ -n "$(find "$data_dir" \( ! -user "${task_user%%:*}" -o ! -group "${task_user##*:}" \) -print -quit)" ]; then
    chown -R "$task_user" "$data_dir"
    say "data dir $data_dir now belongs to $task_user (the task containers' user)"
  fi
}

env_value() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; }

# Prints "<service> <state>" for every container of the project; state is the health
# status when the service has a healthcheck, otherwise running/exited(code).
service_states() {
  local ids
  ids="$(compose ps --all -q 2>/dev/null || true)"
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  docker inspect -f '{{ index .Config.Labels "com.docker.compose.service" }} {{ if .State.Health }}{{ .State.Health.Status }}{{ else if .State.Running }}running{{ else }}exited({{ .State.ExitCode }}){{ end }}' $ids
}

cmd_wait() {
  local deadline=$((SECONDS + WAIT_TIMEOUT)) states pending last=""
  local expected
  expected="$(active_services | sort)"
  say "waiting for the services of project $PROJECT to be healthy (up to $WAIT_TIMEOUT s)"
  while true; do
    states="$(service_states | sort)"
    local failed
    failed="$(awk '$1 ~ /-init$/ && $2 ~ /^exited\([1-9]/ {print $1}' <<<"$states")"
    if [ -n "$failed" ]; then
      for s in $failed; do compose logs --no-color --tail=40 "$s" >&2 || true; done
      die "$(echo "$failed" | tr '\n' ' ')failed (logs above)"
    fi
    if grep -q ' unhealthy$' <<<"$states"; then
      local bad
      bad="$(awk '$2 == "unhealthy" {print $1}' <<<"$states")"
      for s in $bad; do compose logs --no-color --tail=30 "$s" >&2 || true; done
      die "unhealthy: $(echo "$bad" | tr '\n' ' ')(logs above)"
    fi
    # Done when every service is there, healthy, and the one-shot *-init services exited 0.
    pending="$(join -a1 <(echo "$expected") <(echo "$states") |
      awk '!($2 == "healthy" || ($1 ~ /-init$/ && $2 == "exited(0)")) {print $1 "=" ($2 == "" ? "missing" : $2)}' |
      tr '\n' ' ')"
    [ -z "$pending" ] && break
    if [ "$pending" != "$last" ]; then
      say "$((WAIT_TIMEOUT - deadline + SECONDS)) s: waiting for $pending"
      last="$pending"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      compose ps >&2 || true
      die "not healthy after $WAIT_TIMEOUT s: $pending"
    fi
    sleep 2
  done
  say "all services healthy"
}

print_access() {
  local bind airflow_port mlflow_port
  bind="$(env_value ML_BIND_ADDRESS)"
  airflow_port="$(env_value AIRFLOW_PORT)"
  mlflow_port="$(env_value MLFLOW_PORT)"
  [ "$bind" = 0.0.0.0 ] && bind=localhost
  cat <<EOF

  Airflow UI and API  http://$bind:$airflow_port   user $(env_value AIRFLOW_ADMIN_USERNAME), password: AIRFLOW_ADMIN_PASSWORD in $ENV_FILE
  MLflow UI and API   http://$bind:$mlflow_port
  Data directory      $(env_value ML_HOST_DATA_DIR)
  Executor            $(executor_of "$(stack_profile)")

  Stop: scripts/stack.sh down (keeps data)   Remove everything: scripts/stack.sh clean
EOF
}

# docker-compose 1.29 ignores pull_policy and would try a registry for a missing image.
require_images() {
  local image images missing=()
  images="$(compose config | sed -n 's/^ *image: *//p' | sort -u)" || die "compose config failed"
  for image in $images; do
    docker image inspect "$image" >/dev/null 2>&1 || missing+=("$image")
  done
  [ ${#missing[@]} -eq 0 ] || die "images missing: ${missing[*]} (build them with scripts/images.sh)"
}

cmd_up() {
  local start=$SECONDS
  cmd_env
  if [ "${ML_SKIP_BUILD:-0}" != 1 ]; then
    scripts/images.sh all
  fi
  require_images
  say "starting project $PROJECT"
  compose up -d --remove-orphans
  cmd_wait
  say "up in $((SECONDS - start)) s"
  print_access
}

main() {
  local what="${1:-}"
  [ $# -gt 0 ] && shift
  # Compose interpolates the secrets even to stop a stack: every command needs the file.
  case "$what" in env | up) ;; *) [ -f "$ENV_FILE" ] || die "$ENV_FILE is missing: run scripts/stack.sh env (or up) first" ;; esac
  case "$what" in
    env) cmd_env ;;
    up) cmd_up ;;
    wait) cmd_wait ;;
    # With every profile, so a stack is removed whole whichever profile started it.
    down) ML_STACK_PROFILE=celery compose down --remove-orphans ;;
    clean) ML_STACK_PROFILE=celery compose down --volumes --remove-orphans ;;
    ps) compose ps "$@" ;;
    logs) compose logs "$@" ;;
    compose) compose "$@" ;;
    *) die "usage: scripts/stack.sh env|up|wait|down|clean|ps|logs|compose [args]" ;;
  esac
}

# On one line: bash reads a script while running it, and an edit made meanwhile must
# not be read as more commands.
main "$@"; exit $?
