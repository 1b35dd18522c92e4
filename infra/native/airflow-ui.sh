#!/usr/bin/env bash
# `make airflow-ui`: `airflow standalone` on the embedded default (the Makefile's
# AIRFLOW_HOME), with every port on 127.0.0.1 only.
#
# The API server listens where [api] host says. The scheduler and the triggerer would start
# their task log servers on every interface, with no setting to change that: standalone starts
# them as `airflow <command>` from PATH, which finds infra/native/standalone/airflow first and
# so adds --skip-serve-logs, and this script serves the same logs (the same app, signed
# requests only) on 127.0.0.1 until standalone exits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$ROOT/.venv/bin"

export AIRFLOW__API__HOST=127.0.0.1
# Every component names its host 127.0.0.1 (urllib.request.localhost() is that address), so
# the API server fetches running tasks' logs from the servers below; the machine's name may
# resolve to another address (127.0.1.1 on Debian).
export AIRFLOW__CORE__HOSTNAME_CALLABLE=urllib.request.localhost
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT:-8793}"
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT:-8794}"

log_servers=()
stop_log_servers() {
  if ((${#log_servers[@]})); then kill "${log_servers[@]}" 2>/dev/null || true; fi
}
trap stop_log_servers EXIT
for port in "$AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" "$AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"; do
  "$BIN/python" -m uvicorn airflow.utils.serve_logs.log_server:get_app --factory \
    --host=127.0.0.1 --port="$port" --no-access-log --log-level=warning &
  log_servers+=("$!")
done

export QUANTLAB_AIRFLOW="$BIN/airflow"
PATH="$ROOT/infra/native/standalone:$BIN:$PATH" "$BIN/airflow" standalone
