"""USD-M funding rates into the `funding_rates` dataset, merged on (market, symbol, funding_time).

Funding settles every few hours at times with millisecond jitter, so there is no calendar
to check against: a run asks for what follows the last stored record of the window (or,
with `refresh`, the whole window again, as a cleared Airflow run does).
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.config import config_hash
from quantlab.context import RunContext
from quantlab.exchange.funding import FUNDING_RATES_KEY
from quantlab.ingest._store import write_lock
from quantlab.ingest.stage import rest_source, to_ms

DATASET = "funding_rates"
MARKET = "futures_um"
# The longest funding interval Binance uses (most perpetuals pay every 8 hours).
_FUNDING_EVERY_MS = 8 * 3_600_000


def stored_funding_times(catalog: Catalog, symbol: str, start_ms: int, end_ms: int) -> pl.Series:
    """Funding times (ms) of `symbol` already stored in `[start_ms, end_ms)`."""
    if not catalog.exists(DATASET):
        return pl.Series("t", [], dtype=pl.Int64)
    return (
        catalog.scan(catalog.latest(DATASET))
        .filter(pl.col("market") == MARKET, pl.col("symbol") == symbol)
        .select(pl.col("funding_time").dt.epoch("ms").alias("t"))
        .filter(pl.col("t") >= start_ms, pl.col("t") < end_ms)
        .collect()["t"]
    )


def run_funding(
    ctx: RunContext,
    symbol: str,
    start: date | datetime | int,
    end: date | datetime | int,
    *,
    refresh: bool = False,
) -> dict:
    """Fetch `symbol`'s funding records with funding_time in `[start, end)` into `funding_rates`."""
    lo, stop = to_ms(start), to_ms(end)
    stored = stored_funding_times(ctx.catalog, symbol, lo, stop)
    first = lo if refresh or stored.is_empty() else int(stored.max()) + 1
    frame = None
    requests = weight = 0
    if first < stop:
        with rest_source(ctx.config.exchange, ctx.config.paths.data) as source:
            frame = source.client(MARKET).fetch_funding_rates(symbol, first, stop - 1)
            requests, weight = source.usage()
    added = 0 if frame is None else int((~frame["funding_time"].dt.epoch("ms").is_in(stored)).sum())
    ref = None
    if frame is not None and frame.height:
        with write_lock(ctx.catalog, DATASET):
            ref = ctx.catalog.upsert(
                DATASET,
                frame,
                FUNDING_RATES_KEY,
                stage="ingest",
                config_hash=config_hash(ctx.config.exchange),
                extra={"symbol": symbol, "window": [lo, stop], "rows": frame.height},
            )
    if ref is None and ctx.catalog.exists(DATASET):
        ref = ctx.catalog.latest(DATASET)
    return {
        "symbol": symbol,
        "rows_added": added,
        "requests": requests,
        "weight_used": weight,
        "funding_rates": ref.to_dict() if ref else None,
    }


def run_universe(ctx: RunContext) -> DatasetRef | None:
    """Funding of the research universe's perpetuals, for the funding features; else None.

    Only a `futures_um` universe with `features.funding` configured has any. Each symbol
    is fetched from before `universe.start` by the longest warm-up of those features (in
    8-hour payments), so the first bars get full windows. Returns the `funding_rates`
    version holding them, or None when the exchange had no funding for any symbol.
    """
    from quantlab.features import resolve

    universe, names = ctx.config.universe, ctx.config.features.funding
    if universe.market != MARKET or not names:
        return None
    warmup = max(resolve(name, ctx.config.features).warmup for name in names)
    start = to_ms(universe.start) - (warmup + 1) * _FUNDING_EVERY_MS
    for symbol in universe.symbols:
        run_funding(ctx, symbol, start, universe.end)
    if not ctx.catalog.exists(DATASET):
        return None
    ref = ctx.catalog.latest(DATASET)
    rows = (
        ctx.catalog.scan(ref)
        .filter(pl.col("market") == MARKET, pl.col("symbol").is_in(list(universe.symbols)))
        .select(pl.len())
        .collect()
        .item()
    )
    return ref if rows else None
