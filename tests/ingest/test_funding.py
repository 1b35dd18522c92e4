"""Which funding times a run asks the exchange for: every hole of the stored records."""

from __future__ import annotations

import pytest

from quantlab.ingest.funding import funding_holes

H = 3_600_000
DAY = 24 * H
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def at(*hours: float, jitter: int = 0) -> list[int]:
    return [T0 + int(h * H) + jitter for h in hours]


@pytest.mark.parametrize(
    ("times", "start", "stop", "want"),
    [
        # Nothing stored: the whole window.
        ([], T0, T0 + DAY, [(T0, T0 + DAY - 1)]),
        # Every 8 h with Binance's ms jitter, covering the window: nothing to fetch.
        (at(0, 8, 16, jitter=16), T0, T0 + 16 * H + H // 2, []),
        # Recent records only: the history before them, and the time after the last.
        (at(16), T0, T0 + 16 * H + H // 2, [(T0, T0 + 16 * H - 1)]),
        (at(8), T0 + 7 * H + H // 2, T0 + DAY + 1, [(T0 + 8 * H + 1, T0 + DAY)]),
        # Both, less than a page of records apart: one range, one request.
        (at(16), T0, T0 + DAY + 1, [(T0, T0 + DAY)]),
        # An 8 h symbol missing 08:00: 16 h between records.
        (at(0, 16), T0, T0 + 16 * H + 1, [(T0 + 1, T0 + 16 * H - 1)]),
        # A 4 h symbol missing 12:00: 8 h between records where it pays every 4 h.
        (at(0, 4, 8, 16, 20), T0, T0 + 20 * H + 1, [(T0 + 8 * H + 1, T0 + 16 * H - 1)]),
        # Steady 4 h spacing with jitter: no hole.
        (at(0, 4, 8, 12, 16, jitter=2), T0, T0 + 16 * H + 3, []),
        # Moving from 8 h to 4 h: the last 8 h spacing might hide a record (had the move
        # come earlier), so it is asked for; the exchange then answers nothing new.
        (at(0, 8, 16, 20, 24), T0, T0 + 24 * H + 1, [(T0 + 8 * H + 1, T0 + 16 * H - 1)]),
        # Two records 8 h apart say nothing about the interval: no hole below 8 h.
        (at(0, 8), T0, T0 + 8 * H + 1, []),
        # Longer than 8 h, Binance's longest interval, is a hole whatever the neighbours.
        (at(0, 24, 48), T0, T0 + 48 * H + 1, [(T0 + 1, T0 + 48 * H - 1)]),
        # A 1 h symbol (capped rate) missing two records.
        (at(0, 1, 2, 5, 6), T0, T0 + 6 * H + 1, [(T0 + 2 * H + 1, T0 + 5 * H - 1)]),
        # Less than an hour before the first and after the last: no record can be there.
        (at(0, 8, jitter=5), T0 - H // 2, T0 + 8 * H + H // 2, []),
        # An empty window asks for nothing.
        (at(0), T0, T0, []),
    ],
)
def test_funding_holes(times, start, stop, want):
    assert funding_holes(times, start, stop) == want


def test_holes_a_page_apart_are_fetched_together_farther_ones_apart():
    eight_hourly = [T0 + i * 8 * H for i in range(200)]
    near = eight_hourly[:10] + eight_hourly[11:20] + eight_hourly[21:]
    assert funding_holes(near, T0, near[-1] + 1) == [(near[9] + 1, near[19] - 1)]
    far = eight_hourly[:10] + eight_hourly[11:190] + eight_hourly[191:]
    assert funding_holes(far, T0, far[-1] + 1) == [
        (far[9] + 1, far[10] - 1),
        (far[188] + 1, far[189] - 1),
    ]
