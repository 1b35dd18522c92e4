"""The monitoring stage: each check a thin run on the catalog, then the alerts, their
delivery and the report. The checks themselves are pure (`freshness`, `drift`,
`performance`, `tasks`); what they read is gathered by `sources`.

    klines, <name>_checks                      -> monitor_freshness, monitor_gate
    features (+ the champion's training rows)  -> monitor_drift
    labels (+ the champion's predictions)      -> monitor_accuracy
    paper_equity                               -> monitor_paper
    Airflow's task tries                       -> monitor_tasks
    this run's rows of all of them             -> monitor_alerts -> `send` -> status page, MLflow

Every check is judged at `as_of` (the DAG run's data interval end), never at a clock read
here, so a rerun of the same interval judges the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.monitoring import sources
from quantlab.monitoring.findings import findings

if TYPE_CHECKING:
    from quantlab.context import RunContext

log = logging.getLogger("quantlab.monitoring")
STAGE = "monitoring"
ALERTS = "monitor_alerts"
CHECK_DATASETS = (
    "monitor_freshness",
    "monitor_gate",
    "monitor_drift",
    "monitor_accuracy",
    "monitor_paper",
    "monitor_tasks",
)
UTC_MS = pl.Datetime("ms", "UTC")
Refs = dict[str, DatasetRef]  # dataset name -> the version a check wrote
Send = Callable[[pl.DataFrame], str]  # delivers alerts, returns the channel; raises on failure


def _refs(*written: DatasetRef | None) -> Refs:
    """The versions written, by dataset name (an empty frame writes none)."""
    return {ref.name: ref for ref in written if ref is not None}


def _latest(ctx: RunContext, *names: str) -> list[DatasetRef]:
    return [ctx.catalog.latest(n) for n in names if ctx.catalog.exists(n)]


def judged_at(ctx: RunContext, as_of: datetime) -> datetime:
    """What the data is judged against: `as_of`, or `universe.end` when the configured range
    ended before it (a research range such as the shipped sample's), as `quantlab health` does."""
    from quantlab.health.data import reference_time

    return reference_time(ctx.config.universe.end, as_of)[0]


def run_freshness(ctx: RunContext, as_of: datetime) -> Refs:
    """Each series' newest candle against the newest closed one, and each gate's last verdict."""
    from quantlab.monitoring.freshness import check_freshness, check_gates, newest_candles

    newest = newest_candles(sources.klines_frame(ctx))
    series = sources.expected_series(ctx)
    at = judged_at(ctx, as_of)
    fresh = check_freshness(newest, series, at, ctx.config.monitoring.freshness)
    if at != as_of:  # the rows belong to this run; the message says what they were judged at
        note = f"judged at universe.end {at:%Y-%m-%d %H:%M} UTC (the configured range ended): "
        fresh = fresh.with_columns(
            pl.lit(as_of).cast(UTC_MS).alias("as_of"),
            (pl.lit(note) + pl.col("message")).alias("message"),
        )
    gates = check_gates(sources.gate_verdicts(ctx), as_of)
    checks = [n for n in ctx.catalog.names() if n.endswith("_checks")]
    return _refs(
        ctx.catalog.upsert("monitor_freshness", fresh, stage=STAGE, inputs=_latest(ctx, "klines")),
        ctx.catalog.upsert(
            "monitor_gate", gates, stage=STAGE, inputs=_latest(ctx, *sorted(checks))
        ),
    )


def run_drift(ctx: RunContext, as_of: datetime) -> Refs:
    """The PSI of every main champion's features, its newest rows against its training rows."""
    from quantlab.monitoring.drift import check_drift

    cfg = ctx.config.monitoring.drift
    parts = [
        check_drift(
            d.reference,
            d.recent,
            d.features,
            model=d.model,
            model_version=d.version,
            windows=d.windows,
            as_of=as_of,
            cfg=cfg,
        )
        for d in sources.drift_inputs(ctx, judged_at(ctx, as_of))
    ]
    if not parts:
        return {}
    ref = ctx.catalog.upsert(
        "monitor_drift", pl.concat(parts), stage=STAGE, inputs=_latest(ctx, "features")
    )
    return _refs(ref)


def run_accuracy(ctx: RunContext, as_of: datetime) -> Refs:
    """The main champions' accuracy over the tracker's windows, judged against the floor."""
    from quantlab.monitoring.performance import check_accuracy

    rows = sources.accuracy_rows(ctx, as_of)
    frame = check_accuracy(rows, as_of, ctx.config.monitoring.accuracy)
    ref = ctx.catalog.upsert(
        "monitor_accuracy", frame, stage=STAGE, inputs=_latest(ctx, "labels", "live_predictions")
    )
    return _refs(ref)


def run_paper(ctx: RunContext, as_of: datetime) -> Refs:
    """Paper P&L, drawdown, the day's loss and exposure against the breakers' levels."""
    from quantlab.monitoring.performance import check_paper

    equity = sources.paper_equity(ctx)
    if equity is None:
        return {}
    risk = ctx.config.risk
    frame = check_paper(
        equity,
        as_of,
        kill_drawdown=risk.kill_drawdown,
        kill_daily_loss=risk.kill_daily_loss,
        max_gross=risk.max_gross,
        cfg=ctx.config.monitoring.paper,
    )
    ref = ctx.catalog.upsert(
        "monitor_paper", frame, stage=STAGE, inputs=_latest(ctx, "paper_equity")
    )
    return _refs(ref)


def run_tasks(ctx: RunContext, as_of: datetime, airflow_db: str | None) -> Refs:
    """The other DAGs' task tries over the lookback, read from Airflow's metadata DB at
    `airflow_db` (a SQLAlchemy URL; None: not checked, e.g. outside Airflow)."""
    from quantlab.monitoring.tasks import check_tasks, read_task_tries

    if airflow_db is None:
        return {}
    cfg = ctx.config.monitoring.tasks
    tries = read_task_tries(airflow_db, as_of - timedelta(hours=cfg.lookback_hours), cfg.dags)
    ref = ctx.catalog.upsert(
        "monitor_tasks", check_tasks(tries, as_of, cfg), stage=STAGE, inputs=[]
    )
    return _refs(ref)


def this_run(ctx: RunContext, refs: Refs, as_of: datetime) -> dict[str, pl.DataFrame]:
    """Each check's rows judged at `as_of`, by dataset name."""
    at = pl.lit(as_of).cast(UTC_MS)
    return {
        name: ctx.catalog.read(ref).filter(pl.col("as_of") == at)
        for name, ref in refs.items()
        if name != ALERTS
    }


def alert_history(ctx: RunContext) -> pl.DataFrame:
    from quantlab.catalog.datasets import DATASETS

    if not ctx.catalog.exists(ALERTS):
        return pl.DataFrame(schema=dict(DATASETS[ALERTS].schema))
    return ctx.catalog.read(ctx.catalog.latest(ALERTS))


def evaluate(ctx: RunContext, refs: Refs, as_of: datetime) -> DatasetRef | None:
    """Plan this run's alerts from its findings: new conditions fire, cleared ones resolve,
    and a condition still true fires again only after `alerts.repeat_after_hours`."""
    from quantlab.monitoring.alerts import plan_alerts

    cfg = ctx.config.monitoring.alerts
    found = findings(*this_run(ctx, refs, as_of).values())
    plan = plan_alerts(
        found,
        alert_history(ctx),
        as_of,
        min_level=cfg.min_level,
        repeat_after=timedelta(hours=cfg.repeat_after_hours),
    )
    for r in plan.iter_rows(named=True):
        level = logging.WARNING if r["status"] == "fired" else logging.INFO
        log.log(level, "%s %s %s: %s", r["status"].upper(), r["check"], r["subject"], r["message"])
    return ctx.catalog.upsert(ALERTS, plan, stage=STAGE, inputs=list(refs.values()))


def deliver(ctx: RunContext, send: Send, now: datetime | None = None) -> pl.DataFrame:
    """Send every fired alert not yet delivered (this run's, and any an earlier try failed to
    send) in one message; mark them sent only once `send` returned. A failed send raises and
    leaves them pending for the retry: an alert is never lost, nor sent twice by a rerun."""
    from quantlab.monitoring.alerts import mark_sent, undelivered

    pending = undelivered(alert_history(ctx))
    if pending.is_empty():
        return pending
    channel = send(pending)
    sent = mark_sent(pending, now or datetime.now(UTC), channel)
    ctx.catalog.upsert(ALERTS, sent, stage=STAGE)
    return sent


def status_path(ctx: RunContext) -> Path:
    """Where each monitoring run writes the status page: `<paths.data>/artifacts/monitoring/`."""
    return Path(ctx.config.paths.data) / "artifacts" / "monitoring" / "status.html"


def report(ctx: RunContext, refs: Refs, as_of: datetime) -> tuple[Path, str]:
    """The status page (written atomically over the last one) and the MLflow metrics of this
    run; the page's path and the MLflow run id."""
    from quantlab.monitoring.status_page import StatusData, write_status
    from quantlab.monitoring.tracked import log_monitoring

    at = pl.lit(as_of).cast(UTC_MS)
    stored = {n: ctx.catalog.read(ref) for n, ref in refs.items() if n != ALERTS}  # read once
    rows = {n: frame.filter(pl.col("as_of") == at) for n, frame in stored.items()}
    history = findings(*(frame.filter(pl.col("as_of") < at) for frame in stored.values()))
    alerts = alert_history(ctx).filter(pl.col("at") == at)
    frames = {**_empty_frames(), **rows}
    data = StatusData(
        as_of=as_of,
        **{name.removeprefix("monitor_"): frames[name] for name in CHECK_DATASETS},
        alerts=alerts,
        equity=sources.paper_equity(ctx),
        history=history if history.height else None,
    )
    page = write_status(data, status_path(ctx))
    fired = alerts.filter(pl.col("status") == "fired").height
    run_id = log_monitoring(ctx, findings(*rows.values()), fired, as_of, page)
    return page, run_id


def _empty_frames() -> dict[str, pl.DataFrame]:
    from quantlab.catalog.datasets import DATASETS

    return {name: pl.DataFrame(schema=dict(DATASETS[name].schema)) for name in CHECK_DATASETS}


@dataclass(frozen=True)
class Monitored:
    """What one monitoring run wrote, sent and reported."""

    as_of: datetime
    refs: Refs
    alerts: DatasetRef | None
    delivered: pl.DataFrame
    page: Path
    mlflow_run_id: str


def run(
    ctx: RunContext,
    as_of: datetime | None = None,
    *,
    airflow_db: str | None = None,
    send: Send | None = None,
) -> Monitored:
    """Every check, the alerts, their delivery (`send`; default: the webhook from the
    environment, else the log) and the report: `quantlab monitor` in one call."""
    from quantlab.monitoring.delivery import sender

    as_of = as_of or datetime.now(UTC)
    refs: Refs = {}
    for check in (run_freshness, run_drift, run_accuracy, run_paper):
        refs |= check(ctx, as_of)
    refs |= run_tasks(ctx, as_of, airflow_db)
    alerts = evaluate(ctx, refs, as_of)
    delivered = deliver(ctx, send or sender(ctx.config.monitoring.alerts))
    page, run_id = report(ctx, refs, as_of)
    return Monitored(as_of, refs, alerts, delivered, page, run_id)
