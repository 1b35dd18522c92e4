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
