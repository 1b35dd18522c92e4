"""Task tries read from a real Airflow 3 metadata DB (a tiny DAG with a retried task run by
`airflow dags test`), and the per-task check on tiny frames."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from quantlab.catalog.datasets import DATASETS
from quantlab.config.monitoring import TasksMonitorConfig
from quantlab.monitoring.tasks import TRIES_SCHEMA, check_tasks, read_task_tries

DAG = """
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import dag, task

MARK = Path(__file__).with_suffix(".tried")


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["test"])
def tiny_retry():
    @task(retries=1, retry_delay=timedelta(seconds=0))
    def flaky():
        if not MARK.exists():
            MARK.write_text("1")
            raise RuntimeError("the first try fails")
        return 1

    @task
    def steady(x):
        return x

    steady(flaky())


tiny_retry()
"""


@pytest.fixture(scope="module")
def airflow_db(tmp_path_factory) -> Path:
    """A migrated Airflow metadata DB holding one run of `tiny_retry`: flaky failed once,
    then succeeded; steady succeeded."""
    home = tmp_path_factory.mktemp("airflow")
    (home / "dags").mkdir()
    (home / "dags" / "tiny_retry.py").write_text(DAG)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    for argv in (["db", "migrate"], ["dags", "test", "tiny_retry"]):
        done = subprocess.run(
            [airflow, *argv], env=env, cwd=home, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return home / "airflow.db"


def _url(db: Path) -> str:
    return f"sqlite:///{db}"


SINCE = datetime(2020, 1, 1, tzinfo=UTC)


def test_read_task_tries_finds_the_retried_try_in_the_history(airflow_db):
    before = hashlib.sha256(airflow_db.read_bytes()).hexdigest()
    got = read_task_tries(_url(airflow_db), SINCE, ("tiny_retry", "research"))
    assert hashlib.sha256(airflow_db.read_bytes()).hexdigest() == before  # read only
    assert got.schema == pl.Schema(TRIES_SCHEMA)
    assert got.select("task_id", "try_number", "state", "map_index").rows() == [
        ("flaky", 1, "failed", -1),
        ("flaky", 2, "success", -1),
        ("steady", 1, "success", -1),
    ]
    assert got["run_id"].n_unique() == 1 and (got["dag_id"] == "tiny_retry").all()
    assert (got["end_date"] >= got["start_date"]).all() and (got["duration"] > 0).all()
    now = datetime.now(UTC)
    assert (got["end_date"] > now - timedelta(hours=1)).all()  # read back as UTC
    assert (got["end_date"] <= now).all()


def test_read_task_tries_filters_by_time_and_dag(airflow_db):
    url = _url(airflow_db)
    every = read_task_tries(url, SINCE, ("tiny_retry",))
    first_end = every["end_date"][0]
    after_first = read_task_tries(url, first_end + timedelta(milliseconds=1), ("tiny_retry",))
    assert after_first.select("task_id", "try_number").rows() == [("flaky", 2), ("steady", 1)]
    assert read_task_tries(url, first_end, ("tiny_retry",)).height == 3  # at `since` counts
    assert read_task_tries(url, datetime.now(UTC) + timedelta(hours=1), ("tiny_retry",)).is_empty()
    assert read_task_tries(url, SINCE, ("research",)).is_empty()
    assert read_task_tries(url, SINCE, ()).is_empty()


def test_read_task_tries_merges_both_tables(airflow_db, tmp_path):
    db = tmp_path / "airflow.db"
    shutil.copy(airflow_db, db)
    with sqlite3.connect(db) as conn:
        (run_id,) = conn.execute("SELECT run_id FROM task_instance LIMIT 1").fetchone()
        history = (
            "INSERT INTO task_instance_history (task_instance_id, dag_id, task_id, run_id, "
            "map_index, try_number, state, start_date, end_date, duration, pool, pool_slots) "
            "VALUES (?, ?, ?, ?, -1, ?, ?, ?, ?, ?, 'default_pool', 1)"
        )
        # flaky's current try archived as failed as well: the live row wins
        conn.execute(
            history,
            (
                "a" * 32,
                "tiny_retry",
                "flaky",
                run_id,
                2,
                "failed",
                "2026-01-01 00:00:00.000000",
                "2099-01-01 00:00:00.000000",
                1.0,
            ),
        )
        # a try too old for the window
        conn.execute(
            history,
            (
                "b" * 32,
                "tiny_retry",
                "steady",
                run_id,
                0,
                "failed",
                "2019-01-01 00:00:00.000000",
                "2019-01-01 00:01:00.000000",
                60.0,
            ),
        )
        # a task still running: no end, no duration yet
        conn.execute(
            "INSERT INTO task_instance (id, dag_id, task_id, run_id, map_index, try_number, "
            "state, start_date, pool, pool_slots) VALUES (?, 'tiny_retry', 'slow', ?, 3, 1, "
            "'running', '2026-12-06 10:00:00.250000', 'default_pool', 1)",
            ("c" * 32, run_id),
        )
    got = read_task_tries(_url(db), SINCE, ("tiny_retry",))
    assert got.select("task_id", "map_index", "try_number", "state").rows() == [
        ("flaky", -1, 1, "failed"),
        ("flaky", -1, 2, "success"),
        ("slow", 3, 1, "running"),
        ("steady", -1, 1, "success"),
    ]
    running = got.row(2, named=True)
    assert running["start_date"] == datetime(2026, 12, 6, 10, 0, 0, 250000, tzinfo=UTC)
    assert running["end_date"] is None and running["duration"] is None


def test_check_tasks_on_the_real_run(airflow_db):
    tries = read_task_tries(_url(airflow_db), SINCE, ("tiny_retry",))
    as_of = tries["end_date"].max() + timedelta(minutes=1)
    got = check_tasks(tries, as_of, TasksMonitorConfig(alert_failures=1))
    DATASETS["monitor_tasks"].check(got)
    assert got.select("subject", "level", "tries", "failed", "last_state").rows() == [
        ("tiny_retry.flaky", "alert", 2, 1, "success"),
        ("tiny_retry.steady", "ok", 1, 0, "success"),
    ]
    flaky = got.row(0, named=True)
    assert flaky["last_end"] == tries["end_date"][1]
    assert flaky["last_s"] == pytest.approx(tries["duration"][1])
    assert flaky["max_s"] == pytest.approx(tries["duration"][:2].max())
    assert "1 of 2 tries failed" in flaky["message"]


AS_OF = datetime(2026, 12, 6, 12, tzinfo=UTC)


def _tries(rows: list[tuple[str, str, int, str, float | None, float | None]]) -> pl.DataFrame:
    """(dag, task, try, state, hours before AS_OF it ended (None: running), seconds)."""
    out = []
    for i, (dag, task, n, state, ago, seconds) in enumerate(rows):
        end = None if ago is None else AS_OF - timedelta(hours=ago)
        start = (end or AS_OF - timedelta(minutes=5)) - timedelta(seconds=seconds or 0)
        out.append((dag, f"run{i}", task, -1, n, state, start, end, seconds))
    return pl.DataFrame(out, schema=TRIES_SCHEMA, orient="row")


CFG = TasksMonitorConfig(lookback_hours=24, alert_failures=1, slow_factor=3.0)


@pytest.mark.parametrize(
    ("rows", "cfg", "want"),
    [
        # steady and quick: ok, value = failures against the alert level
        (
            [("d", "t", 1, "success", 5, 10.0), ("d", "t", 1, "success", 1, 12.0)],
            CFG,
            ("ok", 0.0, 1.0, 2, 0, 11.0, 12.0, 12.0, "success"),
        ),
        # a retried try failed: up_for_retry counts as failed
        (
            [("d", "t", 1, "up_for_retry", 2, 10.0), ("d", "t", 2, "success", 1, 10.0)],
            CFG,
            ("alert", 1.0, 1.0, 2, 1, 10.0, 10.0, 10.0, "success"),
        ),
        (
            [("d", "t", 1, "failed", 2, 10.0)],
            CFG.model_copy(update={"alert_failures": 2}),
            ("ok", 1.0, 2.0, 1, 1, 10.0, 10.0, 10.0, "failed"),
        ),
        # the last of 3 tries ran over 3 x the median (10 s): warn, against 30 s
        (
            [
                ("d", "t", 1, "success", 9, 10.0),
                ("d", "t", 1, "success", 5, 9.0),
                ("d", "t", 1, "success", 1, 31.0),
            ],
            CFG,
            ("warn", 31.0, 30.0, 3, 0, 10.0, 31.0, 31.0, "success"),
        ),
        # at 3 x the median is not over it
        (
            [
                ("d", "t", 1, "success", 9, 10.0),
                ("d", "t", 1, "success", 5, 9.0),
                ("d", "t", 1, "success", 1, 30.0),
            ],
            CFG,
            ("ok", 0.0, 1.0, 3, 0, 10.0, 30.0, 30.0, "success"),
        ),
        # two tries are too few to call one slow
        (
            [("d", "t", 1, "success", 5, 10.0), ("d", "t", 1, "success", 1, 100.0)],
            CFG,
            ("ok", 0.0, 1.0, 2, 0, 55.0, 100.0, 100.0, "success"),
        ),
        # a try outside the lookback is not counted; a running one is, and is the last
        (
            [
                ("d", "t", 1, "failed", 30, 10.0),
                ("d", "t", 1, "success", 3, 10.0),
                ("d", "t", 1, "running", None, None),
            ],
            CFG,
            ("ok", 0.0, 1.0, 2, 0, 10.0, 10.0, None, "running"),
        ),
    ],
)
def test_check_tasks_levels(rows, cfg, want):
    got = check_tasks(_tries(rows), AS_OF, cfg)
    DATASETS["monitor_tasks"].check(got)
    assert got.height == 1
    cols = (
        "level",
        "value",
        "threshold",
        "tries",
        "failed",
        "median_s",
        "max_s",
        "last_s",
        "last_state",
    )
    assert got.select(cols).row(0) == pytest.approx(want)
    assert got["subject"][0] == "d.t" and got["check"][0] == "tasks"


def test_check_tasks_groups_per_dag_and_task():
    rows = [
        ("b", "x", 1, "success", 1, 1.0),
        ("a", "y", 1, "failed", 1, 1.0),
        ("a", "x", 1, "success", 2, 1.0),
        ("b", "x", 1, "success", 30, 1.0),
    ]
    got = check_tasks(_tries(rows), AS_OF, CFG)
    assert got.select("subject", "level", "tries").rows() == [
        ("a.x", "ok", 1),
        ("a.y", "alert", 1),
        ("b.x", "ok", 1),
    ]
    assert got["last_end"][0] == AS_OF - timedelta(hours=2)


def test_check_tasks_of_nothing_is_empty():
    got = check_tasks(_tries([("d", "t", 1, "success", 48, 1.0)]), AS_OF, CFG)
    assert got.height == 0
    DATASETS["monitor_tasks"].check(got)
