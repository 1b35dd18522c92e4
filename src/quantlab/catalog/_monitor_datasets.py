"""The monitoring DAG's datasets (quantlab.monitoring): one per check, each the findings'
common columns (`quantlab.monitoring.findings.COMMON`) plus its own, upserted by
(as_of, check, subject) so every run adds its rows and the history stays; and the alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from quantlab.schema import UTC_MS

if TYPE_CHECKING:
    from quantlab.catalog.datasets import Dataset

F64, I64, STR = pl.Float64(), pl.Int64(), pl.String()
COMMON = {
    "as_of": UTC_MS,
    "check": STR,
    "subject": STR,
    "level": STR,
    "value": F64,
    "threshold": F64,
    "message": STR,
}
KEY = ("as_of", "check", "subject")

OWN: dict[str, dict[str, pl.DataType]] = {
    # each series' newest candle against the newest closed one at as_of
    "monitor_freshness": {
        "market": STR,
        "symbol": STR,
        "interval": STR,
        "newest_open": UTC_MS,  # null: the series has no candle at all
        "expected_open": UTC_MS,  # the open time of the newest closed candle at as_of
        "lag_bars": I64,
    },
    # each gate's last verdict
    "monitor_gate": {
        "dataset": STR,  # the checks dataset, e.g. klines_checks
        "version": I64,
        "passed": pl.Boolean(),
        "failed_checks": STR,  # comma-separated names; empty when passed
        "written_at": UTC_MS,
    },
    # PSI of each of the champion's features, recent window against its training window
    "monitor_drift": {
        "model": STR,
        "model_version": I64,
        "feature": STR,
        "psi": F64,
        "rank": pl.Int32(),  # 1 = the most drifting feature of the model
        "reference_rows": I64,
        "recent_rows": I64,
        "reference_start": UTC_MS,
        "reference_end": UTC_MS,
        "recent_start": UTC_MS,
        "recent_end": UTC_MS,
    },
    # the champion's live accuracy per window (the lifecycle tracker's figures)
    "monitor_accuracy": {
        "model": STR,
        "model_version": I64,
        "window_days": pl.Int32(),
        "symbol": STR,
        "rows": I64,
        "accuracy": F64,
        "metric": STR,
        "metric_value": F64,
        "source": STR,  # live | oos
    },
    # paper P&L, exposure and drawdown against the breakers, per account and measure
    "monitor_paper": {
        "account": STR,
        "measure": STR,  # pnl | drawdown | daily_loss | exposure
        "time": UTC_MS,  # the newest mark
        "equity": F64,
        "peak_equity": F64,
        "pnl": F64,
        "drawdown": F64,
        "daily_loss": F64,
        "gross_exposure": F64,
    },
    # the other DAGs' task tries over the lookback
    "monitor_tasks": {
        "dag_id": STR,
        "task_id": STR,
        "tries": I64,
        "failed": I64,
        "median_s": F64,
        "max_s": F64,
        "last_s": F64,
        "last_state": STR,
        "last_end": UTC_MS,
    },
}


def monitor_datasets(Dataset: type[Dataset]) -> list[Dataset]:
    """Built by `datasets.py` with its `Dataset` class (it imports this module, not the reverse)."""
    checks = [Dataset(name, {**COMMON, **own}, "monitoring", KEY) for name, own in OWN.items()]
    alerts = Dataset(
        "monitor_alerts",
        {
            "key": STR,  # check:subject, what the rate limit counts by
            "check": STR,
            "subject": STR,
            "level": STR,
            "message": STR,
            "status": STR,  # fired | resolved
            "at": UTC_MS,  # the as_of of the run that fired or resolved it
            "sent_at": UTC_MS,  # when it was delivered; null: not yet
            "channel": STR,  # webhook | log; null until delivered
        },
        "monitoring",
        ("key", "at", "status"),
    )
    return [*checks, alerts]
