"""Higher timeframes: bars built from the base bars, used only once closed."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig
from quantlab.errors import ConfigError
from quantlab.features import build_features

CFG = FeaturesConfig(
    columns=("logret_1",),
    timeframes={"4h": ("logret_1", "range_hl"), "1d": ("logret_1",)},
    cross_section={"rank": (), "zscore": ()},
    normalize={"columns": ()},
)


def _at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2023, month, day, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
def btc():
    return load_sample_klines("BTCUSDT", ("2023-03",)).sort("open_time")


@pytest.fixture(scope="module")
def out(btc):
    return build_features(btc, CFG).sort("open_time")


def _bar(btc: pl.DataFrame, start: datetime, hours: int) -> dict[str, float]:
    part = btc.filter(
        pl.col("open_time") >= start, pl.col("open_time") < start + timedelta(hours=hours)
    )
    return {
        "high": part["high"].max(),
        "low": part["low"].min(),
        "close": part["close"][-1],
    }


def _value(out: pl.DataFrame, t: datetime, col: str) -> float | None:
    return out.filter(pl.col("open_time") == t)[col][0]


def test_a_4h_bar_is_used_from_the_base_bar_that_closes_it(btc, out):
    # The 08:00-12:00 bar closes with the 11:00 base bar: from then on it is the latest.
    cur, prev = _bar(btc, _at(10, 8), 4), _bar(btc, _at(10, 4), 4)
    expected = math.log(cur["close"] / prev["close"])
    for hour in (11, 12, 13, 14):
        assert _value(out, _at(10, hour), "logret_1_4h") == pytest.approx(expected)
    # At 10:00 the 08:00 bar is still open: the base bar sees the 04:00-08:00 one.
    before = _bar(btc, _at(10, 0), 4)
    assert _value(out, _at(10, 10), "logret_1_4h") == pytest.approx(
        math.log(prev["close"] / before["close"])
    )
    assert _value(out, _at(10, 11), "range_hl_4h") == pytest.approx(
        (cur["high"] - cur["low"]) / cur["close"]
    )


def test_a_daily_bar_is_used_from_the_last_hour_of_its_day(btc, out):
    day9, day10 = _bar(btc, _at(9, 0), 24), _bar(btc, _at(10, 0), 24)
    assert _value(out, _at(10, 23), "logret_1_1d") == pytest.approx(
        math.log(day10["close"] / day9["close"])
    )
    assert _value(out, _at(10, 22), "logret_1_1d") != _value(out, _at(10, 23), "logret_1_1d")


def test_the_halt_does_not_delay_the_4h_bar_it_falls_in(btc, out):
    """2023-03-24 13:00 is missing; the 12:00-16:00 bar still closes with the 15:00 bar."""
    cur, prev = _bar(btc, _at(24, 12), 4), _bar(btc, _at(24, 8), 4)
    assert _value(out, _at(24, 15), "logret_1_4h") == pytest.approx(
        math.log(cur["close"] / prev["close"])
    )


def test_a_higher_timeframe_bar_the_data_starts_inside_is_never_used(btc):
    late = build_features(btc.filter(pl.col("open_time") >= _at(1, 2)), CFG).sort("open_time")
    # 00:00-04:00 was only half seen, so the first complete bar is 04:00-08:00, closed at 07:00,
    # and its log return needs the one before: the first value is at 11:00.
    first = late.filter(pl.col("logret_1_4h").is_not_null())["open_time"][0]
    assert first == _at(1, 11)


def test_timeframes_must_be_larger_multiples_of_the_bars():
    bars = load_sample_klines("BTCUSDT", ("2023-03",)).head(100)
    with pytest.raises(ConfigError, match="larger multiple"):
        build_features(bars, CFG.model_copy(update={"timeframes": {"1h": ("logret_1",)}}))
    with pytest.raises(ValueError):
        FeaturesConfig(timeframes={"90m": ("logret_1",)})
