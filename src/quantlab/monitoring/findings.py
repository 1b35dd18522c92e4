"""What every check writes: one row per subject with a level, the value judged, the threshold
it crossed and a message that says what to do. Each `monitor_*` dataset is these columns
plus its own; the alerts are planned on these columns alone."""

from __future__ import annotations

import polars as pl

UTC_MS = pl.Datetime("ms", "UTC")

OK, WARN, ALERT, NA = "ok", "warn", "alert", "n/a"  # n/a: nothing to judge (no rows, no champion)
LEVELS = (OK, WARN, ALERT, NA)
SEVERITY = {NA: 0, OK: 0, WARN: 1, ALERT: 2}

COMMON: dict[str, pl.DataType] = {
    "as_of": UTC_MS,  # the check's time: the DAG run's data interval end
    "check": pl.String(),  # freshness | gate | drift | accuracy | paper | tasks
    "subject": pl.String(),  # what was judged: "spot:BTCUSDT:1h", "<model>/<feature>", ...
    "level": pl.String(),  # ok | warn | alert | n/a
    "value": pl.Float64(),  # the figure judged (lag in bars, PSI, accuracy, drawdown, ...)
    "threshold": pl.Float64(),  # the level it crossed (the alert level when ok)
    "message": pl.String(),  # what happened and what to do
}


def level_above(value: float | None, warn: float | None, alert: float | None) -> str:
    """The level of a figure where higher is worse (lag, PSI, drawdown); n/a for None."""
    if value is None:
        return NA
    if alert is not None and value >= alert:
        return ALERT
    if warn is not None and value >= warn:
        return WARN
    return OK


def level_below(value: float | None, warn: float | None, alert: float | None) -> str:
    """The level of a figure where lower is worse (accuracy); n/a for None."""
    if value is None:
        return NA
    if alert is not None and value < alert:
        return ALERT
    if warn is not None and value < warn:
        return WARN
    return OK


def crossed(level: str, warn: float | None, alert: float | None) -> float | None:
    """The threshold a finding at `level` is reported against: warn's for a warning, the
    alert level otherwise (an ok finding shows how far it is from alerting)."""
    return warn if level == WARN else alert


def findings(*frames: pl.DataFrame) -> pl.DataFrame:
    """The COMMON columns of every check's frame, stacked (empty frames allowed)."""
    parts = [f.select(list(COMMON)).cast(COMMON) for f in frames if f.height]
    return pl.concat(parts) if parts else pl.DataFrame(schema=COMMON)


def alert_key(check: str, subject: str) -> str:
    """One condition's identity across runs: what the rate limit counts by."""
    return f"{check}:{subject}"
