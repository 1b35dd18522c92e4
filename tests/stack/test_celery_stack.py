"""The native stack on the CeleryExecutor (`make stack EXECUTOR=celery WORKERS=2`), proven for real.

The research DAG and the market_data DAG (mapped per-symbol tasks) are triggered through the
Airflow REST API; Celery's own inspection API (app.control.inspect: each worker's count of
executed tasks, and its active tasks) shows that both workers ran tasks. Then one worker is
killed with SIGKILL, with its task processes, while it runs a research stage: the run still
succeeds, on the other worker, after Airflow's heartbeat timeout and retry. While that task
runs, its log is read through the API server (from the log server, as for any worker).

When the stack is not up, the module starts it in Celery mode with 2 workers on
tests/stack/stack-test.yaml (a small slice) and stops it at the end; a stack already up in
Celery mode with 2 or more workers on the test slice is used as it is (its killed worker is
started again); a stack up on the LocalExecutor or another config is left alone and the
module is skipped, saying so. The slice's datasets, model and paper account are reset first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from helpers import read_env_file

ROOT = Path(__file__).resolve().parents[2]
STACK_SH = ROOT / "infra" / "native" / "stack.sh"
STACK_ENV = ROOT / ".stack" / ".env"
RUN_DIR = ROOT / ".stack" / "run"
TEST_CONFIG = Path(__file__).with_name("stack-test.yaml")
WORKERS = 2
RUN_TIMEOUT_S = 1200
# A market_data run over one hour the sample holds for the spot symbols (after the DAG's
# start_date: a run before it has no task instances).
MARKET_DATA_LOGICAL_DATE = "2025-06-15T12:00:00+00:00"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"

pytestmark = pytest.mark.stack


def _recorded_mode() -> list[str]:
    record = RUN_DIR / "executor"
    return record.read_text().split() if record.exists() else []


def _stack(command: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [STACK_SH, command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1500,
    )


@pytest.fixture(scope="module")
def celery_stack() -> Iterator[dict[str, str]]:
    """.stack/.env of a stack running the CeleryExecutor with 2+ workers; started if down."""
    status = _stack("status")
    mode = _recorded_mode()
    started = status.returncode != 0
    running_config = (RUN_DIR / "config").read_text().strip() if not started else ""
    if not started and (
        mode[:1] != ["celery"] or int(mode[1]) < WORKERS or running_config != str(TEST_CONFIG)
    ):
        pytest.skip(
            f"the stack is up with EXECUTOR={' '.join(mode) or 'local'} on {running_config}; "
            f"make stack-down, then rerun (this module starts it with {WORKERS} Celery workers "
            "on tests/stack/stack-test.yaml)"
        )
    if started:
        up = _stack("up", EXECUTOR="celery", WORKERS=str(WORKERS), QUANTLAB_CONFIG=str(TEST_CONFIG))
        if up.returncode != 0:
            _stack("down")
            pytest.fail(f"stack.sh up (celery) failed:\n{up.stdout[-4000:]}\n{up.stderr[-4000:]}")
    env = read_env_file(STACK_ENV)
    try:
        # What earlier sessions (market_data's hours among them) wrote to the slice goes.
        _reset_slice(env)
        yield env
    finally:
        if started:
            _stack("down")


def _reset_slice(env: dict[str, str]) -> None:
    """test_native_stack's reset of the test slice (its datasets, model and paper account)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_native_stack_tests", Path(__file__).with_name("test_native_stack.py")
    )
    native = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = native  # its dataclasses look their module up there
    spec.loader.exec_module(native)

    mp = pytest.MonkeyPatch()
    mp.setenv("QUANTLAB_HOME", str(ROOT))
    mp.setenv("QUANTLAB_DB_HOST", "127.0.0.1")
    mp.setenv("QUANTLAB_DB_PORT", env.get("POSTGRES_PORT", "5432"))
    for key in ("QUANTLAB_DB_NAME", "QUANTLAB_DB_USER", "QUANTLAB_DB_PASSWORD"):
        mp.setenv(key, env[key])
    mp.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{env.get('MLFLOW_PORT', '5000')}")
    try:
        config = Path((RUN_DIR / "config").read_text().strip())
        native._reset_test_slice(native.Stack(env=env, config=config))
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def airflow(celery_stack: dict[str, str]) -> Iterator[httpx.Client]:
    base = f"http://127.0.0.1:{celery_stack.get('AIRFLOW_PORT', '8080')}"
    token = httpx.post(
        f"{base}/auth/token",
        json={
            "username": celery_stack["AIRFLOW_ADMIN_USER"],
            "password": celery_stack["AIRFLOW_ADMIN_PASSWORD"],
        },
        timeout=30,
    )
    assert token.status_code == 201, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=f"{base}/api/v2", headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def celery_app(celery_stack: dict[str, str]):
    """Airflow's Celery app, pointed at the stack's broker (Redis) and result backend."""
    from celery import Celery

    app = Celery("quantlab-stack-test", broker="redis://127.0.0.1:6379/0")
    yield app
    app.close()


# --- helpers --------------------------------------------------------------------------------


def _ok(response: httpx.Response) -> dict:
    assert response.is_success, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:2000]}"
    )
    return response.json()


def _trigger(airflow: httpx.Client, dag: str, logical_date: str | None = None) -> str:
    # Right after `up` the DAG processor may not have parsed the DAG yet.
    deadline = time.monotonic() + 300
    while (unpaused := airflow.patch(f"/dags/{dag}", json={"is_paused": False})).status_code == 404:
        if time.monotonic() > deadline:
            break
        time.sleep(3)
    _ok(unpaused)
    now = datetime.now(UTC)
    run_id = f"celery-{dag}-{now:%Y%m%dT%H%M%S%f}"
    body = {"dag_run_id": run_id, "logical_date": logical_date or now.isoformat()}
    assert _ok(airflow.post(f"/dags/{dag}/dagRuns", json=body))["dag_run_id"] == run_id
    return run_id


def _only_run(airflow: httpx.Client, dag: str, run_id: str) -> None:
    """Fail the other active runs of `dag`: unpausing a scheduled DAG (catchup off) creates a run
    for its latest interval, ahead of ours under max_active_runs=1, over hours the sample does
    not hold. Marked failed through the REST API, the way an operator cancels a run."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = _ok(airflow.get(f"/dags/{dag}/dagRuns", params={"state": ["queued", "running"]}))
        others = [r["dag_run_id"] for r in runs["dag_runs"] if r["dag_run_id"] != run_id]
        for other in others:
            _ok(
                airflow.patch(
                    f"/dags/{dag}/dagRuns/{quote(other, safe='')}", json={"state": "failed"}
                )
            )
        if not others and any(r["dag_run_id"] == run_id for r in runs["dag_runs"]):
            time.sleep(5)  # the scheduler creates the scheduled run shortly after unpausing
            runs = _ok(airflow.get(f"/dags/{dag}/dagRuns", params={"state": ["queued", "running"]}))
            if all(r["dag_run_id"] == run_id for r in runs["dag_runs"]):
                return
        time.sleep(2)


def _task_instances(airflow: httpx.Client, dag: str, run_id: str) -> list[dict]:
    path = f"/dags/{dag}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    return _ok(airflow.get(path, params={"limit": 500}))["task_instances"]


def _log(airflow: httpx.Client, dag: str, run_id: str, ti: dict) -> str:
    path = (
        f"/dags/{dag}/dagRuns/{quote(run_id, safe='')}/taskInstances/{ti['task_id']}"
        f"/logs/{max(ti.get('try_number') or 1, 1)}"
    )
    params = {"full_content": True}
    if ti.get("map_index", -1) >= 0:
        params["map_index"] = ti["map_index"]
    response = airflow.get(path, params=params, headers={"Accept": "application/x-ndjson"})
    assert response.is_success, f"no log for {ti['task_id']}: {response.status_code}"
    return response.text


def _wait(airflow: httpx.Client, dag: str, run_id: str) -> list[dict]:
    """Poll until the run ends; fail with the unfinished tasks' log tails unless it succeeded."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    path = f"/dags/{dag}/dagRuns/{quote(run_id, safe='')}"
    while (state := _ok(airflow.get(path))["state"]) not in ("success", "failed"):
        if time.monotonic() > deadline:
            states = {t["task_id"]: t["state"] for t in _task_instances(airflow, dag, run_id)}
            pytest.fail(f"{dag} {run_id} still {state} after {RUN_TIMEOUT_S}s: {states}")
        time.sleep(5)
    tis = _task_instances(airflow, dag, run_id)
    if state != "success":
        bad = [t for t in tis if t["state"] != "success"]
        logs = "\n".join(
            f"--- {t['task_id']}[{t.get('map_index')}] ({t['state']})\n"
            + (_log(airflow, dag, run_id, t)[-3000:] if t.get("try_number") else "")
            for t in bad
        )
        pytest.fail(f"{dag} {run_id} ended {state}:\n{logs}")
    return tis


def _executed(app) -> dict[str, int]:
    """Tasks each worker executed since it started, from Celery's inspection API (stats)."""
    stats = app.control.inspect(timeout=10).stats() or {}
    return {name: sum(s.get("total", {}).values()) for name, s in stats.items()}


def _restart_stopped_workers() -> None:
    """`stack.sh up` in the running stack's mode: it starts what is down, a killed worker."""
    mode, workers, concurrency = _recorded_mode()
    config = (RUN_DIR / "config").read_text().strip()
    up = _stack(
        "up", EXECUTOR=mode, WORKERS=workers, CONCURRENCY=concurrency, QUANTLAB_CONFIG=config
    )
    assert up.returncode == 0, f"stack.sh up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"


def _worker_pid(name: str) -> int:
    """The pid of stack.sh's service for Celery worker `worker<i>@host`."""
    index = name.split("@")[0].removeprefix("worker")
    return int((RUN_DIR / f"airflow-worker{index}.pid").read_text().split()[0])


# --- the tests ------------------------------------------------------------------------------


def test_every_worker_answers_a_celery_ping(celery_app):
    replies = celery_app.control.inspect(timeout=10).ping() or {}
    names = sorted(name.split("@")[0] for name in replies)
    assert names[:WORKERS] == [f"worker{i}" for i in range(1, WORKERS + 1)], replies


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_research_tasks_run_on_both_workers(airflow, celery_app):
    before = _executed(celery_app)
    research = _trigger(airflow, "research")
    tis = _wait(airflow, "research", research)
    after = _executed(celery_app)
    assert {t["state"] for t in tis} == {"success"}
    ran = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert len([n for n, count in ran.items() if count > 0]) >= WORKERS, (
        f"research tasks per worker: {ran}"
    )
    assert sum(ran.values()) >= len(tis), ran


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_a_killed_worker_leaves_the_run_to_the_other_after_a_retry(
    celery_stack, airflow, celery_app
):
    psutil = pytest.importorskip("psutil")
    # Without its outputs of the run before, every stage works again (none is reused): train
    # runs long enough to be caught running.
    _reset_slice(celery_stack)
    run_id = _trigger(airflow, "research")
    # Wait until train (the longest stage on the slice) runs, find the worker that holds it
    # (one research stage runs at a time: the catalog pool), read its log through the API
    # server while it runs (the log server), then kill that worker and its task processes.
    deadline = time.monotonic() + RUN_TIMEOUT_S
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "train never ran"
        train = {t["task_id"]: t for t in _task_instances(airflow, "research", run_id)}.get("train")
        assert train is None or train["state"] not in ("success", "failed"), train
        if train is not None and train["state"] == "running":
            active = celery_app.control.inspect(timeout=3, limit=WORKERS).active() or {}
            holders = [name for name, tasks in active.items() if tasks]
            if len(holders) == 1:
                victim = holders[0]
                break
        time.sleep(0.5)
    live_log = _log(airflow, "research", run_id, train)
    assert live_log.strip(), "the running task's log is empty"
    assert "Could not read served logs" not in live_log, live_log[-2000:]

    try:
        _kill_and_finish(airflow, celery_app, psutil, run_id, victim)
    finally:
        _restart_stopped_workers()


def _kill_and_finish(airflow, celery_app, psutil, run_id: str, victim: str) -> None:
    lead = psutil.Process(_worker_pid(victim))
    tree = [lead, *lead.children(recursive=True)]
    for process in tree:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue

    def alive(process) -> bool:  # a zombie waiting for its parent to reap it is dead
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 30
    while left := [p.pid for p in tree if alive(p)]:
        assert time.monotonic() < deadline, f"still alive after SIGKILL: {left}"
        time.sleep(1)
    killed = {t["task_id"]: t for t in _task_instances(airflow, "research", run_id)}["train"]
    assert killed["state"] == "running" and killed["try_number"] == 1, (
        f"train ended before its worker was killed: {killed['state']}"
    )
    survivors = [n for n in (celery_app.control.inspect(timeout=10).ping() or {}) if n != victim]
    assert survivors, "no worker left to take the retry"
    before = _executed(celery_app)

    tis = {t["task_id"]: t for t in _wait(airflow, "research", run_id)}
    assert tis["train"]["state"] == "success"
    assert tis["train"]["try_number"] >= 2, "the killed try was not retried"
    after = _executed(celery_app)
    assert victim not in after, "the killed worker still answers"
    assert sum(after.get(n, 0) - before.get(n, 0) for n in survivors) >= 1


def _tune(airflow: httpx.Client, workers: int, trials: int) -> tuple[list[dict], dict]:
    """One `tune` run with `workers` mapped slots filling the studies to `trials` each; its
    task instances and its report's return value."""
    now = datetime.now(UTC)
    run_id = f"celery-tune-{workers}-{now:%Y%m%dT%H%M%S%f}"
    _ok(airflow.patch("/dags/tune", json={"is_paused": False}))
    body = {
        "dag_run_id": run_id,
        "logical_date": now.isoformat(),
        "conf": {"workers": workers, "trials": trials},
    }
    _ok(airflow.post("/dags/tune/dagRuns", json=body))
    tis = _wait(airflow, "tune", run_id)
    path = (
        f"/dags/tune/dagRuns/{quote(run_id, safe='')}/taskInstances/report/xcomEntries/return_value"
    )
    value = _ok(airflow.get(path, params={"deserialize": True, "stringify": False}))["value"]
    return tis, value


@pytest.mark.timeout(2 * RUN_TIMEOUT_S + 600)
def test_tune_slots_fill_one_study_set_from_both_workers(airflow, celery_app):
    """The `tune` DAG's mapped slots on the two workers fill the train stage's studies on the
    stack's PostgreSQL (after the research run: its features, labels and studies); then one
    slot adds as many trials again, for the trials-per-minute comparison (printed, not
    asserted: the two workers share this machine's 2 cores)."""
    before = _executed(celery_app)
    two, report2 = _tune(airflow, workers=2, trials=6)
    ran = {n: c - before.get(n, 0) for n, c in _executed(celery_app).items()}
    slots = [t for t in two if t["task_id"] == "tune_slot"]
    assert sorted(t["map_index"] for t in slots) == [0, 1]
    assert len([n for n, c in ran.items() if c > 0]) == WORKERS, f"tune tasks per worker: {ran}"
    one, report1 = _tune(airflow, workers=1, trials=10)
    assert [t["map_index"] for t in one if t["task_id"] == "tune_slot"] == [0]
    assert report1["studies"] == report2["studies"] > 0
    rates = [r["trials_per_minute"] for r in (report2, report1)]
    print(f"tune trials/min: 2 slots {rates[0]}, 1 slot {rates[1]}")


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_market_data_mapped_symbol_tasks_run_on_both_workers(airflow, celery_app):
    """Last: its klines land in the test slice's catalog beside the research months.

    Only the mapped ingest tasks are judged here. Its `validate` checks the whole klines
    version, which on the test slice holds the research slice's 2023 months as well as this
    2025 hour: the calendar gap between them is a data verdict, not the executor's.
    """
    before = _executed(celery_app)
    # A run of an earlier session at that hour (the Airflow database outlives the stack) goes.
    earlier = _ok(
        airflow.get(
            "/dags/market_data/dagRuns",
            params={
                "logical_date_gte": MARKET_DATA_LOGICAL_DATE,
                "logical_date_lte": MARKET_DATA_LOGICAL_DATE,
            },
        )
    )["dag_runs"]
    for run in earlier:
        deleted = airflow.delete(f"/dags/market_data/dagRuns/{quote(run['dag_run_id'], safe='')}")
        assert deleted.status_code == 204, deleted.text
    market = _trigger(airflow, "market_data", MARKET_DATA_LOGICAL_DATE)
    try:
        _only_run(airflow, "market_data", market)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        path = f"/dags/market_data/dagRuns/{quote(market, safe='')}"
        while _ok(airflow.get(path))["state"] not in ("success", "failed"):
            assert time.monotonic() < deadline, f"market_data {market} did not finish"
            time.sleep(5)
    finally:  # no hourly run of it after this test
        _ok(airflow.patch("/dags/market_data", json={"is_paused": True}))
    after = _executed(celery_app)
    tis = _task_instances(airflow, "market_data", market)
    mapped = [t for t in tis if t["task_id"] in ("klines", "funding_rates", "exchange_info")]
    klines = [t for t in mapped if t["task_id"] == "klines"]
    # One klines task instance per symbol of configs/markets.yaml, each run and succeeded.
    assert len(klines) >= 2 and {t["map_index"] for t in klines} == set(range(len(klines)))
    assert {(t["task_id"], t["map_index"]): t["state"] for t in mapped} == {
        (t["task_id"], t["map_index"]): "success" for t in mapped
    }
    ran = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert len([n for n, count in ran.items() if count > 0]) >= WORKERS, (
        f"market_data tasks per worker: {ran}"
    )
    assert sum(ran.values()) >= len(mapped), ran
