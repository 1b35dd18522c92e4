"""Are the other DAGs' tasks failing or slowing down? Their tries, read with plain SQL from
Airflow's metadata database (`task_instance` holds each task's current try,
`task_instance_history` its earlier ones), judged per task (`monitor_tasks`). Nothing here
imports Airflow: the tables are read through sqlalchemy, read only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl
import sqlalchemy as sa

from quantlab.monitoring.findings import ALERT, OK, UTC_MS, WARN

if TYPE_CHECKING:
    from quantlab.config.monitoring import TasksMonitorConfig

TASKS = "monitor_tasks"
FAILED_STATES = ("failed", "up_for_retry")  # a try that ended in error, retried or not
TRIES_SCHEMA: dict[str, pl.DataType] = {
    "dag_id": pl.String(),
    "run_id": pl.String(),
    "task_id": pl.String(),
    "map_index": pl.Int64(),
    "try_number": pl.Int64(),
    "state": pl.String(),
    "start_date": UTC_MS,
    "end_date": UTC_MS,
    "duration": pl.Float64(),
}


def _table(name: str) -> sa.TableClause:
    # Only the columns read; DateTime so sqlalchemy parses SQLite's text timestamps too.
    types = {"map_index": sa.Integer, "try_number": sa.Integer, "duration": sa.Float}
    types |= {"start_date": sa.DateTime(timezone=True), "end_date": sa.DateTime(timezone=True)}
    return sa.table(name, *(sa.column(c, types.get(c, sa.String)) for c in TRIES_SCHEMA))


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def read_task_tries(sql_url: str, since: datetime, dags: tuple[str, ...]) -> pl.DataFrame:
    """Every try of the tasks of `dags` that ended (or, still running, started) at or after
    `since`: the current tries in `task_instance` and the earlier ones of retried or cleared
    tasks in `task_instance_history`, one row per (dag_id, run_id, task_id, map_index,
    try_number). `sql_url` is Airflow's `sql_alchemy_conn`; nothing is written."""
    # SQLite keeps naive UTC text; a naive bound compares with it, and Postgres'
    # timestamptz reads a naive value in the session's zone, so bind an aware one there.
    engine = sa.create_engine(sql_url)
    bound = since.astimezone(UTC)
    if engine.dialect.name in ("sqlite", "mysql"):
        bound = bound.replace(tzinfo=None)
    parts = []
    for rank, name in enumerate(("task_instance", "task_instance_history")):
        t = _table(name)
        when = sa.func.coalesce(t.c.end_date, t.c.start_date)
        parts.append(
            sa.select(*(t.c[c] for c in TRIES_SCHEMA), sa.literal(rank).label("rank")).where(
                t.c.dag_id.in_(dags), when >= bound
            )
        )
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.union_all(*parts)).mappings().all()
    finally:
        engine.dispose()
    rows = []
    for r in result:
        row = {c: r[c] for c in TRIES_SCHEMA} | {"rank": r["rank"]}
        row["start_date"], row["end_date"] = _utc(r["start_date"]), _utc(r["end_date"])
        if row["duration"] is None and row["start_date"] and row["end_date"]:
            row["duration"] = (row["end_date"] - row["start_date"]).total_seconds()
        rows.append(row)
    frame = pl.DataFrame(rows, schema={**TRIES_SCHEMA, "rank": pl.Int64()})
    key = ["dag_id", "run_id", "task_id", "map_index", "try_number"]
    # A try in both tables (archived while its row was being updated): the live row wins.
    return (
        frame.sort([*key, "rank"])
        .unique(key, keep="first", maintain_order=True)
        .drop("rank")
        .sort("dag_id", "task_id", "start_date", "try_number", nulls_last=True)
    )


def _task_row(
    dag_id: str, task_id: str, part: pl.DataFrame, as_of: datetime, cfg: TasksMonitorConfig
) -> dict:
    part = part.sort(pl.coalesce("end_date", "start_date"), "try_number", nulls_last=False)
    last = part.row(-1, named=True)
    durations = part["duration"].drop_nulls()
    tries, failed = part.height, int(part["state"].is_in(FAILED_STATES).sum())
    median = durations.median() if durations.len() else None
    last_s = last["duration"]
    subject = f"{dag_id}.{task_id}"
    slow = (
        durations.len() >= 3
        and median is not None
        and last_s is not None
        and last_s > cfg.slow_factor * median
    )
    if failed >= cfg.alert_failures:
        level, value, threshold = ALERT, float(failed), float(cfg.alert_failures)
        message = (
            f"{subject}: {failed} of {tries} tries failed in the last {cfg.lookback_hours:g} h "
            f"(last state {last['state']}); read the task's log in Airflow and fix the cause "
            "before its next run"
        )
    elif slow:
        level, value, threshold = WARN, last_s, cfg.slow_factor * median
        message = (
            f"{subject}: the last try took {last_s:.0f} s, over {cfg.slow_factor:g} x the "
            f"median {median:.0f} s of {tries} tries; look for a larger input or a slow "
            "exchange before it misses its schedule"
        )
    else:
        level, value, threshold = OK, float(failed), float(cfg.alert_failures)
        message = f"{subject}: {tries} tries, none failed, last {last['state']}"
    return {
        "as_of": as_of,
        "check": "tasks",
        "subject": subject,
        "level": level,
        "value": value,
        "threshold": threshold,
        "message": message,
        "dag_id": dag_id,
        "task_id": task_id,
        "tries": tries,
        "failed": failed,
        "median_s": median,
        "max_s": durations.max() if durations.len() else None,
        "last_s": last_s,
        "last_state": last["state"],
        "last_end": last["end_date"],
    }


def check_tasks(tries: pl.DataFrame, as_of: datetime, cfg: TasksMonitorConfig) -> pl.DataFrame:
    """`monitor_tasks` rows: per (dag_id, task_id), its tries that ended (or started, when
    still running) in (as_of - lookback_hours, as_of]; alert at `cfg.alert_failures` failed
    tries, warn when the last one ran over `cfg.slow_factor` x the median (>= 3 timed tries)."""
    start = as_of - timedelta(hours=cfg.lookback_hours)
    when = pl.coalesce("end_date", "start_date").cast(UTC_MS)
    window = tries.filter(
        (when > pl.lit(start).cast(UTC_MS)) & (when <= pl.lit(as_of).cast(UTC_MS))
    )
    rows = [
        _task_row(dag_id, task_id, part, as_of, cfg)
        for (dag_id, task_id), part in window.sort("dag_id", "task_id").group_by(
            "dag_id", "task_id", maintain_order=True
        )
    ]
    from quantlab.catalog.datasets import DATASETS

    return pl.DataFrame(rows, schema=dict(DATASETS[TASKS].schema))
