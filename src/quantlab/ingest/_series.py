"""One symbol's bookkeeping during an ingest: what was asked, fetched, vouched for, and missing.

No I/O: the run feeds each fetched piece in (`take`), then asks which candles are holes
(`find_holes`), and after those were asked for once more, which holes are known gaps
(`confirm`), each with the name of the source that answered the second ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

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


class Gap(NamedTuple):
    """Candles confirmed missing (inclusive open times), and the source that confirmed it."""

    first: int
    last: int
    source: str


@dataclass
class SeriesState:
    symbol: str
    step: int
    stored: np.ndarray  # open times already stored in the window
    known: list[cal.Range]  # known gaps overlapping the window (none when re-asked)
    bars_total: int = 0
    bars_done: int = 0
    rows_added: int = 0
    outstanding: int = 0  # jobs queued or running
    rechecking: bool = False
    finished: bool = False
    fetched: list[np.ndarray] = field(default_factory=list)
    vouched: list[cal.Range] = field(default_factory=list)  # what the source answered for
    answered: list[Gap] = field(default_factory=list)  # ... when asked again, and who did
    holes: list[cal.Range] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    regaps: cal.Range | None = None  # the window whose known gaps were asked for again
    pending_bars: int = 0  # not vouched for yet: asked for again by a later run
    error: BaseException | None = None

    def take(
        self, job: Job, klines: pl.DataFrame, covered_until: int, source: str = ""
    ) -> pl.DataFrame:
        """Account for one fetched piece; returns its rows inside the job's range.

        A recheck asks for coalesced holes, so it keeps only the candles of the holes: the
        ones between them were fetched already, and a batch must not hold a candle twice.
        """
        step = self.step
        opens = (
            klines["open_time"].dt.epoch("ms").to_numpy()
            if klines.height
            else np.empty(0, np.int64)
        )
        keep = (opens >= job.first) & (opens <= job.last)
        if job.recheck:
            keep &= _inside(opens, self.holes)
        if not keep.all():
            klines, opens = klines.filter(pl.Series(keep)), opens[keep]
        # Pieces of one symbol never overlap, and a recheck keeps only what is missing.
        new = opens[~np.isin(opens, self.stored)] if self.stored.size else opens
        self.rows_added += int(new.size)
        self.fetched.append(opens)
        if covered_until > job.first:
            answered = (job.first, min(job.last, covered_until - step))
            if job.recheck:
                self.answered.append(Gap(*answered, source))
            else:
                self.vouched.append(answered)
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

    def confirm(self, settled: int | None) -> list[Gap]:
        """Holes still missing after the second ask are known gaps, once closed long enough,
        confirmed by the source that answered that ask.

        `settled` is the exchange's clock less a margin (None: no clock, bulk files only).
        Anything else stays pending, for a later run to ask about.
        """
        step = self.step
        still: list[cal.Range] = []
        for lo, hi in self.holes:
            still += cal.missing_ranges(lo, hi + step, step, self.fetched, [])
        gaps = []
        for lo, hi in still:
            by = next((g.source for g in self.answered if g.first <= lo and hi <= g.last), None)
            old = settled is None or hi + step <= settled
            if by is not None and old:
                gaps.append(Gap(lo, hi, by))
            else:
                self.pending_bars += (hi - lo) // step + 1
        self.gaps, self.holes, self.answered = gaps, [], []
        return gaps


def _inside(opens: np.ndarray, ranges: list[cal.Range]) -> np.ndarray:
    """Which of `opens` fall in one of the sorted, disjoint inclusive `ranges`."""
    if not ranges:
        return np.zeros(opens.shape, dtype=bool)
    los = np.array([lo for lo, _ in ranges], dtype=np.int64)
    his = np.array([hi for _, hi in ranges], dtype=np.int64)
    i = np.searchsorted(los, opens, side="right") - 1
    return (i >= 0) & (opens <= his[np.maximum(i, 0)])
