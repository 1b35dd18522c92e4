"""The `run` functions of the ingest stage: the research universe, and one symbol of a DAG run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.config import ExchangeConfig, slice_hash
from quantlab.context import RunContext
from quantlab.errors import DatasetNotFound
from quantlab.exchange import ban_file
from quantlab.exchange.replay import ReplayServer
from quantlab.ingest._calendar import align_up
from quantlab.ingest.klines import IngestResult, ingest_klines
from quantlab.ingest.mapped import IngestReport
from quantlab.ingest.sources import RestSource
from quantlab.vocab import INTERVAL_MS

log = logging.getLogger(__name__)
# `quantlab data ingest --market` spells USD-M futures `um`.
_CLI_MARKET = {"spot": "spot", "futures_um": "um"}
_DAY_MS = 86_400_000


def to_ms(moment: date | datetime | int) -> int:
    """Milliseconds since the epoch; a date is its UTC midnight, a naive datetime is UTC."""
    if isinstance(moment, int):
        return moment
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@contextlib.contextmanager
def exchange_url(cfg: ExchangeConfig) -> Iterator[str]:
    """The exchange's base URL; on the embedded default, a replay exchange started for this run."""
    if cfg.source == "binance":
        assert cfg.base_url is not None  # enforced by ExchangeConfig
        yield cfg.base_url
        return
    with ReplayServer(cfg.replay_root) as server:
        yield server.base_url


@contextlib.contextmanager
def rest_source(cfg: ExchangeConfig, data: Path | None = None) -> Iterator[RestSource]:
    """A REST source on the configured exchange, closed afterwards. With the data folder
    `data`, a ban is recorded there and refused by every process and retry that uses it."""
    with exchange_url(cfg) as url:
        options = {"timeout_s": cfg.timeout_s, "max_retries": cfg.max_retries}
        source = RestSource(url, {**options, "ban_file": ban_file(data) if data else None})
        try:
            yield source
        finally:
            source.close()


def run(ctx: RunContext) -> DatasetRef:
    """Fetch what is missing for the research universe and merge it into `klines`.

    No input dataset; output `klines` (and `klines_gaps`). A run with nothing missing
    writes nothing and returns the latest version. With `exchange.source: freqtrade` the
    candles come from freqtrade's files in `exchange.freqtrade_root` instead.
    """
    if ctx.config.exchange.source == "freqtrade":
        from quantlab.ingest.freqtrade_import import run_freqtrade

        return run_freqtrade(ctx)
    universe = ctx.config.universe
    with rest_source(ctx.config.exchange, ctx.config.paths.data) as source:
        result = ingest_klines(
            ctx.catalog,
            source,
            market=universe.market,
            interval=universe.interval,
            symbols=universe.symbols,
            start_ms=to_ms(universe.start),
            end_ms=to_ms(universe.end),
            config_hash=slice_hash(ctx.config, ("universe",)),
        )
    result.raise_for_errors()
    if result.klines is None:
        raise DatasetNotFound(
            f"the exchange returned no klines for {list(universe.symbols)} {universe.interval} "
            f"between {universe.start} and {universe.end}; check universe in the config"
        )
    return result.klines


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def resume_from(
    next_ms: int | None, start_ms: int, floor_ms: int
) -> tuple[int, tuple[int, int] | None]:
    """Where a run whose interval starts at `start_ms` begins, and the hole it leaves behind.

    `next_ms` is the first record the stored series lacks before `start_ms` (None: nothing
    stored, a new series, whose history is a backfill's job). The run begins there, but not
    before `floor_ms` (its lookback); the older part, `[next_ms, floor_ms)`, is returned so
    the caller reports it rather than skipping it silently.
    """
    if next_ms is None or next_ms >= start_ms:
        return start_ms, None
    if next_ms >= floor_ms:
        return next_ms, None
    return floor_ms, (next_ms, floor_ms)


def last_before(times: pl.LazyFrame, floor_ms: int, before_ms: int) -> int | None:
    """The latest `t` (ms) of `times` before `before_ms`, or None.

    Only `[floor_ms, before_ms)` is read unless it holds none: older history is scanned
    only after an outage longer than the lookback, or for a new series.
    """
    times = times.filter(pl.col("t") < before_ms)
    for scope in (times.filter(pl.col("t") >= floor_ms), times):
        last = scope.select(pl.col("t").max()).collect().item()
        if last is not None:
            return int(last)
    return None


def report_hole(what: str, hole: tuple[int, int], lookback: timedelta, backfill: str) -> dict:
    """Log, as a warning, a hole older than the catch-up lookback, and describe it for the result."""
    log.warning(
        "%s from %s to %s (exclusive) were not fetched: they are older than the catch-up "
        "lookback (%s). Backfill them: %s",
        what,
        iso(hole[0]),
        iso(hole[1]),
        lookback,
        backfill,
    )
    return {"start": iso(hole[0]), "end": iso(hole[1]), "backfill": backfill}


def backfill_command(
    cfg: ExchangeConfig, market: str, symbol: str, interval: str, hole: tuple[int, int]
) -> str:
    """The `quantlab data ingest` command that fetches the candles opening in `hole`."""
    where = f"--base-url {cfg.base_url}" if cfg.source == "binance" else f"--root {cfg.replay_root}"
    first = datetime.fromtimestamp(hole[0] / 1000, UTC).date()
    stop = datetime.fromtimestamp(align_up(hole[1], _DAY_MS) / 1000, UTC).date()
    return (
        f"quantlab data ingest --source rest {where} --market {_CLI_MARKET[market]} "
        f"--symbols {symbol} --interval {interval} --start {first} --end {stop}"
    )


def stored_open_times(catalog: Catalog, market: str, symbol: str, interval: str) -> pl.LazyFrame:
    """The open times (ms, column `t`) of one stored klines series; empty without `klines`."""
    if not catalog.exists("klines"):
        return pl.LazyFrame(schema={"t": pl.Int64})
    return (
        catalog.scan(catalog.latest("klines"))
        .filter(
            pl.col("market") == market, pl.col("interval") == interval, pl.col("symbol") == symbol
        )
        .select(pl.col("open_time").dt.epoch("ms").alias("t"))
    )


def run_symbol(
    ctx: RunContext,
    market: str,
    symbol: str,
    interval: str,
    start: date | datetime | int,
    end: date | datetime | int,
    *,
    refresh: bool = True,
    lookback: timedelta | None = None,
) -> IngestReport:
    """Ingest the candles of one symbol that close within `[start, end)`: a DAG run's interval.

    Every candle that closes in the interval is final once the interval is over, whatever
    the candle's length, so a run (or a cleared rerun, with `refresh`) writes the same rows.
    With `lookback`, the run first catches up the series from its last stored candle (after
    a scheduler outage), at most that far back; an older hole is logged with the command
    that backfills it, and returned as `not_fetched`. A series with nothing stored starts
    at its interval. A window the exchange has not closed yet raises
    `TemporaryExchangeError` for a retry. The report carries the `klines` version.
    """
    step = INTERVAL_MS[interval]
    first_open, stop_open = to_ms(start) - step + 1, to_ms(end) - step + 1
    begin, hole, missed = first_open, None, None
    if lookback is not None:
        back = int(lookback.total_seconds() * 1000)
        floor = min(align_up(first_open - back, step), first_open)
        last = last_before(
            stored_open_times(ctx.catalog, market, symbol, interval), floor, first_open
        )
        begin, hole = resume_from(None if last is None else last + step, first_open, floor)
    if hole is not None:
        command = backfill_command(ctx.config.exchange, market, symbol, interval, hole)
        missed = report_hole(f"{market} {symbol} {interval} candles", hole, lookback, command)
    with rest_source(ctx.config.exchange, ctx.config.paths.data) as source:
        result = ingest_klines(
            ctx.catalog,
            source,
            market=market,
            interval=interval,
            symbols=[symbol],
            start_ms=begin,
            end_ms=stop_open,
            # Catching up fetches only what is missing; the interval's candles are final.
            refresh=refresh and begin == first_open,
            strict=True,
            workers=1,
            config_hash=slice_hash(ctx.config, ("exchange",)),
        )
    result.raise_for_errors()
    return IngestReport(
        "klines",
        result.klines,
        market,
        symbol,
        interval,
        rows_added=result.rows_added,
        requests=result.requests,
        weight_used=result.weight_used,
        caught_up_from=iso(begin) if begin < first_open else None,
        not_fetched=missed,
        counts={
            "known_gaps": result.known_gaps,
            "gaps_recorded": result.gaps_recorded,
            "seconds": round(result.seconds, 3),
        },
    )


def result_line(result: IngestResult) -> str:
    """One line for logs: what a run added and what it cost."""
    return (
        f"rows added {result.rows_added:,}, known gaps {result.known_gaps}, "
        f"requests {result.requests:,}, weight {result.weight_used:,}, {result.seconds:.2f} s"
    )
