#!/usr/bin/env bash
# First start: create the cluster in the (empty) volume, then one database and one
# login role per application, each with its own generated password:
#   airflow / AIRFLOW_DB_PASSWORD   (Airflow metadata)
#   mlflow  / MLFLOW_DB_PASSWORD    (MLflow tracking and registry)
# POSTGRES_PASSWORD is the superuser's, used for administration only.
# Later starts find PG_VERSION in the volume and go straight to the server.
set -euo pipefail

: "${POSTGRES_PASSWORD:?must be set (scripts/stack.sh env generates it into .env)}"
: "${AIRFLOW_DB_PASSWORD:?must be set}"
: "${MLFLOW_DB_PASSWORD:?must be set}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "ml-postgres: initialising a new cluster in $PGDATA"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username=postgres --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  {
    echo "listen_addresses = '*'"
  } >>"$PGDATA/postgresql.conf"
  {
    echo "host all all 0.0.0.0/0 scram-sha-256"
    echo "host all all ::/0 scram-sha-256"
  } >>"$PGDATA/pg_hba.conf"

  # A server on the socket only, so nobody connects before the roles exist.
  pg_ctl --silent --wait --options="-c listen_addresses=''" start
  # \getenv reads the passwords from the environment and :'name' quotes them, so they
  # appear neither in a command line nor unquoted in SQL.
  psql --quiet --no-psqlrc --set=ON_ERROR_STOP=1 --username=postgres --dbname=postgres <<'SQL'
\getenv airflow_pw AIRFLOW_DB_PASSWORD
\getenv mlflow_pw MLFLOW_DB_PASSWORD
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE DATABASE mlflow OWNER mlflow;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
SQL
  pg_ctl --silent --wait --mode=fast stop
  echo "ml-postgres: databases airflow and mlflow created"
fi

exec postgres "$@"
