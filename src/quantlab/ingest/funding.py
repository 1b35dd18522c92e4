"""USD-M funding rates into the `funding_rates` dataset, merged on (market, symbol, funding_time).

Funding settles every 8, 4 or 1 hours (by symbol, and changing over time) at times with
millisecond jitter, so there is no calendar to check against. A run asks for every hole of
the stored records in its window: before the first, after the last, and between two records
farther apart than the interval observed beside them (or, with `refresh`, the whole window
again, as a cleared Airflow run does).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from itertools import pairwise

import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.ingest._calendar import Range, coalesce
from quantlab.ingest._store import write_lock
from quantlab.ingest.mapped import IngestReport
from quantlab.ingest.stage import last_before, report_hole, rest_source, resume_from, to_ms
from quantlab.schema import FUNDING_RATES_KEY, FUNDING_RATES_SCHEMA

DATASET = "funding_rates"
MARKET = "futures_um"
_HOUR_MS = 3_600_000
# The longest funding interval Binance uses (most perpetuals pay every 8 hours); the
# shortest is 1 hour (a symbol whose rate hits its cap or floor).
_FUNDING_EVERY_MS = 8 * _HOUR_MS
# fundingTime lands a few ms after its hour; Binance allows itself up to a minute.
_JITTER_MS = 60_000
# Holes fewer than this many hours apart are fetched as one range: under one page of
# 1000 records even at 1-hour funding, so one request instead of two.
_COALESCE_HOURS = 720


def funding_holes(times: Sequence[int], start_ms: int, stop_ms: int) -> list[Range]:
    """Inclusive ms ranges of `[start_ms, stop_ms)` that may hold funding records not in `times`.

    `times` are the stored funding times in the window. A hole is the time before the first
    record or after the last (when an hour fits), or the time between two records spaced
    more than 8 hours apart, or more than a spacing next to them (the interval then in
    force, in whole hours: jitter is rounded away). Where a symbol's interval shortens, the
    spacing before is asked for once too: the exchange cannot say which it was.
    """
    if stop_ms <= start_ms:
        return []
    times = sorted(times)
    if not times:
        return [(start_ms, stop_ms - 1)]
    holes: list[Range] = []
    if times[0] - start_ms >= _HOUR_MS - _JITTER_MS:
        holes.append((start_ms, times[0] - 1))
    hours = [round((b - a) / _HOUR_MS) for a, b in pairwise(times)]
    for i, h in enumerate(hours):
        beside = hours[max(i - 1, 0) : i] + hours[i + 1 : i + 2]
        if h > _FUNDING_EVERY_MS // _HOUR_MS or (beside and h > max(min(beside), 1)):
            holes.append((times[i] + 1, times[i + 1] - 1))
    if stop_ms - times[-1] > _HOUR_MS - _JITTER_MS:
        holes.append((times[-1] + 1, stop_ms - 1))
    return coalesce(holes, _HOUR_MS, _COALESCE_HOURS)


def _funding_times(catalog: Catalog, symbol: str) -> pl.LazyFrame:
    """The stored funding times (ms, column `t`) of `symbol`."""
    if not catalog.exists(DATASET):
        return pl.LazyFrame(schema={"t": pl.Int64})
    return (
        catalog.scan(catalog.latest(DATASET))
        .filter(pl.col("market") == MARKET, pl.col("symbol") == symbol)
        .select(pl.col("funding_time").dt.epoch("ms").alias("t"))
    )


def stored_funding_times(catalog: Catalog, symbol: str, start_ms: int, end_ms: int) -> pl.Series:
    """Funding times (ms) of `symbol` already stored in `[start_ms, end_ms)`."""
    times = _funding_times(catalog, symbol)
    return times.filter(pl.col("t") >= start_ms, pl.col("t") < end_ms).collect()["t"]


def _backfill_call(symbol: str, hole: tuple[int, int]) -> str:
    return (
        'python -c "from quantlab import ingest; from quantlab.context import RunContext; '
        f"ingest.run_funding(RunContext.load(), '{symbol}', {hole[0]}, {hole[1]})\""
    )


def run_funding(
    ctx: RunContext,
    symbol: str,
    start: date | datetime | int,
    end: date | datetime | int,
    *,
    refresh: bool = False,
    lookback: timedelta | None = None,
) -> IngestReport:
    """Fetch `symbol`'s funding records with funding_time in `[start, end)` into `funding_rates`.

    With `lookback` (a DAG run), the window first reaches back to the last stored record,
    at most that far: an older hole is logged with the call that backfills it, and
    returned as `not_fetched`. A symbol with nothing stored starts at `start`.
    """
    lo, stop = to_ms(start), to_ms(end)
    missed = None
    if lookback is not None:
        floor = lo - int(lookback.total_seconds() * 1000)
        last = last_before(_funding_times(ctx.catalog, symbol), floor, lo)
        lo, hole = resume_from(None if last is None else last + 1, lo, floor)
        if hole is not None:
            what = f"{symbol} funding records"
            missed = report_hole(what, hole, lookback, _backfill_call(symbol, hole))
    stored = stored_funding_times(ctx.catalog, symbol, lo, stop)
    ranges = (
        [(lo, stop - 1)] if refresh and lo < stop else funding_holes(stored.to_list(), lo, stop)
    )
    frames: list[pl.DataFrame] = []
    requests = weight = 0
    if ranges:
        with rest_source(ctx.config.exchange, ctx.config.paths.data) as source:
            client = source.client(MARKET)
            frames = [client.fetch_funding_rates(symbol, a, b) for a, b in ranges]
            requests, weight = source.usage()
    fetched = pl.concat([pl.DataFrame(schema=FUNDING_RATES_SCHEMA), *frames])
    fetched = fetched.unique("funding_time", keep="last").sort("funding_time")
    new = ~fetched["funding_time"].dt.epoch("ms").is_in(stored)
    # Without `refresh` only new records are written: a rerun over a full window writes nothing.
    frame = fetched if refresh else fetched.filter(new)
    ref = None
    if frame.height:
        with write_lock(ctx.catalog, DATASET):
            ref = ctx.catalog.upsert(
                DATASET,
                frame,
                FUNDING_RATES_KEY,
                stage="ingest",
                config_hash=slice_hash(ctx.config, ("exchange",)),
                extra={"symbol": symbol, "window": [lo, stop], "rows": frame.height},
            )
    if ref is None and ctx.catalog.exists(DATASET):
        ref = ctx.catalog.latest(DATASET)
    return IngestReport(
        DATASET,
        ref,
        MARKET,
        symbol,
        rows_added=int(new.sum()),
        requests=requests,
        weight_used=weight,
        not_fetched=missed,
    )


def run_universe(ctx: RunContext) -> DatasetRef | None:
    """Funding of the research universe's perpetuals, for the backtest and the funding features.

    Only a `futures_um` universe has any (else None): from the exchange, or from freqtrade's
    files with `exchange.source: freqtrade`. Each symbol is fetched from before
    `universe.start` by the longest warm-up of the configured funding features (in 8-hour
    payments), so the first bars get full windows. Returns the `funding_rates`
    version holding them, or None when the exchange had no funding for any symbol.
    """
    from quantlab.features import resolve

    universe, names = ctx.config.universe, ctx.config.features.funding
    if universe.market != MARKET:
        return None
    # The backtest charges funding over the universe's span; features reach back their warm-up.
    warmup = max((resolve(name, ctx.config.features).warmup for name in names), default=0)
    start = to_ms(universe.start) - (warmup + 1) * _FUNDING_EVERY_MS
    if ctx.config.exchange.source == "freqtrade":  # freqtrade's funding_rate files
        from quantlab.ingest.freqtrade_import import run_universe_funding

        run_universe_funding(ctx, start)
    else:
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
