#!/usr/bin/env bash
# Creates a login role and a database it owns for each consumer of the one Postgres server:
# Airflow's metadata DB, MLflow's tracking store and the quantlab paper ledger. Names and
# passwords come from the environment docker-compose.yml gives the postgres container.
#
# The postgres image runs this once, on an empty data directory. It is idempotent, so it can
# be run again to add a missing database or to reset the passwords to the ones in .env:
#   docker compose exec postgres /docker-entrypoint-initdb.d/10-quantlab.sh
set -euo pipefail

require() {
  local name
  for name in "$@"; do
    if [[ -z "${!name:-}" ]]; then
      echo "init.sh: $name is not set; create .env with ./deploy.ps1 init or ./deploy.sh init" >&2
      exit 1
    fi
  done
}

# create_database DB USER PASSWORD_VARIABLE
# The password travels in the environment and is read with psql's \getenv, so it never
# appears in a command line; %I and %L quote the names and the password for SQL.
create_database() {
  local db="$1" user="$2" password_var="$3"
  QUANTLAB_INIT_PASSWORD="${!password_var}" psql \
    --no-psqlrc --quiet --set=ON_ERROR_STOP=1 \
    --username="${POSTGRES_USER:-postgres}" --dbname=postgres \
    --set=db="$db" --set=role="$user" <<'SQL'
\getenv password QUANTLAB_INIT_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec
-- Each role reaches its own database only.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SQL
  echo "init.sh: database $db ready for role $user"
}

require AIRFLOW_DB_NAME AIRFLOW_DB_USER AIRFLOW_DB_PASSWORD \
  MLFLOW_DB_NAME MLFLOW_DB_USER MLFLOW_DB_PASSWORD \
  QUANTLAB_DB_NAME QUANTLAB_DB_USER QUANTLAB_DB_PASSWORD

create_database "$AIRFLOW_DB_NAME" "$AIRFLOW_DB_USER" AIRFLOW_DB_PASSWORD
create_database "$MLFLOW_DB_NAME" "$MLFLOW_DB_USER" MLFLOW_DB_PASSWORD
create_database "$QUANTLAB_DB_NAME" "$QUANTLAB_DB_USER" QUANTLAB_DB_PASSWORD
