"""The native stack (infra/native/stack.sh) and `make airflow-ui`: nothing listens beyond
127.0.0.1 and no secret is ever a command's argument; `make run` prints no third-party notice.

The scripts run for real against stub programs that record their arguments; nothing is
started (`make stack-test` runs the real stack).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK_SH = ROOT / "infra/native/stack.sh"
AIRFLOW_UI_SH = ROOT / "infra/native/airflow-ui.sh"
SHIM = ROOT / "infra/native/standalone/airflow"
MAKEFILE = ROOT / "Makefile"
BASH = shutil.which("bash")

RECORDER = """\
#!{bash}
# Records its name and arguments, one call a line.
printf '%s\\n' "$(basename "$0") $*" >> "$STUB_LOG"
{body}
"""
SECRETS = {
    "AIRFLOW_DB_PASSWORD": "airflow-db-secret-1a2b",
    "MLFLOW_DB_PASSWORD": "mlflow-db-secret-3c4d",
    "QUANTLAB_DB_PASSWORD": "quantlab-db-secret-5e6f",
    "AIRFLOW_ADMIN_PASSWORD": "admin-secret-7a8b",
    "AIRFLOW_JWT_SECRET": "jwt-secret-9c0d",
    "AIRFLOW_API_SECRET_KEY": "api-secret-1e2f",
    "AIRFLOW_FERNET_KEY": "fernet-secret-3a4b",
    "JUPYTER_TOKEN": "jupyter-secret-5c6d",
}


def stub(path: Path, body: str = "exit 0") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORDER.format(bash=BASH, body=body))
    path.chmod(0o755)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


# --- stack.sh -------------------------------------------------------------------------------


def test_stack_passes_the_database_passwords_in_the_environment_not_as_arguments(tmp_path):
    """`up` runs infra/postgres/init.sh with the three passwords in its environment; no
    command it runs (`env` included) gets a secret as an argument, where `ps` shows it."""
    fixed = (8974, 8793, 8794)  # the scheduler's health port and the log servers'
    if any(port_taken(p) for p in fixed):
        pytest.skip(f"one of the ports {fixed} is taken (a running stack?)")
    root, bin_dir, log = tmp_path / "root", tmp_path / "bin", tmp_path / "calls"
    (root / "infra/native").mkdir(parents=True)
    shutil.copy2(STACK_SH, root / "infra/native/stack.sh")
    (root / "configs").mkdir()
    (root / "configs/stack.yaml").write_text("")
    stack_env = root / ".stack/.env"
    stack_env.parent.mkdir()
    ports = {k: str(free_port()) for k in ("AIRFLOW_PORT", "MLFLOW_PORT", "JUPYTER_PORT")}
    stack_env.write_text("".join(f"{k}={v}\n" for k, v in {**SECRETS, **ports}.items()))
    received = tmp_path / "init.env"
    stub(
        root / "infra/postgres/init.sh",
        f'env | grep _DB_ > "{received}"',
    )
    for name in ("airflow", "mlflow", "jupyter", "python"):
        stub(root / ".venv/bin" / name, "exit 1")  # airflow-init fails: `up` stops there
    for name in ("pg_isready", "psql", "curl", "ps", "sed", "awk", "tail", "cat", "mkdir"):
        real = shutil.which(name)
        stub(bin_dir / name, f'exec {real} "$@"' if real else "exit 0")
    stub(bin_dir / "pg_isready")
    stub(bin_dir / "psql")
    stub(bin_dir / "env", f'exec {shutil.which("env")} "$@"')
    result = subprocess.run(
        [BASH, str(root / "infra/native/stack.sh"), "up"],
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STUB_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "airflow-init failed" in result.stderr, result.stdout + result.stderr
    got = dict(line.split("=", 1) for line in received.read_text().splitlines())
    for key in ("AIRFLOW_DB_PASSWORD", "MLFLOW_DB_PASSWORD", "QUANTLAB_DB_PASSWORD"):
        assert got[key] == SECRETS[key], key
    assert calls(log), "the stubs recorded nothing"
    leaked = [c for c in calls(log) if any(s in c for s in SECRETS.values())]
    assert leaked == [], "a secret was a command-line argument"


def test_stack_binds_every_server_to_127_0_0_1():
    script = STACK_SH.read_text()
    starts = {
        m[1]: m[2] for m in re.finditer(r'start_service ([\w-]+) "\$BIN/airflow" ([^\n]*)', script)
    }
    assert starts["airflow-scheduler"] == "scheduler --skip-serve-logs"
    assert starts["airflow-triggerer"] == "triggerer --skip-serve-logs"
    assert "export AIRFLOW__API__HOST=127.0.0.1" in script
    assert "export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST=127.0.0.1" in script
    # The logs they skip are served on 127.0.0.1, where every component says it runs.
    assert "export AIRFLOW__CORE__HOSTNAME_CALLABLE=urllib.request.localhost" in script
    assert re.search(r"start_log_server airflow-worker-logs \"\$WORKER_LOG_PORT\"", script)
    assert re.search(r"start_log_server airflow-trigger-logs \"\$TRIGGER_LOG_PORT\"", script)
    # Every server's --host or --ip (pg_isready's --host is the client's, the Postgres host).
    servers = "\n".join(line for line in script.splitlines() if "pg_isready" not in line)
    hosts = re.findall(r"--(?:host|ip)[= ](\S+)", servers)
    assert len(hosts) == 3 and set(hosts) == {"127.0.0.1"}, hosts


def test_stack_celery_mode_names_each_worker_and_serves_their_logs_on_127_0_0_1():
    """EXECUTOR=celery: Redis as the broker, the Airflow DB as the result backend, and N
    `airflow celery worker`s, each its own Celery hostname, pidfile and log (one service
    each), without their own log servers (they would listen on every interface): the
    loopback airflow-worker-logs serves the shared log folder the API server reads from."""
    script = STACK_SH.read_text()
    assert "export AIRFLOW__CORE__EXECUTOR=CeleryExecutor" in script
    assert 'AIRFLOW__CELERY__BROKER_URL="redis://$REDIS_HOST:$REDIS_PORT/0"' in script
    assert re.search(r'AIRFLOW__CELERY__RESULT_BACKEND="db\+postgresql://', script)
    worker = re.search(
        r'start_service "airflow-worker\$i" "\$BIN/airflow" celery worker ([^\n]*)\\\n\s*([^\n]*)',
        script,
    )
    assert worker, "the workers are started as services airflow-worker<i>"
    args = worker[1] + worker[2]
    assert '--celery-hostname "worker$i@%h"' in args
    assert "--skip-serve-logs" in args
    # Redis, when stack.sh starts it, on the loopback address only and with nothing on disk.
    redis = re.search(r"start_service redis ([^\n]*)", script)
    assert redis and '--bind "$REDIS_HOST"' in redis[1] and "REDIS_HOST=127.0.0.1" in script
    # LocalExecutor stays the default.
    assert "export AIRFLOW__CORE__EXECUTOR=LocalExecutor" in script
    assert re.search(r'case "\$\{EXECUTOR:-local\}"', script)


def _stack_up_in(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`stack.sh up` in a copy of the tree whose .venv programs are stubs."""
    root = tmp_path / "root"
    (root / "infra/native").mkdir(parents=True)
    shutil.copy2(STACK_SH, root / "infra/native/stack.sh")
    (root / "configs").mkdir()
    (root / "configs/stack.yaml").write_text("")
    for name in ("airflow", "mlflow", "jupyter", "celery"):
        stub(root / ".venv/bin" / name, "exit 1")
    return subprocess.run(
        [BASH, str(root / "infra/native/stack.sh"), "up"],
        env={"PATH": os.environ["PATH"], "STUB_LOG": str(tmp_path / "calls"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EXECUTOR": "kubernetes"}, "EXECUTOR is 'kubernetes'"),
        ({"EXECUTOR": "celery", "WORKERS": "0"}, "WORKERS is '0'"),
        ({"EXECUTOR": "celery", "WORKERS": "two"}, "WORKERS is 'two'"),
        ({"EXECUTOR": "celery", "CONCURRENCY": "-1"}, "CONCURRENCY is '-1'"),
    ],
)
def test_stack_refuses_an_unknown_executor_or_worker_count(tmp_path, env, message):
    result = _stack_up_in(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "root/.stack/run").exists(), "nothing may start on a bad setting"


def test_make_stack_passes_executor_and_workers_to_stack_sh(tmp_path):
    recipe = re.search(r"^stack:.*\n((?:\t.*\n)+)", MAKEFILE.read_text(), re.M)
    assert recipe, "no stack target"
    assert "EXECUTOR=$(EXECUTOR) WORKERS=$(WORKERS) infra/native/stack.sh up" in recipe[1]
    makefile = MAKEFILE.read_text()
    assert re.search(r"^EXECUTOR \?= local$", makefile, re.M), "LocalExecutor stays the default"
    assert re.search(r"^WORKERS \?= 1$", makefile, re.M)


def test_the_loopback_hostname_callable_is_127_0_0_1():
    import urllib.request

    assert urllib.request.localhost() == "127.0.0.1"


# --- make airflow-ui ------------------------------------------------------------------------


def test_airflow_ui_runs_standalone_on_127_0_0_1_with_loopback_log_servers(tmp_path):
    root, log = tmp_path / "root", tmp_path / "calls"
    (root / "infra/native/standalone").mkdir(parents=True)
    shutil.copy2(AIRFLOW_UI_SH, root / "infra/native/airflow-ui.sh")
    shutil.copy2(SHIM, root / "infra/native/standalone/airflow")
    pids = tmp_path / "pids"
    # A log server stays up until it is stopped; standalone starts its scheduler and
    # triggerer the way Airflow does, as `airflow <command>` from PATH.
    stub(root / ".venv/bin/python", f'echo $$ >> "{pids}"\nexec sleep 60')
    stub(
        root / ".venv/bin/airflow",
        'if [ "$1" = standalone ]; then\n'
        '  echo "api host $AIRFLOW__API__HOST hostname $AIRFLOW__CORE__HOSTNAME_CALLABLE" >> "$STUB_LOG"\n'
        "  airflow scheduler && airflow triggerer && airflow dag-processor\n"
        "fi",
    )
    result = subprocess.run(
        [BASH, str(root / "infra/native/airflow-ui.sh")],
        env={"PATH": os.environ["PATH"], "STUB_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = calls(log)
    servers = [c for c in lines if c.startswith("python ")]
    assert len(servers) == 2
    for server in servers:
        assert "airflow.utils.serve_logs.log_server:get_app --factory --host=127.0.0.1" in server
    assert {re.search(r"--port=(\d+)", s)[1] for s in servers} == {"8793", "8794"}
    assert "api host 127.0.0.1 hostname urllib.request.localhost" in lines
    assert "airflow scheduler --skip-serve-logs" in lines
    assert "airflow triggerer --skip-serve-logs" in lines
    assert "airflow dag-processor" in lines
    # The log servers stop with standalone.
    for pid in pids.read_text().split():
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z", f"{pid} still runs"


def test_make_airflow_ui_runs_the_loopback_script():
    recipe = re.search(r"^airflow-ui:.*\n((?:\t.*\n)+)", MAKEFILE.read_text(), re.M)
    assert recipe and recipe[1].strip() == "infra/native/airflow-ui.sh"


# --- make run's output ----------------------------------------------------------------------


def make_variable(name: str) -> str:
    result = subprocess.run(
        ["make", "-s", "-f", str(MAKEFILE), "-f", "-", "show"],
        input=f"show:\n\t@printf '%s' \"$${name}\"\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_silences_airflows_two_notices_and_nothing_else(tmp_path):
    """The Makefile's PYTHONWARNINGS drops the graphviz and Starlette notices Airflow's CLI
    prints on every command, matched by message; other warnings still show."""
    filters = make_variable("PYTHONWARNINGS")
    code = (
        "import warnings\n"
        "import airflow.utils.dot_renderer, starlette.testclient\n"
        "warnings.warn('another notice', UserWarning)\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("PYTHONWARNINGS", None)

    def output(**extra: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # Airflow logs warnings to stdout
            text=True,
        )
        assert run.returncode == 0, run.stdout
        return run.stdout

    before = output()
    assert "Could not import graphviz" in before and "install `httpx2`" in before, before
    after = output(PYTHONWARNINGS=filters)
    assert "graphviz" not in after and "httpx2" not in after, after
    assert "another notice" in after


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_turns_off_mlflows_uv_project_detection():
    # The model's environment is given outright; the detection only logs 'Detected uv project'.
    assert make_variable("MLFLOW_UV_AUTO_DETECT") == "false"
