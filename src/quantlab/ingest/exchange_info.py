"""Symbols and their trading filters into the `exchange_info` dataset, one snapshot per change.

Each row carries `snapshot_time`, the exchange's clock when it answered; the key is
`(market, symbol, snapshot_time)`. Snapshots are merged, not overwritten, so the latest
version holds the filters' history (a tick size or status as of any time) in one table
instead of scattered over old Delta versions that a vacuum may delete. A snapshot equal to
the market's latest one is not written again: hourly runs do not repeat 2,000 unchanged rows.
"""

from __future__ import annotations

import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.exchange.exchange_info import parse_exchange_info
from quantlab.ingest._store import write_lock
from quantlab.ingest.mapped import IngestReport
from quantlab.ingest.stage import rest_source
from quantlab.schema import EXCHANGE_INFO_KEY, UTC_MS

DATASET = "exchange_info"
KEY = (*EXCHANGE_INFO_KEY, "snapshot_time")


def snapshot_frame(raw: dict, market: str, snapshot_ms: int) -> pl.DataFrame:
    """The parsed symbols of one exchangeInfo answer, stamped with its time."""
    return parse_exchange_info(raw, market).with_columns(
        pl.lit(snapshot_ms).cast(pl.Int64).cast(UTC_MS).alias("snapshot_time")
    )


def same_filters(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Whether two snapshots list the same symbols with the same status and filters."""
    cols = [c for c in a.columns if c != "snapshot_time"]
    if set(cols) != {c for c in b.columns if c != "snapshot_time"}:
        return False
    return a.select(cols).sort("symbol").equals(b.select(cols).sort("symbol"))


def latest_snapshot(catalog: Catalog, market: str) -> pl.DataFrame | None:
    """The market's newest stored snapshot, or None."""
    if not catalog.exists(DATASET):
        return None
    lf = catalog.scan(catalog.latest(DATASET)).filter(pl.col("market") == market)
    return lf.filter(pl.col("snapshot_time") == pl.col("snapshot_time").max()).collect()


def run_exchange_info(
    ctx: RunContext, market: str, symbols: list[str] | None = None
) -> IngestReport:
    """Snapshot `market`'s exchangeInfo (every symbol, or `symbols`) into `exchange_info`."""
    with rest_source(ctx.config.exchange, ctx.config.paths.data) as source:
        client = source.client(market)
        raw = client.exchange_info(symbols)
        snapshot_ms = int(raw.get("serverTime") or client.server_time())
        requests, weight = source.usage()
    frame = snapshot_frame(raw, market, snapshot_ms)
    with write_lock(ctx.catalog, DATASET):
        previous = latest_snapshot(ctx.catalog, market)
        if symbols and previous is not None:
            previous = previous.filter(pl.col("symbol").is_in(symbols))
        changed = previous is None or not same_filters(previous, frame)
        ref = None
        if changed:
            ref = ctx.catalog.upsert(
                DATASET,
                frame,
                KEY,
                stage="ingest",
                config_hash=slice_hash(ctx.config, ("exchange",)),
                extra={"market": market, "symbols": frame.height, "snapshot_ms": snapshot_ms},
                partition_by=["market"],
            )
        ref = ref or ctx.catalog.latest(DATASET)
    return IngestReport(
        DATASET,
        ref,
        market,
        rows_added=frame.height if changed else 0,
        requests=requests,
        weight_used=weight,
        counts={"symbols": frame.height, "snapshot_time": snapshot_ms, "written": changed},
    )


def run_universe(ctx: RunContext) -> DatasetRef:
    """The research universe's filters (tick, step, min notional): what the backtest rounds to.

    Snapshots the universe market's exchangeInfo for `universe.symbols` (an unchanged snapshot
    writes nothing) and returns the `exchange_info` version holding it.
    """
    universe = ctx.config.universe
    return run_exchange_info(ctx, universe.market, list(universe.symbols)).ref
