#!/usr/bin/env bash
# The deployed stack without Docker: the services docker-compose.yml starts, run as local
# processes from the project's .venv, with the same ports, variables and credentials.
#
#   infra/native/stack.sh up      create .stack/.env with fresh secrets if needed, start
#                                 everything, wait until every service is healthy
#   infra/native/stack.sh down    stop the services this script started (and nothing else)
#   infra/native/stack.sh status  each service, its pid and whether it is healthy
#
# PostgreSQL is the host's server on 127.0.0.1:5432 (started here when it is down); the
# Airflow, MLflow and ledger databases and roles are created by infra/postgres/init.sh, the
# same script the compose postgres service runs. Everything else lives under .stack/
# (git-ignored): .env with the secrets, airflow/ (AIRFLOW_HOME), mlflow-artifacts/, one log
# per service in logs/ and one pidfile per service in run/.
#
# Environment: QUANTLAB_CONFIG (default configs/stack.yaml) is the config the quantlab tasks
# and JupyterLab use; QUANTLAB_START_TIMEOUT (seconds, default 600) bounds the wait for each
# service; PGHOST/PGPORT/PGUSER (default 127.0.0.1, 5432, postgres) reach the server as a
# superuser, and PGPASSWORD is used if your server asks for one.
# EXECUTOR=local (the default, LocalExecutor) or celery (CeleryExecutor: Redis on
# 127.0.0.1:6379 as the broker, started here when it is down, the Airflow database as the
# result backend, and WORKERS `airflow celery worker`s, default 1, named worker<i>@<host>,
# each with CONCURRENCY task slots, default 2). status and down read the mode `up` used.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK="$ROOT/.stack"
STACK_ENV="$STACK/.env"
RUN_DIR="$STACK/run"
LOG_DIR="$STACK/logs"
BIN="$ROOT/.venv/bin"
START_TIMEOUT="${QUANTLAB_START_TIMEOUT:-600}"
PG_HOST="${PGHOST:-127.0.0.1}"
PG_PORT="${PGPORT:-5432}"
PG_SUPERUSER="${PGUSER:-postgres}"
# The scheduler's health server (compose probes it at :8974/health).
SCHEDULER_HEALTH_PORT=8974
# The task log servers the API server reads running tasks' logs from (Airflow's defaults).
WORKER_LOG_PORT=8793
TRIGGER_LOG_PORT=8794
# Start order; `down` stops them in reverse.
BASE_SERVICES="mlflow airflow-apiserver airflow-dag-processor airflow-worker-logs airflow-trigger-logs airflow-triggerer airflow-scheduler jupyter"
SERVICES="$BASE_SERVICES"
# CeleryExecutor mode: the broker (Redis, only when this script had to start it) and the workers.
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
CELERY_APP=airflow.providers.celery.executors.celery_executor.app
# A killed worker's running tasks are failed (then retried) after this many seconds without a
# heartbeat; Airflow's default is 300.
CELERY_HEARTBEAT_TIMEOUT=90

die() {
  printf 'stack.sh: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# --- secrets --------------------------------------------------------------------------------

# .stack/.env is written by deploy.sh's own `init` (its generator and its .env.example), only
# pointed at another file: sourcing deploy.sh with `help` defines its functions and prints
# the usage, which is discarded. Postgres is the host's server here, on its own port.
init_env() {
  [[ ! -f "$STACK_ENV" ]] || return 0
  mkdir -p "$STACK"
  chmod 700 "$STACK"
  (
    # shellcheck disable=SC1091 # deploy.sh is read at run time
    source "$ROOT/deploy.sh" help >/dev/null
    # shellcheck disable=SC2034 # read by deploy.sh's cmd_init
    ENV_FILE="$STACK_ENV"
    cmd_init >/dev/null
  ) || die "could not create $STACK_ENV with deploy.sh's generator."
  local tmp="$STACK_ENV.tmp" line
  (
    umask 077
    while IFS= read -r line || [[ -n "$line" ]]; do
      case "$line" in
        POSTGRES_PORT=*) line="POSTGRES_PORT=$PG_PORT" ;;
        POSTGRES_PASSWORD=*) printf '%s\n' "# (make stack: unused, the host's PostgreSQL keeps its own superuser password)" ;;
      esac
      printf '%s\n' "$line"
    done <"$STACK_ENV" >"$tmp"
  )
  mv "$tmp" "$STACK_ENV"
  echo "Wrote $STACK_ENV with fresh secrets (git-ignored)."
}

# Reads .stack/.env into shell variables named ENV_<KEY>; nothing is exported here, each
# service gets only the variables it needs, as in docker-compose.yml.
load_env() {
  [[ -f "$STACK_ENV" ]] || die "$STACK_ENV does not exist; run infra/native/stack.sh up (make stack)."
  local line
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%$'\r'}"
    if [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([^[:space:]]*) ]]; then
      printf -v "ENV_${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
    fi
  done <"$STACK_ENV"
}

env_get() {
  local name="ENV_$1"
  printf '%s' "${!name:-${2:-}}"
}

require_secret() {
  local name
  for name in "$@"; do
    [[ -n "$(env_get "$name")" ]] || die "$STACK_ENV has no value for $name; delete the file and run up again to regenerate it."
  done
}

# --- processes ------------------------------------------------------------------------------

pidfile() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
# When a process started, as one word (ps's lstart with spaces as underscores).
started_at() { ps -o lstart= -p "$1" 2>/dev/null | awk '{ $1 = $1; gsub(/ /, "_"); print }'; }
logfile() { printf '%s/%s.log' "$LOG_DIR" "$1"; }
# Running, and not a zombie waiting to be reaped.
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ -n "$state" && "$state" != Z* ]]
}

# A pidfile holds the pid and the process's start time, so a recycled pid is never taken for
# a service: the process must still be alive, lead its own process group and have started then.
service_pid() {
  local file pid started
  file="$(pidfile "$1")"
  [[ -f "$file" ]] || return 1
  read -r pid started <"$file" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]] || return 1
  [[ -n "$started" && "$(started_at "$pid")" == "$started" ]] || return 1
  printf '%s' "$pid"
}

# start_service NAME COMMAND...: runs COMMAND in the background in a session of its own
# (so `down` can stop it with all its children), stdout and stderr to .stack/logs/NAME.log.
start_service() {
  local name="$1" log pid started
  shift
  if pid="$(service_pid "$name")"; then
    echo "$name is already running (pid $pid)"
    return 0
  fi
  log="$(logfile "$name")"
  printf '\n=== %s: starting %s\n' "$(date '+%F %T')" "$name" >>"$log"
  (
    cd "$ROOT"
    exec setsid "$@" >>"$log" 2>&1 </dev/null
  ) &
  pid=$!
  started="$(started_at "$pid")"
  printf '%s %s\n' "$pid" "$started" >"$(pidfile "$name")"
  echo "started $name (pid $pid, log ${log#"$ROOT"/})"
}

# Every descendant of PID, children first found by walking `ps` (portable to macOS).
descendants() {
  local all queue=("$1") next child
  all="$(ps -A -o pid=,ppid=)"
  while ((${#queue[@]})); do
    next=("${queue[@]}")
    queue=()
    while read -r child; do
      printf '%s\n' "$child"
      queue+=("$child")
    done < <(awk -v p="${next[*]}" 'BEGIN { split(p, a, " "); for (i in a) s[a[i]] = 1 } ($2 in s) { print $1 }' <<<"$all")
  done
}

stop_service() {
  local name="$1" pid tree deadline left p
  if ! pid="$(service_pid "$name")"; then
    rm -f "$(pidfile "$name")"
    return 0
  fi
  # Children that started sessions of their own (task processes) leave the group: take the
  # whole tree now, then signal the group and every process found.
  tree="$(descendants "$pid" | tr '\n' ' ')"
  echo "stopping $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || true
  # shellcheck disable=SC2086 # one argument per pid
  [[ -z "$tree" ]] || kill -TERM $tree 2>/dev/null || true
  deadline=$((SECONDS + 30))
  while :; do
    left=""
    for p in $pid $tree; do
      if alive "$p"; then left="$left $p"; fi
    done
    [[ -n "$left" ]] || break
    if ((SECONDS >= deadline)); then
      echo "$name did not stop within 30s; killing$left"
      kill -KILL -- "-$pid" 2>/dev/null || true
      # shellcheck disable=SC2086 # one argument per pid
      kill -KILL $left 2>/dev/null || true
      break
    fi
    sleep 1
  done
  rm -f "$(pidfile "$name")"
}

port_in_use() {
  (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

http_ok() {
  curl --fail --silent --show-error --max-time 5 --output /dev/null "$1" 2>/dev/null
}

# wait_healthy NAME CHECK...: polls CHECK until it succeeds; fails naming the service and its
# log when the process exits or QUANTLAB_START_TIMEOUT passes.
wait_healthy() {
  local name="$1" deadline=$((SECONDS + START_TIMEOUT)) log
  shift
  log="$(logfile "$name")"
  until "$@"; do
    if ! service_pid "$name" >/dev/null; then
      tail -n 30 "$log" >&2 || true
      die "$name exited while starting; read its log: $log (make stack-down stops the others)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$log" >&2 || true
      die "$name is not healthy after ${START_TIMEOUT}s; read its log: $log (make stack-down stops the others)"
    fi
    sleep 3
  done
  echo "$name is healthy"
}

# --- PostgreSQL -----------------------------------------------------------------------------

pg_up() {
  pg_isready --host="$PG_HOST" --port="$PG_PORT" --quiet 2>/dev/null
}

ensure_postgres() {
  command -v pg_isready >/dev/null 2>&1 || die "pg_isready was not found; install the PostgreSQL client and server (e.g. apt-get install postgresql)."
  command -v psql >/dev/null 2>&1 ||
    die "psql was not found; install the PostgreSQL client and server (e.g. apt-get install postgresql)."
  pg_up && return 0
  echo "PostgreSQL is not answering on $PG_HOST:$PG_PORT: starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]]; then
    local version
    for version in /etc/postgresql/*/; do
      version="$(basename "$version")"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  fi
  local _
  for _ in $(seq 1 30); do
    pg_up && return 0
    sleep 1
  done
  die "PostgreSQL is not answering on $PG_HOST:$PG_PORT; start it (pg_ctlcluster <version> main start) and try again."
}

# --- Redis (CeleryExecutor mode) ------------------------------------------------------------

# Answers PING with +PONG (bash's /dev/tcp, no redis-cli needed).
redis_up() {
  local reply
  reply="$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT" || exit 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 3 line <&3 && printf '%s' "$line"
  )" || return 1
  [[ "$reply" == +PONG* ]]
}

# A Redis already answering (the host's, or one .ci/run started) is used and left alone;
# otherwise this script starts one on 127.0.0.1 as the `redis` service, which `down` stops.
# It holds task messages only: no snapshots, no append-only file.
ensure_redis() {
  redis_up && return 0
  local server
  server="$(command -v redis-server)" ||
    die "Redis is not answering on $REDIS_HOST:$REDIS_PORT and redis-server was not found; install it (apt-get install redis-server)."
  echo "Redis is not answering on $REDIS_HOST:$REDIS_PORT: starting it"
  start_service redis "$server" --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no
  set_services
  wait_healthy redis redis_up
}

# The compose postgres service runs infra/postgres/init.sh on its first start; it is
# idempotent, so here it runs on every `up` and resets the passwords to those in .stack/.env.
# The passwords reach it through the environment of a subshell, never as arguments of a
# command (`env VAR=secret ...`), which anyone on the machine could read with `ps`.
init_databases() {
  local log
  log="$(logfile postgres-init)"
  if ! (
    export PGHOST="$PG_HOST" PGPORT="$PG_PORT" POSTGRES_USER="$PG_SUPERUSER"
    AIRFLOW_DB_NAME="$(env_get AIRFLOW_DB_NAME airflow)"
    AIRFLOW_DB_USER="$(env_get AIRFLOW_DB_USER airflow)"
    AIRFLOW_DB_PASSWORD="$(env_get AIRFLOW_DB_PASSWORD)"
    MLFLOW_DB_NAME="$(env_get MLFLOW_DB_NAME mlflow)"
    MLFLOW_DB_USER="$(env_get MLFLOW_DB_USER mlflow)"
    MLFLOW_DB_PASSWORD="$(env_get MLFLOW_DB_PASSWORD)"
    QUANTLAB_DB_NAME="$(env_get QUANTLAB_DB_NAME quantlab)"
    QUANTLAB_DB_USER="$(env_get QUANTLAB_DB_USER quantlab)"
    QUANTLAB_DB_PASSWORD="$(env_get QUANTLAB_DB_PASSWORD)"
    export AIRFLOW_DB_NAME AIRFLOW_DB_USER AIRFLOW_DB_PASSWORD MLFLOW_DB_NAME MLFLOW_DB_USER \
      MLFLOW_DB_PASSWORD QUANTLAB_DB_NAME QUANTLAB_DB_USER QUANTLAB_DB_PASSWORD
    exec "$ROOT/infra/postgres/init.sh"
  ) >"$log" 2>&1; then
    cat "$log" >&2
    die "infra/postgres/init.sh failed (log: $log); $PG_SUPERUSER must be able to create roles and databases on $PG_HOST:$PG_PORT."
  fi
}

# --- the services' environments (docker-compose.yml's x-quantlab-env and x-airflow-common) --

export_quantlab_env() {
  export QUANTLAB_HOME="$ROOT"
  export QUANTLAB_CONFIG="$CONFIG"
  export QUANTLAB_DB_HOST="$PG_HOST"
  export QUANTLAB_DB_PORT="$PG_PORT"
  QUANTLAB_DB_NAME="$(env_get QUANTLAB_DB_NAME quantlab)"
  QUANTLAB_DB_USER="$(env_get QUANTLAB_DB_USER quantlab)"
  QUANTLAB_DB_PASSWORD="$(env_get QUANTLAB_DB_PASSWORD)"
  export QUANTLAB_DB_NAME QUANTLAB_DB_USER QUANTLAB_DB_PASSWORD
  export MLFLOW_TRACKING_URI="http://127.0.0.1:$MLFLOW_PORT"
  export MLFLOW_ENABLE_TELEMETRY=false GX_ANALYTICS_ENABLED=false DO_NOT_TRACK=true
  export PATH="$BIN:$PATH"
}

export_airflow_env() {
  export_quantlab_env
  export AIRFLOW_HOME="$STACK/airflow"
  export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
  export AIRFLOW__CORE__EXECUTOR=LocalExecutor
  AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://$(env_get AIRFLOW_DB_USER airflow):$(env_get AIRFLOW_DB_PASSWORD)@$PG_HOST:$PG_PORT/$(env_get AIRFLOW_DB_NAME airflow)"
  AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="$(env_get AIRFLOW_ADMIN_USER admin):admin"
  AIRFLOW__CORE__FERNET_KEY="$(env_get AIRFLOW_FERNET_KEY)"
  AIRFLOW__API_AUTH__JWT_SECRET="$(env_get AIRFLOW_JWT_SECRET)"
  AIRFLOW__API__SECRET_KEY="$(env_get AIRFLOW_API_SECRET_KEY)"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS
  export AIRFLOW__CORE__FERNET_KEY AIRFLOW__API_AUTH__JWT_SECRET AIRFLOW__API__SECRET_KEY
  export AIRFLOW__CORE__LOAD_EXAMPLES=false
  export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=true
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW_PORT/execution/"
  export AIRFLOW__API_AUTH__JWT_ISSUER=quantlab
  export AIRFLOW__API__HOST=127.0.0.1
  export AIRFLOW__API__PORT="$AIRFLOW_PORT"
  export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$STACK/airflow/auth/passwords.json"
  export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=true
  export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST=127.0.0.1
  export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT="$SCHEDULER_HEALTH_PORT"
  # Every component names its host 127.0.0.1 (urllib.request.localhost() is that address),
  # so the API server fetches running tasks' logs from the log servers on 127.0.0.1; the
  # machine's name may resolve to another address (127.0.1.1 on Debian).
  export AIRFLOW__CORE__HOSTNAME_CALLABLE=urllib.request.localhost
  export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="$WORKER_LOG_PORT"
  export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="$TRIGGER_LOG_PORT"
  if [[ "$EXECUTOR" == celery ]]; then
    # docker-compose.yml's celery profile: Redis as the broker, the Airflow database as the
    # result backend (the password travels in the environment, as the metadata DB's does).
    export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
    export AIRFLOW__CELERY__BROKER_URL="redis://$REDIS_HOST:$REDIS_PORT/0"
    AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql://$(env_get AIRFLOW_DB_USER airflow):$(env_get AIRFLOW_DB_PASSWORD)@$PG_HOST:$PG_PORT/$(env_get AIRFLOW_DB_NAME airflow)"
    export AIRFLOW__CELERY__RESULT_BACKEND
    export AIRFLOW__CELERY__WORKER_CONCURRENCY="$CONCURRENCY"
    export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="$CELERY_HEARTBEAT_TIMEOUT"
  fi
}

# --- executor mode --------------------------------------------------------------------------

worker_names() {
  local i
  for ((i = 1; i <= WORKERS; i++)); do printf 'airflow-worker%d ' "$i"; done
}

# EXECUTOR/WORKERS/CONCURRENCY from the caller (`up`): local, or celery with N workers.
resolve_executor() {
  case "${EXECUTOR:-local}" in
    local | LocalExecutor) EXECUTOR=local ;;
    celery | CeleryExecutor) EXECUTOR=celery ;;
    *) die "EXECUTOR is '${EXECUTOR}'; set it to local (LocalExecutor) or celery (CeleryExecutor)." ;;
  esac
  WORKERS="${WORKERS:-1}"
  CONCURRENCY="${CONCURRENCY:-2}"
  [[ "$WORKERS" =~ ^[1-9][0-9]?$ ]] || die "WORKERS is '$WORKERS'; give the number of Celery workers (1 to 99)."
  [[ "$CONCURRENCY" =~ ^[1-9][0-9]?$ ]] || die "CONCURRENCY is '$CONCURRENCY'; give the task slots per worker (1 to 99)."
  [[ "$EXECUTOR" == celery ]] || WORKERS=0
  set_services
}

# The mode `up` recorded in .stack/run/executor ("local", or "celery <workers> <concurrency>"),
# for status and down; with no record, every worker pidfile there is covered.
recorded_executor() {
  local mode="" workers="" concurrency="" file
  if [[ -f "$RUN_DIR/executor" ]]; then read -r mode workers concurrency <"$RUN_DIR/executor" || true; fi
  EXECUTOR="${mode:-local}"
  WORKERS="${workers:-0}"
  CONCURRENCY="${concurrency:-2}"
  for file in "$RUN_DIR"/airflow-worker[0-9]*.pid; do
    [[ -f "$file" ]] || continue
    file="${file##*/airflow-worker}"
    file="${file%.pid}"
    ((file <= WORKERS)) || WORKERS="$file"
  done
  set_services
}

set_services() {
  SERVICES="$BASE_SERVICES"
  # Redis is one of them only when this script started it (a pidfile).
  if [[ -f "$(pidfile redis)" ]]; then SERVICES="redis $SERVICES"; fi
  ((WORKERS == 0)) || SERVICES="$SERVICES $(worker_names)"
  SERVICES="${SERVICES% }"
}

executor_record() {
  if [[ "$EXECUTOR" == celery ]]; then echo "celery $WORKERS $CONCURRENCY"; else echo local; fi
}

# Every worker has its own Celery hostname, log and pidfile. They run with --skip-serve-logs:
# Airflow's API server fetches a running task's log from <ti.hostname>:WORKER_LOG_SERVER_PORT,
# one port for every worker, and all of them write under the same AIRFLOW_HOME/logs, so
# airflow-worker-logs (127.0.0.1:8793) serves them all; their own log servers would listen on
# every interface, on one port they would fight over.
start_workers() {
  local i
  for ((i = 1; i <= WORKERS; i++)); do
    start_service "airflow-worker$i" "$BIN/airflow" celery worker --celery-hostname "worker$i@%h" \
      --concurrency "$CONCURRENCY" --skip-serve-logs
  done
}

# celery inspect ping: true when the worker answers through the broker.
celery_worker_ok() {
  (
    export_airflow_env
    "$BIN/celery" --app "$CELERY_APP" inspect ping --timeout 10 -d "$1@$(hostname)" >/dev/null 2>&1
  )
}

# Airflow's scheduler and triggerer start their log servers on every interface, with no
# setting to change that; they run with --skip-serve-logs and these serve the same logs (the
# same app, signed requests only) on 127.0.0.1.
start_log_server() {
  start_service "$1" "$BIN/python" -m uvicorn airflow.utils.serve_logs.log_server:get_app --factory \
    --host=127.0.0.1 --port="$2" --no-access-log --log-level=warning
}

# docker-compose.yml's airflow-init: migrate the metadata DB, write the admin password.
airflow_init() {
  local log
  log="$(logfile airflow-init)"
  mkdir -p "$STACK/airflow/auth"
  chmod 700 "$STACK/airflow/auth"
  echo "airflow-init: migrating the metadata database (log ${log#"$ROOT"/})"
  if ! (
    export_airflow_env
    AIRFLOW_ADMIN_USER="$(env_get AIRFLOW_ADMIN_USER admin)"
    AIRFLOW_ADMIN_PASSWORD="$(env_get AIRFLOW_ADMIN_PASSWORD)"
    export AIRFLOW_ADMIN_USER AIRFLOW_ADMIN_PASSWORD
    "$BIN/airflow" db migrate
    # dags/_quantlab.CATALOG_POOL: the research and retrain DAGs run one stage at a time.
    "$BIN/airflow" pools set quantlab_catalog 1 "research and retrain DAGs: one stage at a time" >/dev/null
    "$BIN/python" - <<'PY'
import json, os
path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
passwords = {os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}
tmp = path + ".tmp"
with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
    json.dump(passwords, f)
os.replace(tmp, path)
print("Airflow admin user set from .stack/.env:", ", ".join(passwords))
PY
  ) >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "airflow-init failed; read its log: $log"
  fi
}

# --- commands -------------------------------------------------------------------------------

read_ports() {
  AIRFLOW_PORT="$(env_get AIRFLOW_PORT 8080)"
  MLFLOW_PORT="$(env_get MLFLOW_PORT 5000)"
  JUPYTER_PORT="$(env_get JUPYTER_PORT 8888)"
}

# The port each service answers on, for the "port taken by another program" check.
service_port() {
  case "$1" in
    mlflow) echo "$MLFLOW_PORT" ;;
    airflow-apiserver) echo "$AIRFLOW_PORT" ;;
    airflow-scheduler) echo "$SCHEDULER_HEALTH_PORT" ;;
    airflow-worker-logs) echo "$WORKER_LOG_PORT" ;;
    airflow-trigger-logs) echo "$TRIGGER_LOG_PORT" ;;
    jupyter) echo "$JUPYTER_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
  esac
}

check_ports() {
  local name port
  for name in $SERVICES; do
    port="$(service_port "$name")"
    [[ -n "$port" ]] || continue
    if ! service_pid "$name" >/dev/null && port_in_use "$port"; then
      die "port $port (for $name) is taken by another program; stop it, or set its port in $STACK_ENV."
    fi
  done
}

airflow_job_alive() {
  (
    export_airflow_env
    "$BIN/airflow" jobs check --job-type "$1" --local >/dev/null 2>&1
  )
}

start_all() {
  local jupyter_args=()
  # JupyterLab refuses to run as root unless told; compose runs it as AIRFLOW_UID.
  [[ "$(id -u)" != 0 ]] || jupyter_args+=(--allow-root)
  mkdir -p "$STACK/mlflow-artifacts"

  (
    export_quantlab_env
    MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://$(env_get MLFLOW_DB_USER mlflow):$(env_get MLFLOW_DB_PASSWORD)@$PG_HOST:$PG_PORT/$(env_get MLFLOW_DB_NAME mlflow)"
    export MLFLOW_BACKEND_STORE_URI
    export MLFLOW_SERVER_ALLOWED_HOSTS="localhost,localhost:*,127.0.0.1,127.0.0.1:*"
    # MLflow 3.x also starts a pool of job workers (GenAI evaluation jobs) that quantlab
    # does not use; they would cost a core while everything starts on a shared machine.
    export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
    start_service mlflow "$BIN/mlflow" server --host=127.0.0.1 --port="$MLFLOW_PORT" --workers=2 \
      --serve-artifacts --artifacts-destination="$STACK/mlflow-artifacts"
  )
  (
    export_airflow_env
    start_service airflow-apiserver "$BIN/airflow" api-server
    start_service airflow-dag-processor "$BIN/airflow" dag-processor
    start_log_server airflow-worker-logs "$WORKER_LOG_PORT"
    start_log_server airflow-trigger-logs "$TRIGGER_LOG_PORT"
    start_service airflow-triggerer "$BIN/airflow" triggerer --skip-serve-logs
  )
  wait_healthy mlflow http_ok "http://127.0.0.1:$MLFLOW_PORT/health"
  wait_healthy airflow-apiserver http_ok "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health"
  # LocalExecutor runs the tasks under the scheduler: they need the Execution API and MLflow.
  (
    export_airflow_env
    start_service airflow-scheduler "$BIN/airflow" scheduler --skip-serve-logs
  )
  (
    export_quantlab_env
    JUPYTER_TOKEN="$(env_get JUPYTER_TOKEN)"
    export JUPYTER_TOKEN
    start_service jupyter "$BIN/jupyter" lab --ip=127.0.0.1 --port="$JUPYTER_PORT" --no-browser \
      --ServerApp.root_dir="$ROOT" "${jupyter_args[@]}"
  )
  wait_healthy airflow-scheduler http_ok "http://127.0.0.1:$SCHEDULER_HEALTH_PORT/health"
  wait_healthy jupyter http_ok "http://127.0.0.1:$JUPYTER_PORT/api"
  wait_healthy airflow-dag-processor airflow_job_alive DagProcessorJob
  wait_healthy airflow-worker-logs port_in_use "$WORKER_LOG_PORT"
  wait_healthy airflow-trigger-logs port_in_use "$TRIGGER_LOG_PORT"
  wait_healthy airflow-triggerer airflow_job_alive TriggererJob
  if [[ "$EXECUTOR" == celery ]]; then
    (
      export_airflow_env
      start_workers
    )
    local i
    for ((i = 1; i <= WORKERS; i++)); do wait_healthy "airflow-worker$i" celery_worker_ok "worker$i"; done
  fi
}

resolve_config() {
  local config="${QUANTLAB_CONFIG:-configs/stack.yaml}"
  [[ "$config" == /* ]] || config="$ROOT/$config"
  [[ -f "$config" ]] || die "QUANTLAB_CONFIG $config does not exist."
  CONFIG="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
}

any_running() {
  local name
  for name in $SERVICES; do
    if service_pid "$name" >/dev/null; then return 0; fi
  done
  return 1
}

cmd_up() {
  [[ -x "$BIN/airflow" && -x "$BIN/mlflow" && -x "$BIN/jupyter" ]] ||
    die "$BIN lacks airflow, mlflow or jupyter; run 'make env' (uv sync) first."
  command -v curl >/dev/null 2>&1 || die "curl was not found; it probes the services' health endpoints."
  resolve_config
  resolve_executor
  if any_running && [[ -f "$RUN_DIR/config" && "$(cat "$RUN_DIR/config")" != "$CONFIG" ]]; then
    die "the stack is running with QUANTLAB_CONFIG=$(cat "$RUN_DIR/config"); run 'make stack-down' before starting it with $CONFIG."
  fi
  if any_running && [[ -f "$RUN_DIR/executor" && "$(cat "$RUN_DIR/executor")" != "$(executor_record)" ]]; then
    die "the stack is running with EXECUTOR=$(cat "$RUN_DIR/executor"); run 'make stack-down' before starting it with $(executor_record)."
  fi
  [[ "$EXECUTOR" != celery ]] || [[ -x "$BIN/celery" ]] ||
    die "$BIN lacks celery; run 'make env' (uv sync installs apache-airflow-providers-celery) first."
  ensure_postgres
  init_env
  load_env
  require_secret AIRFLOW_DB_PASSWORD MLFLOW_DB_PASSWORD QUANTLAB_DB_PASSWORD AIRFLOW_ADMIN_PASSWORD \
    AIRFLOW_JWT_SECRET AIRFLOW_API_SECRET_KEY AIRFLOW_FERNET_KEY JUPYTER_TOKEN
  read_ports
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  check_ports
  printf '%s\n' "$CONFIG" >"$RUN_DIR/config"
  executor_record >"$RUN_DIR/executor"
  init_databases
  [[ "$EXECUTOR" != celery ]] || ensure_redis
  airflow_init
  start_all
  cat <<EOF

quantlab stack is up (QUANTLAB_CONFIG=${CONFIG#"$ROOT"/}, $(executor_summary)).
  Airflow     http://localhost:$AIRFLOW_PORT  (login: AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD in .stack/.env)
  MLflow      http://localhost:$MLFLOW_PORT
  JupyterLab  http://localhost:$JUPYTER_PORT/lab  (token: JUPYTER_TOKEN in .stack/.env)
  PostgreSQL  $PG_HOST:$PG_PORT  (databases airflow, mlflow, quantlab; users and passwords in .stack/.env)
  Logs        .stack/logs/   Stop with: make stack-down
EOF
}

executor_summary() {
  if [[ "$EXECUTOR" == celery ]]; then
    echo "CeleryExecutor: $WORKERS worker(s) x $CONCURRENCY slots, broker redis://$REDIS_HOST:$REDIS_PORT/0"
  else
    echo LocalExecutor
  fi
}

cmd_down() {
  local name reversed=""
  recorded_executor
  # The workers first (a warm shutdown lets their running tasks end), then the rest in
  # reverse start order; Redis goes only if this script started it.
  for name in $SERVICES; do reversed="$name $reversed"; done
  for name in $reversed; do stop_service "$name"; done
  rm -f "$RUN_DIR/config" "$RUN_DIR/executor"
  echo "quantlab stack is stopped (databases, .stack/.env and artifacts are kept)."
}

cmd_status() {
  local name pid health port url code=0
  if [[ -f "$STACK_ENV" ]]; then load_env; fi
  CONFIG="$(cat "$RUN_DIR/config" 2>/dev/null || echo "$ROOT/configs/stack.yaml")"
  read_ports
  recorded_executor
  [[ ! -f "$RUN_DIR/config" ]] || echo "QUANTLAB_CONFIG=$(cat "$RUN_DIR/config")"
  [[ ! -f "$RUN_DIR/executor" ]] || echo "EXECUTOR=$(cat "$RUN_DIR/executor")"
  for name in $SERVICES; do
    if pid="$(service_pid "$name")"; then
      port="$(service_port "$name")"
      health="unhealthy"
      case "$name" in
        airflow-apiserver) url="http://127.0.0.1:$port/api/v2/monitor/health" ;;
        mlflow | airflow-scheduler) url="http://127.0.0.1:$port/health" ;;
        jupyter) url="http://127.0.0.1:$port/api" ;;
        *) url="" ;;
      esac
      if [[ -n "$url" ]] && http_ok "$url"; then
        health="healthy"
      elif [[ "$name" == airflow-dag-processor ]] && airflow_job_alive DagProcessorJob; then
        health="healthy"
      elif [[ "$name" == airflow-triggerer ]] && airflow_job_alive TriggererJob; then
        health="healthy"
      elif [[ "$name" == airflow-*-logs ]] && port_in_use "$port"; then
        health="healthy"
      elif [[ "$name" == redis ]] && redis_up; then
        health="healthy"
      elif [[ "$name" == airflow-worker[0-9]* ]] && celery_worker_ok "${name#airflow-}"; then
        health="healthy"
      fi
      [[ "$health" == healthy ]] || code=1
      printf '%-22s pid %-8s %s\n' "$name" "$pid" "$health"
    else
      printf '%-22s %s\n' "$name" "stopped"
      code=1
    fi
  done
  return "$code"
}

# Like containers, the services do not inherit the caller's Airflow settings (the Makefile
# exports the embedded default's AIRFLOW_HOME and friends).
forget_airflow_env() {
  local name
  for name in $(compgen -e); do
    case "$name" in
      AIRFLOW_HOME | AIRFLOW__*) unset "$name" ;;
    esac
  done
}

main() {
  forget_airflow_env
  [[ $# -eq 1 ]] || {
    usage >&2
    exit 2
  }
  case "$1" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    help | -h | --help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
