#!/usr/bin/env bash
# Runs the quantlab stack (PostgreSQL, Airflow, MLflow, JupyterLab) with Docker Compose.
# The same commands as deploy.ps1, for Linux and macOS (bash 3.2 or later):
#
#   ./deploy.sh init            write .env from .env.example with fresh random secrets
#   ./deploy.sh start           init if needed, build, start, wait until every service is healthy
#   ./deploy.sh stop            stop and remove the containers (volumes are kept)
#   ./deploy.sh restart         stop, then start
#   ./deploy.sh status          list the containers and their health
#   ./deploy.sh logs [service]  follow the logs of one service, or of all
#   ./deploy.sh clean           after confirmation, remove containers AND volumes (all data)
#
# QUANTLAB_START_TIMEOUT (seconds, default 600) bounds the wait for healthy services.
# AIRFLOW_EXECUTOR=CeleryExecutor and AIRFLOW_WORKERS=N in .env add the `celery` profile: Redis
# as the broker, the Airflow database as the result backend and N workers (worker@<container>);
# by hand: docker compose --profile celery up -d --scale airflow-worker=N
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV_FILE="$ROOT/.env"
ENV_EXAMPLE="$ROOT/.env.example"
COMPOSE_FILE="$ROOT/docker-compose.yml"
START_TIMEOUT="${QUANTLAB_START_TIMEOUT:-600}"
# Bind-mounted directories the stack writes to and git does not track; created here so that
# they belong to you rather than to the root user Docker would create them as.
RUNTIME_DIRS="data experiments"

die() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

require_docker() {
  command -v docker >/dev/null 2>&1 ||
    die "docker was not found on PATH. Install Docker Engine or Docker Desktop (https://docs.docker.com/get-docker/) and try again."
  docker info >/dev/null 2>&1 ||
    die "Docker is installed but its engine is not running ('docker info' failed). Start Docker and try again."
  docker compose version >/dev/null 2>&1 ||
    die "the Docker Compose v2 plugin is missing ('docker compose version' failed). Install it (docker-compose-plugin) and try again."
}

require_env() {
  [[ -f "$ENV_FILE" ]] || die "$ENV_FILE does not exist. Run ./deploy.sh init (or start) first."
}

# AIRFLOW_EXECUTOR in .env picks the executor; CeleryExecutor also needs the `celery` profile
# (Redis and the workers), so every compose call gets it and the two never disagree.
profile_args() {
  [[ -f "$ENV_FILE" ]] || return 0
  case "$(env_value AIRFLOW_EXECUTOR LocalExecutor)" in
    LocalExecutor) ;;
    CeleryExecutor) printf '%s\n' --profile celery ;;
    *) die "AIRFLOW_EXECUTOR in $ENV_FILE is '$(env_value AIRFLOW_EXECUTOR '')'; set it to LocalExecutor or CeleryExecutor." ;;
  esac
}

compose() {
  local profiles
  profiles="$(profile_args)" || exit 1
  # shellcheck disable=SC2086 # word splitting of the two profile words is wanted
  docker compose --project-directory "$ROOT" --file "$COMPOSE_FILE" --env-file "$ENV_FILE" $profiles "$@"
}

random_hex() {
  od -An -v -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Fernet wants the url-safe base64 of 32 random bytes.
random_fernet_key() {
  head -c 32 /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_'
}

# Prints a fresh value for a secret variable of .env.example; fails for any other variable.
# Hex keeps passwords safe inside the postgresql:// URLs built from them.
secret_for() {
  case "$1" in
    POSTGRES_PASSWORD | AIRFLOW_DB_PASSWORD | MLFLOW_DB_PASSWORD | QUANTLAB_DB_PASSWORD | \
      AIRFLOW_ADMIN_PASSWORD | JUPYTER_TOKEN) random_hex 24 ;;
    AIRFLOW_JWT_SECRET | AIRFLOW_API_SECRET_KEY) random_hex 32 ;;
    AIRFLOW_FERNET_KEY) random_fernet_key ;;
    *) return 1 ;;
  esac
}

env_value() {
  local value
  value="$(sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1)"
  printf '%s' "${value:-$2}"
}

cmd_init() {
  [[ ! -e "$ENV_FILE" ]] ||
    die "$ENV_FILE already exists; refusing to overwrite it (its passwords are the ones your volumes were created with). To start over: ./deploy.sh clean, then delete .env."
  [[ -f "$ENV_EXAMPLE" ]] || die "$ENV_EXAMPLE is missing; it is the template for .env."

  local uid content="" line key value
  uid="$(id -u)"
  # Root inside the containers would make JupyterLab refuse to start; use the image's user.
  [[ "$uid" != 0 ]] || uid=50000
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%$'\r'}"
    if [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
      key="${BASH_REMATCH[1]}"
      value="${BASH_REMATCH[2]}"
      if [[ "$key" == AIRFLOW_UID ]]; then
        value="$uid"
      elif [[ -z "$value" ]]; then
        value="$(secret_for "$key")" ||
          die "$ENV_EXAMPLE leaves $key empty but deploy.sh has no generator for it; add it to secret_for."
      fi
      line="$key=$value"
    fi
    content="$content$line"$'\n'
  done <"$ENV_EXAMPLE"

  # noclobber makes the redirection fail if .env appeared meanwhile; umask keeps it private.
  (
    umask 077
    set -o noclobber
    printf '%s' "$content" >"$ENV_FILE"
  ) || die "could not create $ENV_FILE."
  echo "Wrote $ENV_FILE with fresh secrets."
  echo "Airflow login: AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD in .env; Jupyter token: JUPYTER_TOKEN in .env."
}

# Waits until every service with a healthcheck is healthy and every one-shot job has exited 0.
# Fails at once when a container is unhealthy or has exited with an error.
wait_healthy() {
  local deadline=$((SECONDS + START_TIMEOUT)) services ids states svc line state health code
  local pending failed
  services="$(compose config --services)"
  while :; do
    pending=""
    failed=""
    ids="$(compose ps --all --quiet)"
    states=""
    if [[ -n "$ids" ]]; then
      # shellcheck disable=SC2086 # one argument per container id
      states="$(docker inspect --format \
        '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}' \
        $ids 2>/dev/null || true)"
    fi
    for svc in $services; do
      # awk reads to the end: an early exit could close the pipe while bash's printf, line
      # buffered, still writes, and pipefail would turn that SIGPIPE (141) into a failed start.
      line="$(printf '%s\n' "$states" | awk -v s="$svc" '$1 == s && !seen++ { print }')"
      if [[ -z "$line" ]]; then
        pending="$pending $svc(not created)"
        continue
      fi
      read -r _ state health code <<<"$line"
      case "$state/$health" in
        running/healthy) ;;
        exited/none) [[ "$code" == 0 ]] || failed="$failed $svc(exited with code $code)" ;;
        */unhealthy) failed="$failed $svc(unhealthy)" ;;
        exited/* | dead/*) failed="$failed $svc($state, exit code $code)" ;;
        *) pending="$pending $svc($state/$health)" ;;
      esac
    done
    if [[ -n "$failed" ]]; then
      compose ps --all >&2 || true
      die "these services failed:$failed. Read their logs with ./deploy.sh logs <service>."
    fi
    [[ -n "$pending" ]] || return 0
    if ((SECONDS >= deadline)); then
      compose ps --all >&2 || true
      die "not healthy after ${START_TIMEOUT}s:$pending. Read their logs with ./deploy.sh logs <service>."
    fi
    echo "Waiting for:$pending"
    sleep 5
  done
}

cmd_start() {
  [[ -f "$ENV_FILE" ]] || cmd_init
  local dir
  for dir in $RUNTIME_DIRS; do
    mkdir -p "$ROOT/$dir"
  done
  compose up -d --build ||
    die "docker compose up failed (see above). Read a service's logs with ./deploy.sh logs <service>."
  wait_healthy
  cat <<EOF

quantlab is up.
  Airflow     http://localhost:$(env_value AIRFLOW_PORT 8080)  (login: AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD in .env)
  MLflow      http://localhost:$(env_value MLFLOW_PORT 5000)
  JupyterLab  http://localhost:$(env_value JUPYTER_PORT 8888)/lab  (token: JUPYTER_TOKEN in .env)
  PostgreSQL  127.0.0.1:$(env_value POSTGRES_PORT 5433)  (users and passwords in .env)
EOF
}

cmd_stop() {
  require_env
  compose down
}

cmd_status() {
  require_env
  compose ps --all
}

cmd_logs() {
  require_env
  if [[ -n "${1:-}" ]]; then
    compose logs -f --tail 200 "$1"
  else
    compose logs -f --tail 200
  fi
}

cmd_clean() {
  require_env
  local answer=""
  echo "This removes the quantlab containers AND volumes: the Airflow, MLflow and ledger databases,"
  echo "the MLflow artifacts and the Airflow logs. Files under ./data, ./experiments and .env stay."
  read -r -p "Type 'yes' to delete them: " answer || true
  [[ "$answer" == yes ]] || die "aborted; nothing was deleted."
  compose down -v --remove-orphans
}

main() {
  local command="${1:-}"
  [[ $# -le 1 || "$command" == logs ]] || die "too many arguments; run ./deploy.sh help."
  [[ $# -le 2 ]] || die "too many arguments; run ./deploy.sh help."
  case "$command" in
    init)
      require_docker
      cmd_init
      ;;
    start)
      require_docker
      cmd_start
      ;;
    stop)
      require_docker
      cmd_stop
      ;;
    restart)
      require_docker
      cmd_stop
      cmd_start
      ;;
    status)
      require_docker
      cmd_status
      ;;
    logs)
      require_docker
      cmd_logs "${2:-}"
      ;;
    clean)
      require_docker
      cmd_clean
      ;;
    help | -h | --help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
