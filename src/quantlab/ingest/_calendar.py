"""The interval calendar: which candles a window should hold, and which of them are missing.

Pure functions on open times in milliseconds since the epoch. Binance opens every candle of
an interval up to a day on a multiple of that interval since the epoch, so the calendar of a
window is just an arithmetic range. Ranges here are inclusive `(first_open, last_open)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Range = tuple[int, int]


def align_up(ms: int, step: int) -> int:
    """The first open time at or after `ms`."""
    return -(-ms // step) * step


def calendar(start_ms: int, stop_ms: int, step: int) -> np.ndarray:
    """Open times of every candle opening in `[start_ms, stop_ms)`."""
    first = align_up(start_ms, step)
    return np.arange(first, max(stop_ms, first), step, dtype=np.int64)


def missing_ranges(
    start_ms: int,
    stop_ms: int,
    step: int,
    present: Iterable[np.ndarray],
    known: Sequence[Range] = (),
) -> list[Range]:
    """Runs of candles in `[start_ms, stop_ms)` that are neither present nor in a known gap.

    `present` holds arrays of open times already at hand (stored, fetched); times off the
    calendar or outside the window are ignored.
    """
    first = align_up(start_ms, step)
    n = max((stop_ms - first + step - 1) // step, 0) if stop_ms > first else 0
    if n == 0:
        return []
    missing = np.ones(n, dtype=bool)
    for opens in present:
        opens = np.asarray(opens, dtype=np.int64)
        idx = (opens - first) // step
        ok = (opens >= first) & (idx < n) & ((opens - first) % step == 0)
        missing[idx[ok]] = False
    for lo, hi in known:
        a = max(align_up(lo, step) - first, 0) // step
        b = min((hi - first) // step + 1, n) if hi >= first else 0
        if a < b:
            missing[a:b] = False
    return _runs(missing, first, step)


def _runs(mask: np.ndarray, first: int, step: int) -> list[Range]:
    """Inclusive open-time ranges of the True runs in `mask`."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]]))
    return [
        (first + int(s) * step, first + int(e) * step) for s, e in zip(starts, ends, strict=True)
    ]


def coalesce(ranges: Sequence[Range], step: int, max_between: int) -> list[Range]:
    """Merge ranges separated by fewer than `max_between` candles.

    Fetching a few stored candles again (an upsert rewrites them unchanged) is cheaper than
    one more request per small hole.
    """
    out: list[Range] = []
    for lo, hi in sorted(ranges):
        if out and (lo - out[-1][1]) // step - 1 < max_between:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def split(rng: Range, step: int, bars: int) -> list[Range]:
    """Cut an inclusive range into pieces of at most `bars` candles, aligned to that size."""
    lo, hi = rng
    size = bars * step
    out = []
    while lo <= hi:
        end = min(hi, (lo // size + 1) * size - step)
        out.append((lo, end))
        lo = end + step
    return out


def bars_in(ranges: Iterable[Range], step: int) -> int:
    """How many candles the inclusive ranges span."""
    return sum((hi - lo) // step + 1 for lo, hi in ranges)


def intersect(a: Sequence[Range], b: Sequence[Range]) -> list[Range]:
    """The inclusive ranges covered by both `a` and `b`."""
    a, b = sorted(a), sorted(b)
    out: list[Range] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out
