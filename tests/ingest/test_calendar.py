"""The interval calendar core, table-driven on open times (ms)."""

from __future__ import annotations

import numpy as np
import pytest

from quantlab.ingest import _calendar as cal

H = 3_600_000
HALT = 1679662800000  # 2023-03-24 13:00 UTC
DAY = 1679616000000  # 2023-03-24 00:00 UTC


def hours(*offsets: int) -> np.ndarray:
    return np.array([DAY + o * H for o in offsets], dtype=np.int64)


@pytest.mark.parametrize(
    ("present", "known", "expected"),
    [
        ([hours(*range(24))], [], []),  # complete day
        ([hours(*range(13), *range(14, 24))], [], [(HALT, HALT)]),  # the real halt hour
        ([hours(*range(13), *range(14, 24))], [(HALT, HALT)], []),  # ... once known
        ([], [], [(DAY, DAY + 23 * H)]),  # nothing stored yet
        ([hours(0, 1), hours(5)], [], [(DAY + 2 * H, DAY + 4 * H), (DAY + 6 * H, DAY + 23 * H)]),
        (
            [hours(*range(24)) + 1],
            [],
            [(DAY, DAY + 23 * H)],
        ),  # off-calendar times count for nothing
        ([hours(-5, 30)], [(DAY - H, DAY + 2 * H)], [(DAY + 3 * H, DAY + 23 * H)]),
    ],
)
def test_missing_ranges(present, known, expected):
    assert cal.missing_ranges(DAY, DAY + 24 * H, H, present, known) == expected


def test_window_start_is_aligned_up_and_end_is_exclusive():
    assert cal.missing_ranges(DAY + 1, DAY + 3 * H, H, []) == [(DAY + H, DAY + 2 * H)]
    assert cal.missing_ranges(DAY, DAY, H, []) == []
    assert cal.calendar(DAY + 1, DAY + 3 * H + 1, H).tolist() == [DAY + H, DAY + 2 * H, DAY + 3 * H]


@pytest.mark.parametrize(
    ("ranges", "max_between", "expected"),
    [
        ([(0, 2 * H), (4 * H, 5 * H)], 2, [(0, 5 * H)]),  # one candle between: merged
        ([(0, 2 * H), (5 * H, 5 * H)], 2, [(0, 2 * H), (5 * H, 5 * H)]),  # two between: kept
        ([(5 * H, 6 * H), (0, H)], 0, [(0, H), (5 * H, 6 * H)]),  # sorted
        ([(0, H), (2 * H, 3 * H)], 0, [(0, H), (2 * H, 3 * H)]),
    ],
)
def test_coalesce(ranges, max_between, expected):
    assert cal.coalesce(ranges, H, max_between) == expected


def test_split_cuts_on_aligned_boundaries_and_covers_the_range_once():
    pieces = cal.split((3 * H, 25 * H), H, 10)
    assert pieces == [(3 * H, 9 * H), (10 * H, 19 * H), (20 * H, 25 * H)]
    assert cal.bars_in(pieces, H) == 23


def test_intersect():
    a = [(0, 10), (20, 30)]
    b = [(5, 25), (28, 40)]
    assert cal.intersect(a, b) == [(5, 10), (20, 25), (28, 30)]
    assert cal.intersect(a, []) == []
