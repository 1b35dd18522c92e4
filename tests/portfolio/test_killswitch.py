"""The kill-switch acts on the equity path as it happens (crafted paths, synthetic equity):
a drawdown or a day's loss flattens at that close, holds flat for the cool-down, then resets
the peak and the day's start; the final drawdown plays no part."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantlab.config import RiskConfig
from quantlab.portfolio.killswitch import CLEAR, DAILY_LOSS, DRAWDOWN, kill_path, kill_step

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _path(equity: list[float], start: datetime = T0) -> pl.DataFrame:
    times = [start + timedelta(hours=i) for i in range(len(equity))]
    return pl.DataFrame({"open_time": times, "equity": [float(e) for e in equity]}).with_columns(
        pl.col("open_time").dt.cast_time_unit("ms")
    )


@pytest.mark.parametrize(
    ("equity", "peak", "day_start", "want"),
    [
        (80.0, 100.0, 80.0, CLEAR),  # 20% down from the peak, flat on the day
        (75.0, 100.0, 75.0, DRAWDOWN),  # exactly the drawdown limit trips
        (95.0, 100.0, 100.0, DAILY_LOSS),  # 5% since the day's start
        (70.0, 100.0, 100.0, DRAWDOWN),  # both: the drawdown is reported
        (120.0, 100.0, 100.0, CLEAR),  # a new high is no loss
    ],
)
def test_kill_step(equity, peak, day_start, want):
    assert kill_step(equity, peak, day_start, 0.25, 0.05) == want


def test_kill_step_with_a_trigger_off():
    assert kill_step(10.0, 100.0, 100.0, math.inf, math.inf) == CLEAR


def test_a_drawdown_trips_when_it_happens_and_holds_flat_for_the_cooldown():
    cfg = RiskConfig(kill_drawdown=0.2, kill_daily_loss=None, kill_cooldown_bars=3)
    # Peak 120 at bar 2; 96 at bar 4 is 20% below it. The path recovers to a new high by the
    # end: a switch that looked at the final drawdown (0) would never trip.
    equity = [100, 110, 120, 100, 96, 90, 85, 95, 100, 130, 140]
    out = kill_path(_path(equity), cfg)
    assert out["killed"].to_list() == [False] * 4 + [True] * 3 + [False] * 4
    assert out["reason"].to_list()[4] == "drawdown"
    assert out["reason"].to_list()[5:7] == ["", ""]


def test_after_the_cooldown_the_peak_resets_to_the_equity_then():
    cfg = RiskConfig(kill_drawdown=0.2, kill_daily_loss=None, kill_cooldown_bars=2)
    # Trip at bar 2 (80 vs 100); resume at bar 4 with peak 70: 60 is 14% below it, no trip,
    # though it is 40% below the old peak; 55 at bar 6 is 21% below 70: a second trip.
    equity = [100, 95, 80, 75, 70, 60, 55, 56]
    out = kill_path(_path(equity), cfg)
    assert out["killed"].to_list() == [False, False, True, True, False, False, True, True]
    assert out["reason"].to_list() == ["", "", "drawdown", "", "", "", "drawdown", ""]


def test_a_day_s_loss_counts_from_the_previous_day_s_last_close():
    cfg = RiskConfig(kill_drawdown=None, kill_daily_loss=0.05, kill_cooldown_bars=1)
    start = T0.replace(hour=21)  # bars 21:00, 22:00, 23:00 on day 1, then 00:00... on day 2
    equity = [100, 97, 96, 95.5, 94, 91.4]
    out = kill_path(_path(equity, start), cfg)
    # Day 1 starts at 100; 96 is only 4% down. Day 2 starts at 96 (23:00's close):
    # 91.4 is 4.8% below it (8.6% below day 1's start); 91.1 is 5.1% below it (4.6% below
    # 00:00's close, the wrong reference).
    assert not out["killed"].any()
    out = kill_path(_path([*equity[:-1], 91.1], start), cfg)
    assert out["killed"].to_list() == [False] * 5 + [True]
    assert out["reason"][5] == "daily_loss"


def test_each_row_depends_on_the_path_up_to_it_only():
    cfg = RiskConfig(kill_drawdown=0.1, kill_daily_loss=0.03, kill_cooldown_bars=4)
    equity = [100 + 10 * math.sin(i / 5) - 0.2 * i for i in range(120)]
    full = kill_path(_path(equity), cfg)
    assert full["killed"].any()
    for cut in (30, 60, 90):
        part = kill_path(_path(equity[:cut]), cfg)
        assert part.equals(full.head(cut))
