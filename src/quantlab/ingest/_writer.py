"""The one writer of an ingest: batches fetched klines and confirmed gaps, commits them in turn.

Klines are committed before the gaps that depend on them, each as one atomic Delta commit,
so a run killed between the two leaves candles without their gap rows, never the reverse.
"""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.ingest import _store as store
from quantlab.ingest._gaps import GapRow, GapWindow, gaps_frame, write_gaps
from quantlab.schema import KLINES_KEY


class BatchWriter:
    """Batches klines and gaps; commits them (klines first) from the one writing thread.

    A commit happens when `batch_rows` rows wait, or `flush_s` seconds passed with
    anything waiting, or on `flush()`. Each added frame holds one series; a candle added
    twice is committed once (the last copy), since `Catalog.upsert` refuses a repeated key.
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
        self.repeats = False  # a frame repeats one of its own candles
        self.gaps: list[GapRow] = []
        self.windows: list[GapWindow] = []
        self.last_flush = time.monotonic()
        self.klines_ref: DatasetRef | None = None

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height:
            if not frame["open_time"].is_sorted():
                frame = frame.sort("open_time")
            opens = frame["open_time"].dt.epoch("ms").to_numpy()
            self.repeats |= bool((np.diff(opens) == 0).any())
            self.frames.append(frame)
            self.rows += frame.height

    def add_gap(self, row: GapRow) -> None:
        self.gaps.append(row)

    def replace_gaps(self, window: GapWindow) -> None:
        """The known gaps inside `window` were asked for again: drop them at the next commit
        (the gaps confirmed again are added with `add_gap`)."""
        self.windows.append(window)

    def maybe_flush(self) -> None:
        due = time.monotonic() - self.last_flush >= self.flush_s
        waiting = self.rows or self.gaps or self.windows
        if self.rows >= self.batch_rows or (due and waiting):
            self.flush()

    def flush(self) -> None:
        if self.frames:
            # Pieces in time order per symbol, so each data file holds its candles sorted
            # (tight min/max statistics) without sorting the rows themselves.
            self.frames.sort(key=lambda f: (f["symbol"][0], f["open_time"][0]))
            frame = pl.concat(self.frames, how="vertical_relaxed")
            if self.repeats or _overlap(self.frames):
                frame = frame.sort("symbol", "open_time", maintain_order=True).unique(
                    subset=list(KLINES_KEY), keep="last", maintain_order=True
                )
            symbols = sorted(frame["symbol"].unique().to_list())
            extra = {**self.extra, "rows": frame.height, "symbols": symbols[:50]}
            ref = store.write_klines(self.catalog, frame, config_hash=self.config_hash, extra=extra)
            self.klines_ref = ref or self.klines_ref
            self.frames, self.rows, self.repeats = [], 0, False
        if self.gaps or self.windows:
            extra = {**self.extra, "gaps": len(self.gaps)}
            write_gaps(
                self.catalog,
                gaps_frame(self.gaps),
                self.windows,
                stage="ingest",
                config_hash=self.config_hash,
                extra=extra,
            )
            self.gaps, self.windows = [], []
        self.last_flush = time.monotonic()


def _overlap(frames: list[pl.DataFrame]) -> bool:
    """Whether two of `frames` (sorted by series, then first candle) share a candle."""
    last: dict[str, datetime] = {}
    for f in frames:
        symbol, first = f["symbol"][0], f["open_time"][0]
        if symbol in last and first <= last[symbol]:
            return True
        last[symbol] = max(f["open_time"][-1], last.get(symbol, first))
    return False
