"""The gate's read side: the bars research stages read, from a `klines` version that passed the gate.

Only data that passed the gate can be read here.
"""

from __future__ import annotations

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext
from quantlab.quality.gate import require_passed
from quantlab.schema import UTC_MS


def load_bars(ctx: RunContext, klines: DatasetRef, checks: DatasetRef) -> pl.LazyFrame:
    """Klines of the configured market, interval and symbols; refuses a version that failed validation."""
    require_passed(ctx.catalog, klines, checks)
    universe = ctx.config.universe
    return ctx.catalog.scan(klines).filter(
        pl.col("market") == universe.market,
        pl.col("interval") == universe.interval,
        pl.col("symbol").is_in(list(universe.symbols)),
        pl.col("open_time") >= pl.lit(universe.start).cast(UTC_MS),
        pl.col("open_time") < pl.lit(universe.end).cast(UTC_MS),
    )


def load_mark(ctx: RunContext) -> pl.LazyFrame | None:
    """Mark-price candles of the configured universe from the latest `mark_klines`, which must
    have passed the gate (its latest `mark_klines_checks`); None when none were ingested.

    Columns: market, symbol, interval, open_time, close_time, open, high, low, close.
    """
    catalog = ctx.catalog
    if not catalog.exists("mark_klines"):
        return None
    mark = catalog.latest("mark_klines")
    if not catalog.exists("mark_klines_checks"):
        checks = None
    else:
        checks = catalog.latest("mark_klines_checks")
    if checks is None or catalog.lineage(checks).inputs.get("mark_klines") != mark.version:
        from quantlab.errors import QualityError

        raise QualityError(
            f"{mark} has not been validated; run `quantlab run ingest` (the freqtrade source "
            "gates its mark klines) or validate it with quantlab.quality.run"
        )
    require_passed(catalog, mark, checks)
    universe = ctx.config.universe
    return catalog.scan(mark).filter(
        pl.col("market") == universe.market,
        pl.col("interval") == universe.interval,
        pl.col("symbol").is_in(list(universe.symbols)),
        pl.col("open_time") >= pl.lit(universe.start).cast(UTC_MS),
        pl.col("open_time") < pl.lit(universe.end).cast(UTC_MS),
    )
