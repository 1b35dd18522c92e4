"""`klines_gaps`: candles the exchange confirmed missing, which source confirmed them, and when.

One row per run of missing candles of one series, keyed by (market, symbol, interval,
gap_start); `gap_end` is the open time of the last missing candle, inclusive. `source` names
who answered the second ask: "rest" (the REST API) or "vision" (the data.binance.vision file
of that period, when no REST source was configured); null on rows written before sources
were recorded. The table is small (a few rows per series): new gaps are merged in, and a
change that removes rows (a recheck, `quantlab data gaps clear`) rewrites it whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.ingest._calendar import Range, align_up
from quantlab.ingest._store import write_lock
from quantlab.schema import GAPS_KEY, GAPS_SCHEMA, UTC_MS
from quantlab.vocab import INTERVAL_MS

GAPS = "klines_gaps"
GapRow = tuple[str, str, str, int, int, int, str, int]


@dataclass(frozen=True)
class GapWindow:
    """Candles whose known gaps are dropped: a series' re-asked window, or a `clear` filter.

    None matches anything; `first` and `last` are inclusive open times (ms).
    """

    market: str | None = None
    symbols: tuple[str, ...] | None = None
    interval: str | None = None
    first: int | None = None
    last: int | None = None

    def matches(self, market: str, symbol: str, interval: str) -> bool:
        return (
            (self.market is None or market == self.market)
            and (self.symbols is None or symbol in self.symbols)
            and (self.interval is None or interval == self.interval)
        )

    def outside(self, lo: int, hi: int, step: int) -> list[Range]:
        """The parts of the candles `[lo, hi]` (inclusive open times) outside this window."""
        first = lo if self.first is None else self.first
        last = hi if self.last is None else self.last
        if hi < first or lo > last:
            return [(lo, hi)]
        before = (lo, align_up(first, step) - step)  # the candles opening before `first`
        after = (align_up(last + 1, step), hi)  # ... and after `last`
        return [(a, b) for a, b in (before, after) if a <= b]


def gaps_frame(rows: Sequence[GapRow]) -> pl.DataFrame:
    """`klines_gaps` rows from (market, symbol, interval, start, end, bars, source,
    confirmed_at) tuples, times in ms."""
    columns = list(GAPS_SCHEMA)
    df = pl.DataFrame(
        [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in columns],
        schema={c: pl.Int64() if isinstance(t, pl.Datetime) else t for c, t in GAPS_SCHEMA.items()},
        orient="col",
    )
    return df.with_columns(
        pl.col(c).cast(t) for c, t in GAPS_SCHEMA.items() if isinstance(t, pl.Datetime)
    )


def _conform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """The stored rows in today's schema (rows written before `source` existed get null)."""
    have = lf.collect_schema().names()
    missing = [pl.lit(None, t).alias(c) for c, t in GAPS_SCHEMA.items() if c not in have]
    return lf.with_columns(missing).select(pl.col(c).cast(t) for c, t in GAPS_SCHEMA.items())


def read_gaps(
    catalog: Catalog,
    *,
    market: str | None = None,
    symbols: Sequence[str] | None = None,
    interval: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pl.DataFrame:
    """The confirmed gaps (latest `klines_gaps`), optionally of one market, some symbols, one
    interval, and overlapping the open times `[start_ms, end_ms)`; sorted, in `GAPS_SCHEMA`.

    Empty (with that schema) when no gap was ever recorded.
    """
    if not catalog.exists(GAPS):
        return gaps_frame([])
    lf = _conform(catalog.scan(catalog.latest(GAPS)))
    if market is not None:
        lf = lf.filter(pl.col("market") == market)
    if symbols is not None:
        lf = lf.filter(pl.col("symbol").is_in(list(symbols)))
    if interval is not None:
        lf = lf.filter(pl.col("interval") == interval)
    if start_ms is not None:
        lf = lf.filter(pl.col("gap_end").dt.epoch("ms") >= start_ms)
    if end_ms is not None:
        lf = lf.filter(pl.col("gap_start").dt.epoch("ms") < end_ms)
    return lf.sort(list(GAPS_KEY)).collect()


def known_gaps(
    catalog: Catalog,
    market: str,
    interval: str,
    symbols: Sequence[str],
    start_ms: int,
    stop_ms: int,
) -> dict[str, list[Range]]:
    """Per symbol, the known gaps that overlap `[start_ms, stop_ms)`, as inclusive ranges."""
    out: dict[str, list[Range]] = {s: [] for s in symbols}
    if not symbols:
        return out
    rows = read_gaps(
        catalog,
        market=market,
        symbols=symbols,
        interval=interval,
        start_ms=start_ms,
        end_ms=stop_ms,
    ).select("symbol", pl.col("gap_start").dt.epoch("ms"), pl.col("gap_end").dt.epoch("ms"))
    for symbol, lo, hi in rows.iter_rows():
        out[symbol].append((lo, hi))
    return out


def cut_gaps(gaps: pl.DataFrame, windows: Sequence[GapWindow]) -> pl.DataFrame:
    """`gaps` less the candles inside `windows`: a gap partly outside keeps its outer parts
    (each a row of its own, keyed by its new start)."""
    if not windows or gaps.is_empty():
        return gaps
    ms = gaps.with_columns(pl.col("gap_start", "gap_end").dt.epoch("ms"))
    rows = []
    for row in ms.iter_rows(named=True):
        step = INTERVAL_MS[row["interval"]]
        pieces = [(row["gap_start"], row["gap_end"])]
        for w in windows:
            if w.matches(row["market"], row["symbol"], row["interval"]):
                pieces = [p for lo, hi in pieces for p in w.outside(lo, hi, step)]
        for lo, hi in pieces:
            bars = (hi - lo) // step + 1
            rows.append({**row, "gap_start": lo, "gap_end": hi, "bars_missing": bars})
    out = pl.DataFrame(rows, schema=ms.schema, orient="row")
    return out.with_columns(pl.col("gap_start", "gap_end").cast(UTC_MS))


def write_gaps(
    catalog: Catalog,
    add: pl.DataFrame,
    windows: Sequence[GapWindow] = (),
    *,
    stage: str,
    config_hash: str = "",
    extra: dict | None = None,
) -> DatasetRef | None:
    """Drop the known gaps inside `windows`, then merge `add` in, under the table's write lock.

    A merge when nothing else changes; else the whole (small) table is written again as the
    next version, with the version it replaced as its input. None when nothing changed.
    """
    add = add.unique(subset=list(GAPS_KEY), keep="last", maintain_order=True)
    with write_lock(catalog, GAPS):
        if not catalog.exists(GAPS):
            if add.is_empty():
                return None
            return catalog.upsert(
                GAPS, add, GAPS_KEY, stage=stage, config_hash=config_hash, extra=extra
            )
        ref = catalog.latest(GAPS)
        lf = catalog.scan(ref)
        same_schema = lf.collect_schema().names() == list(GAPS_SCHEMA)
        merge_only = same_schema and not windows
        if not merge_only:
            current = _conform(lf).collect()
            key = list(GAPS_KEY)
            merged = pl.concat([current.join(add, on=key, how="anti"), add]).sort(key)
            wanted = pl.concat([cut_gaps(current, windows).join(add, on=key, how="anti"), add])
            wanted = wanted.sort(key)
            merge_only = same_schema and wanted.equals(merged)
        if merge_only:
            if add.is_empty():
                return None
            return catalog.upsert(
                GAPS, add, GAPS_KEY, stage=stage, config_hash=config_hash, extra=extra
            )
        return catalog.write(
            GAPS, wanted, stage=stage, inputs=[ref], config_hash=config_hash, extra=extra
        )


def clear_gaps(catalog: Catalog, window: GapWindow) -> tuple[pl.DataFrame, DatasetRef | None]:
    """Forget the known gaps inside `window`, so the next ingest asks for those candles again.

    Returns the rows that held candles inside the window (as they were) and the new version.
    """
    first = window.first
    end = None if window.last is None else window.last + 1
    hit = read_gaps(
        catalog,
        market=window.market,
        symbols=window.symbols,
        interval=window.interval,
        start_ms=first,
        end_ms=end,
    )
    if hit.is_empty():
        return hit, None
    ref = write_gaps(
        catalog, gaps_frame([]), [window], stage="gaps-clear", extra={"cleared": hit.height}
    )
    return hit, ref
