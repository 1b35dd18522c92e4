"""The `run` functions of the ingest stage: the research universe, and one symbol of a DAG run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

from quantlab.catalog import DatasetRef
from quantlab.config import ExchangeConfig, config_hash
from quantlab.context import RunContext
from quantlab.errors import DatasetNotFound
from quantlab.exchange import ban_file
from quantlab.exchange.replay import ReplayServer
from quantlab.ingest.klines import IngestResult, ingest_klines
from quantlab.ingest.sources import RestSource
from quantlab.schema import INTERVAL_MS


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
    writes nothing and returns the latest version.
    """
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
            config_hash=config_hash(universe),
        )
    result.raise_for_errors()
    if result.klines is None:
        raise DatasetNotFound(
            f"the exchange returned no klines for {list(universe.symbols)} {universe.interval} "
            f"between {universe.start} and {universe.end}; check universe in the config"
        )
    return result.klines


def run_symbol(
    ctx: RunContext,
    market: str,
    symbol: str,
    interval: str,
    start: date | datetime | int,
    end: date | datetime | int,
    *,
    refresh: bool = True,
) -> dict:
    """Ingest the candles of one symbol that close within `[start, end)`: a DAG run's interval.

    Every candle that closes in the interval is final once the interval is over, whatever
    the candle's length, so a run (or a cleared rerun, with `refresh`) writes the same rows.
    A window the exchange has not closed yet raises `TemporaryExchangeError` for a retry.
    """
    step = INTERVAL_MS[interval]
    first_open, stop_open = to_ms(start) - step + 1, to_ms(end) - step + 1
    with rest_source(ctx.config.exchange, ctx.config.paths.data) as source:
        result = ingest_klines(
            ctx.catalog,
            source,
            market=market,
            interval=interval,
            symbols=[symbol],
            start_ms=first_open,
            end_ms=stop_open,
            refresh=refresh,
            strict=True,
            workers=1,
            config_hash=config_hash(ctx.config.exchange),
        )
    result.raise_for_errors()
    return {"market": market, "symbol": symbol, "interval": interval, **result.to_dict()}


def result_line(result: IngestResult) -> str:
    """One line for logs: what a run added and what it cost."""
    return (
        f"rows added {result.rows_added:,}, known gaps {result.known_gaps}, "
        f"requests {result.requests:,}, weight {result.weight_used:,}, {result.seconds:.2f} s"
    )
