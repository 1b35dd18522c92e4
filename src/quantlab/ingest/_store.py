"""What ingest reads from and writes to the catalog: `klines`, `klines_gaps`, and a write lock.

Delta merges into one table from two writers at once conflict, so every ingest write holds
an exclusive lock on the table for the length of its commit. The lock is an OS file lock
(flock): a writer killed with -9 releases it with its process, never leaving it stale.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

import numpy as np
import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.ingest._calendar import Range
from quantlab.locks import file_lock
from quantlab.schema import KLINES_KEY, KLINES_PARTITIONS, UTC_MS, conform_klines

KLINES = "klines"
GAPS = "klines_gaps"

# A known gap: candles the exchange itself confirmed missing (it returned nothing for the
# window when asked again). gap_end is the open time of the last missing candle, inclusive.
GAPS_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.String(),
    "symbol": pl.String(),
    "interval": pl.String(),
    "gap_start": UTC_MS,
    "gap_end": UTC_MS,
    "bars_missing": pl.Int64(),
    "confirmed_at": UTC_MS,
}
GAPS_KEY = ("market", "symbol", "interval", "gap_start")


@contextlib.contextmanager
def write_lock(catalog: Catalog, name: str) -> Iterator[None]:
    """Hold the exclusive write lock of dataset `name` (blocks while another writer has it)."""
    with file_lock(catalog.root.parent / "locks" / f"{name}.lock"):
        yield


def _scan(catalog: Catalog, name: str) -> pl.LazyFrame | None:
    if not catalog.exists(name):
        return None
    return catalog.scan(catalog.latest(name))


def stored_opens(
    catalog: Catalog,
    market: str,
    interval: str,
    symbols: Sequence[str],
    start_ms: int,
    stop_ms: int,
) -> dict[str, np.ndarray]:
    """Per symbol, the sorted open times (ms) stored in `[start_ms, stop_ms)`."""
    out = {s: np.empty(0, dtype=np.int64) for s in symbols}
    lf = _scan(catalog, KLINES)
    if lf is None or not symbols:
        return out
    t = pl.col("open_time").dt.epoch("ms")
    rows = (
        lf.filter(
            pl.col("market") == market,
            pl.col("interval") == interval,
            pl.col("symbol").is_in(list(symbols)),
        )
        .select("symbol", t.alias("t"))
        .filter(pl.col("t") >= start_ms, pl.col("t") < stop_ms)
        .collect()
    )
    for (symbol,), part in rows.partition_by("symbol", as_dict=True).items():
        out[str(symbol)] = np.sort(part["t"].to_numpy())
    return out


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
    lf = _scan(catalog, GAPS)
    if lf is None or not symbols:
        return out
    rows = (
        lf.filter(
            pl.col("market") == market,
            pl.col("interval") == interval,
            pl.col("symbol").is_in(list(symbols)),
        )
        .select(
            "symbol",
            pl.col("gap_start").dt.epoch("ms").alias("lo"),
            pl.col("gap_end").dt.epoch("ms").alias("hi"),
        )
        .filter(pl.col("hi") >= start_ms, pl.col("lo") < stop_ms)
        .sort("symbol", "lo")
        .collect()
    )
    for symbol, lo, hi in rows.iter_rows():
        out[symbol].append((lo, hi))
    return out


def gaps_frame(rows: Sequence[tuple[str, str, str, int, int, int, int]]) -> pl.DataFrame:
    """`klines_gaps` rows from (market, symbol, interval, start, end, bars, confirmed_at) tuples."""
    columns = list(GAPS_SCHEMA)
    df = pl.DataFrame(
        [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in columns],
        schema={c: pl.Int64() if isinstance(t, pl.Datetime) else t for c, t in GAPS_SCHEMA.items()},
        orient="col",
    )
    return df.with_columns(
        pl.col(c).cast(t) for c, t in GAPS_SCHEMA.items() if isinstance(t, pl.Datetime)
    )


def write_klines(
    catalog: Catalog, frame: pl.DataFrame, *, config_hash: str, extra: dict
) -> DatasetRef | None:
    """Merge `frame` into `klines` under the write lock; None when there is nothing to write.

    `frame` holds each candle once (`Catalog.upsert` refuses a repeated key).
    """
    if frame.is_empty():
        return None
    frame = conform_klines(frame)
    with write_lock(catalog, KLINES):
        return catalog.upsert(
            KLINES,
            frame,
            KLINES_KEY,
            stage="ingest",
            config_hash=config_hash,
            extra=extra,
            partition_by=list(KLINES_PARTITIONS),
        )


def write_gaps(
    catalog: Catalog, frame: pl.DataFrame, *, config_hash: str, extra: dict
) -> DatasetRef | None:
    """Merge confirmed gaps into `klines_gaps` under its write lock."""
    if frame.is_empty():
        return None
    with write_lock(catalog, GAPS):
        return catalog.upsert(
            GAPS,
            frame.unique(subset=list(GAPS_KEY), keep="last"),
            GAPS_KEY,
            stage="ingest",
            config_hash=config_hash,
            extra=extra,
        )


class BatchWriter:
    """Batches klines and gaps; commits them (klines first) from the one writing thread.

    A commit happens when `batch_rows` rows wait, or `flush_s` seconds passed with
    anything waiting, or on `flush()`.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        market: str,
        interval: str,
        config_hash: str,
        batch_rows: int,
        flush_s: float,
    ):
        self.catalog = catalog
        self.extra = {"market": market, "interval": interval}
        self.config_hash = config_hash
        self.batch_rows, self.flush_s = batch_rows, flush_s
        self.frames: list[pl.DataFrame] = []
        self.rows = 0
        self.gaps: list[tuple[str, str, str, int, int, int, int]] = []
        self.last_flush = time.monotonic()
        self.klines_ref: DatasetRef | None = None

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height:
            if not frame["open_time"].is_sorted():
                frame = frame.sort("open_time")
            self.frames.append(frame)
            self.rows += frame.height

    def add_gap(self, row: tuple[str, str, str, int, int, int, int]) -> None:
        self.gaps.append(row)

    def maybe_flush(self) -> None:
        due = time.monotonic() - self.last_flush >= self.flush_s
        if self.rows >= self.batch_rows or (due and (self.rows or self.gaps)):
            self.flush()

    def flush(self) -> None:
        if self.frames:
            # Pieces in time order per symbol, so each data file holds its candles sorted
            # (tight min/max statistics) without sorting the rows themselves.
            self.frames.sort(key=lambda f: (f["symbol"][0], f["open_time"][0]))
            frame = pl.concat(self.frames, how="vertical_relaxed")
            symbols = sorted(frame["symbol"].unique().to_list())
            extra = {**self.extra, "rows": frame.height, "symbols": symbols[:50]}
            ref = write_klines(self.catalog, frame, config_hash=self.config_hash, extra=extra)
            self.klines_ref = ref or self.klines_ref
            self.frames, self.rows = [], 0
        if self.gaps:
            extra = {**self.extra, "gaps": len(self.gaps)}
            gaps = gaps_frame(self.gaps)
            write_gaps(self.catalog, gaps, config_hash=self.config_hash, extra=extra)
            self.gaps = []
        self.last_flush = time.monotonic()
