"""Stage `ingest`: closed klines from the exchange into the `klines` dataset.

No input dataset (the source is the exchange, or the replay exchange over the
shipped sample on the embedded default). Output: `klines`, merged on
`(market, symbol, interval, open_time)` so an overlapping or repeated run
never duplicates a candle. Each symbol resumes after its last stored candle.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.config import ExchangeConfig, config_hash
from quantlab.context import RunContext
from quantlab.exchange.binance import BinanceClient
from quantlab.exchange.replay import ReplayServer
from quantlab.schema import INTERVAL_MS, KLINES_KEY, conform_klines

DATASET = "klines"


def _ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def plan_windows(
    last_open_ms: dict[str, int],
    symbols: tuple[str, ...],
    start: date,
    end: date,
    interval: str,
) -> dict[str, tuple[int, int]]:
    """Per symbol, the open-time window [first, last] still to fetch; symbols already complete are left out."""
    step = INTERVAL_MS[interval]
    first_ms, last_ms = _ms(start), _ms(end) - 1
    plan = {}
    for symbol in symbols:
        resume = last_open_ms.get(symbol)
        lo = max(first_ms, resume + step) if resume is not None else first_ms
        if lo <= last_ms:
            plan[symbol] = (lo, last_ms)
    return plan


def stored_last_open(ctx: RunContext) -> dict[str, int]:
    """The last stored open time (ms) per symbol for the configured market and interval."""
    if not ctx.catalog.exists(DATASET):
        return {}
    universe = ctx.config.universe
    last = (
        ctx.catalog.scan(ctx.catalog.latest(DATASET))
        .filter(pl.col("market") == universe.market, pl.col("interval") == universe.interval)
        .group_by("symbol")
        .agg(pl.col("open_time").max().dt.epoch("ms"))
        .collect()
    )
    return dict(zip(last["symbol"], last["open_time"], strict=True))


@contextlib.contextmanager
def exchange_url(cfg: ExchangeConfig) -> Iterator[str]:
    """The exchange's base URL; on the embedded default, a replay exchange started for this run."""
    if cfg.source == "binance":
        assert cfg.base_url is not None  # enforced by ExchangeConfig
        yield cfg.base_url
        return
    with ReplayServer(cfg.replay_root) as server:
        yield server.base_url


def run(ctx: RunContext) -> DatasetRef:
    """Fetch what is missing for each configured symbol and merge it into `klines`."""
    universe, cfg = ctx.config.universe, ctx.config.exchange
    plan = plan_windows(
        stored_last_open(ctx), universe.symbols, universe.start, universe.end, universe.interval
    )
    frames = []
    if plan:
        with exchange_url(cfg) as base_url:
            client = BinanceClient(
                base_url,
                market=universe.market,
                timeout_s=cfg.timeout_s,
                max_retries=cfg.max_retries,
            )
            for symbol, (lo, hi) in plan.items():
                frames.append(client.fetch_klines(symbol, universe.interval, lo, hi))
    fetched = conform_klines(pl.concat(frames)) if frames else pl.DataFrame()
    ref = ctx.catalog.upsert(
        DATASET,
        fetched,
        KLINES_KEY,
        stage="ingest",
        config_hash=config_hash(universe),
        extra={
            "source": cfg.source,
            "fetched_rows": fetched.height,
            "windows": {s: [lo, hi] for s, (lo, hi) in plan.items()},
        },
        partition_by=["market", "interval", "symbol"],
    )
    if ref is None:  # nothing new: the stored version already holds every closed candle
        return ctx.catalog.latest(DATASET)
    return ref
