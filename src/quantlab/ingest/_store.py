"""What ingest reads from and writes to `klines`, and the write lock of an ingest dataset.

Delta merges into one table from two writers at once conflict, so every ingest write holds
an exclusive lock on the table for the length of its commit. The lock is an OS file lock
(flock): a writer killed with -9 releases it with its process, never leaving it stale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.schema import KLINES_KEY, KLINES_PARTITIONS, conform_klines

KLINES = "klines"


@contextlib.contextmanager
def write_lock(catalog: Catalog, name: str) -> Iterator[None]:
    """Hold the exclusive write lock of dataset `name` (blocks while another writer has it)."""
    with catalog.lock(name):  # the catalog's own lock file (its work_dir on an object store)
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
