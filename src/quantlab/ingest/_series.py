"""One symbol's bookkeeping during an ingest: what was asked, fetched, vouched for, and missing.

No I/O: the run feeds each fetched piece in (`take`), then asks which candles are holes
(`find_holes`), and after those were asked for once more, which holes are known gaps
(`confirm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from quantlab.ingest import _calendar as cal


@dataclass(frozen=True)
class Job:
    """One piece to fetch: inclusive open times; `recheck` for the second ask of a hole."""

    symbol: str
    first: int
    last: int
    recheck: bool = False


@dataclass
class SeriesState:
    symbol: str
    step: int
    stored: np.ndarray  # open times already stored in the window
    known: list[cal.Range]  # known gaps overlapping the window
    bars_total: int = 0
    bars_done: int = 0
    rows_added: int = 0
    outstanding: int = 0  # jobs queued or running
    rechecking: bool = False
    finished: bool = False
    fetched: list[np.ndarray] = field(default_factory=list)
    vouched: list[cal.Range] = field(default_factory=list)  # what the source answered for
    holes: list[cal.Range] = field(default_factory=list)
    gaps: list[cal.Range] = field(default_factory=list)
    pending_bars: int = 0  # not vouched for yet: asked for again by a later run
    error: BaseException | None = None

    def take(self, job: Job, klines: pl.DataFrame, covered_until: int) -> pl.DataFrame:
        """Account for one fetched piece; returns its rows inside the job's range."""
        step = self.step
        opens = (
            klines["open_time"].dt.epoch("ms").to_numpy()
            if klines.height
            else np.empty(0, np.int64)
        )
        keep = (opens >= job.first) & (opens <= job.last)
        if not keep.all():
            klines, opens = klines.filter(pl.Series(keep)), opens[keep]
        # Pieces of one symbol never overlap (a recheck asks only for what is missing).
        new = opens[~np.isin(opens, self.stored)] if self.stored.size else opens
        self.rows_added += int(new.size)
        self.fetched.append(opens)
        if covered_until > job.first:
            self.vouched.append((job.first, min(job.last, covered_until - step)))
        if not job.recheck:
            self.bars_done += (job.last - job.first) // step + 1
            if job.last + step > covered_until:
                # Newer than the bulk files, or not closed: not a gap, asked again next run.
                first = max(covered_until, job.first)
                got = int((opens >= first).sum())
                self.pending_bars += max((job.last - first) // step + 1 - got, 0)
        return klines

    def find_holes(self) -> list[cal.Range]:
        """Candles the source vouched for that are neither stored, fetched nor a known gap."""
        if self.vouched:
            lo, hi = min(a for a, _ in self.vouched), max(b for _, b in self.vouched)
            have = [self.stored, *self.fetched]
            missing = cal.missing_ranges(lo, hi + self.step, self.step, have, self.known)
            self.holes = cal.intersect(missing, self.vouched)
        self.vouched = []
        return self.holes

    def confirm(self, settled: int | None) -> list[cal.Range]:
        """Holes still missing after the second ask are known gaps, once closed long enough.

        `settled` is the exchange's clock less a margin (None: no clock, bulk files only).
        Anything else stays pending, for a later run to ask about.
        """
        step = self.step
        still: list[cal.Range] = []
        for lo, hi in self.holes:
            still += cal.missing_ranges(lo, hi + step, step, self.fetched, [])
        gaps = []
        for lo, hi in still:
            covered = any(a <= lo and hi <= b for a, b in self.vouched)
            old = settled is None or hi + step <= settled
            if covered and old:
                gaps.append((lo, hi))
            else:
                self.pending_bars += (hi - lo) // step + 1
        self.gaps, self.holes = gaps, []
        return gaps
