"""The alert plan: which findings fire, which fired conditions resolve, and what a retry sends.

Pure functions on the findings' common columns and the `monitor_alerts` history. A condition
(its `alert_key`) fires once and then stays quiet while it holds, until `repeat_after` has
passed since it last fired; a rerun of the same run plans nothing new, so an alert is sent
exactly once per condition and window. Delivery is recorded on the fired row (`sent_at`,
`channel`), so an undelivered alert is sent again by the next try, never lost.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from quantlab.catalog.datasets import DATASETS
from quantlab.monitoring.findings import ALERT, SEVERITY, WARN, alert_key

FIRED, RESOLVED = "fired", "resolved"
SCHEMA = dict(DATASETS["monitor_alerts"].schema)


def plan_alerts(
    findings: pl.DataFrame,
    history: pl.DataFrame,
    as_of: datetime,
    *,
    min_level: str,
    repeat_after: timedelta,
) -> pl.DataFrame:
    """The `monitor_alerts` rows this run adds: fired for a finding at or above `min_level`
    (unless its condition fired within `repeat_after` of `as_of` and has not resolved since),
    resolved for a condition whose latest row is fired and whose check now judges it below
    `min_level` or no longer reports it."""
    if min_level not in (WARN, ALERT):
        raise ValueError(f"min_level must be {WARN!r} or {ALERT!r}, not {min_level!r}")
    floor = SEVERITY[min_level]
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    current = _worst_per_key(findings)
    latest = _latest_per_key(history)
    checks_run = set(current["check"].to_list())
    rows: list[dict] = []
    for f in current.iter_rows(named=True):
        if SEVERITY.get(f["level"], 0) < floor:
            continue
        last = latest.get(f["key"])
        message = f["message"]
        if last is not None and last["status"] == FIRED:
            if as_of - last["at"] < repeat_after:
                continue  # still firing and rate-limited (or this very run again)
            message = f"{message} (still true; last alerted {last['at']:%Y-%m-%d %H:%M} UTC)"
        rows.append(_row(f["key"], f["check"], f["subject"], f["level"], message, FIRED, as_of))
    by_key = {f["key"]: f for f in current.iter_rows(named=True)}
    for key, last in sorted(latest.items()):
        if last["status"] != FIRED or last["check"] not in checks_run or last["at"] >= as_of:
            continue
        f = by_key.get(key)
        if f is not None and SEVERITY.get(f["level"], 0) >= floor:
            continue
        if f is None:
            level, what = "n/a", "no longer reported by its check"
        else:
            level, what = f["level"], f"now {f['level']}: {f['message']}"
        message = (
            f"resolved ({what}); it fired at {last['at']:%Y-%m-%d %H:%M} UTC: {last['message']}"
        )
        rows.append(_row(key, last["check"], last["subject"], level, message, RESOLVED, as_of))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else _empty()


def undelivered(history: pl.DataFrame) -> pl.DataFrame:
    """The fired rows not yet delivered (`sent_at` null): what the next try sends again."""
    if history.height == 0:
        return _empty()
    pending = history.filter((pl.col("status") == FIRED) & pl.col("sent_at").is_null())
    return pending.select(list(SCHEMA)).cast(SCHEMA).sort("at", "key")


def mark_sent(rows: pl.DataFrame, sent_at: datetime, channel: str) -> pl.DataFrame:
    """`rows` recorded as delivered through `channel` (webhook | log) at `sent_at`."""
    return (
        rows.with_columns(pl.lit(sent_at).alias("sent_at"), pl.lit(channel).alias("channel"))
        .select(list(SCHEMA))
        .cast(SCHEMA)
    )


def _worst_per_key(findings: pl.DataFrame) -> pl.DataFrame:
    """One row per condition: its most severe finding in this run."""
    severity = pl.col("level").replace_strict(SEVERITY, default=0, return_dtype=pl.Int8)
    worst = (
        findings.with_columns(severity.alias("_sev"))
        .sort(["check", "subject", "_sev"], descending=[False, False, True])
        .unique(["check", "subject"], keep="first", maintain_order=True)
    )
    keys = [alert_key(c, s) for c, s in zip(worst["check"], worst["subject"], strict=True)]
    return worst.drop("_sev").with_columns(pl.Series("key", keys, dtype=pl.String))


def _latest_per_key(history: pl.DataFrame) -> dict[str, dict]:
    """Each condition's newest history row; at a tie a fired row counts as the newer one, so a
    doubt never fires twice."""
    if history.height == 0:
        return {}
    ordered = history.with_columns((pl.col("status") == FIRED).alias("_fired")).sort(
        "key", "at", "_fired"
    )
    latest = ordered.unique("key", keep="last", maintain_order=True)
    return {r["key"]: r for r in latest.iter_rows(named=True)}


def _row(key, check, subject, level, message, status, at) -> dict:
    return {
        "key": key,
        "check": check,
        "subject": subject,
        "level": level,
        "message": message,
        "status": status,
        "at": at,
        "sent_at": None,
        "channel": None,
    }


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)
