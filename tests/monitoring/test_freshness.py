"""The freshness and gate checks on tiny frames and a slice of the shipped BTCUSDT klines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.catalog.datasets import DATASETS
from quantlab.config.monitoring import FreshnessConfig
from quantlab.monitoring.freshness import (
    check_freshness,
    check_gates,
    expected_open,
    newest_candles,
)


def _t(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.mark.parametrize(
    ("as_of", "interval", "want"),
    [
        (_t(2023, 3, 24, 11, 0), "1h", _t(2023, 3, 24, 10, 0)),  # on the close: that candle
        (_t(2023, 3, 24, 10, 59, 59), "1h", _t(2023, 3, 24, 9, 0)),  # 10:00 still open
        (_t(2023, 3, 24, 11, 30), "1h", _t(2023, 3, 24, 10, 0)),
        (_t(2023, 3, 24, 11, 30), "4h", _t(2023, 3, 24, 4, 0)),  # 08:00 closes at 12:00
        (_t(2023, 3, 24, 0, 0), "1d", _t(2023, 3, 23)),
        (_t(2023, 3, 24, 0, 4), "5m", _t(2023, 3, 23, 23, 55)),
        (_t(2023, 3, 24, 0, 7), "5m", _t(2023, 3, 24, 0, 0)),
    ],
)
def test_expected_open_is_the_newest_closed_candle(as_of, interval, want):
    assert expected_open(as_of, interval) == want


def test_expected_open_refuses_a_naive_time():
    with pytest.raises(ValueError, match="naive"):
        expected_open(datetime(2023, 3, 24, 11), "1h")


@pytest.fixture(scope="module")
def klines() -> pl.DataFrame:
    return load_sample_klines("BTCUSDT", ("2023-03",))


def test_newest_candles_on_real_klines(klines):
    cut = klines.filter(pl.col("open_time") < _t(2023, 3, 24, 12))
    both = pl.concat([cut, cut.head(5).with_columns(symbol=pl.lit("ETHUSDT"))])
    got = newest_candles(both.lazy())
    assert got.columns == ["market", "symbol", "interval", "newest_open"]
    assert got.rows() == [
        ("spot", "BTCUSDT", "1h", _t(2023, 3, 24, 11)),
        ("spot", "ETHUSDT", "1h", cut["open_time"][4]),
    ]


CFG = FreshnessConfig(warn_lag_bars=1, alert_lag_bars=3)
SERIES = ("spot", "BTCUSDT", "1h")


@pytest.mark.parametrize(
    ("as_of", "lag", "level", "threshold"),
    [
        (_t(2023, 3, 24, 12, 0), 0, "ok", 3.0),  # newest 11:00 is still open at 12:00
        (_t(2023, 3, 24, 12, 59), 0, "ok", 3.0),
        (_t(2023, 3, 24, 13, 0), 1, "warn", 1.0),  # 12:00 closed and missing
        (_t(2023, 3, 24, 14, 30), 2, "warn", 1.0),
        (_t(2023, 3, 24, 15, 0), 3, "alert", 3.0),
        (_t(2023, 3, 26, 15, 0), 51, "alert", 3.0),
        (_t(2023, 3, 20, 0, 0), 0, "ok", 3.0),  # a check for a past time: newer data is not late
    ],
)
def test_check_freshness_levels(klines, as_of, lag, level, threshold):
    newest = newest_candles(klines.filter(pl.col("open_time") <= _t(2023, 3, 24, 11)))
    got = check_freshness(newest, [SERIES], as_of, CFG)
    DATASETS["monitor_freshness"].check(got)
    row = got.row(0, named=True)
    assert (row["lag_bars"], row["level"], row["threshold"]) == (lag, level, threshold)
    assert row["value"] == float(lag)
    assert row["subject"] == "spot:BTCUSDT:1h" and row["check"] == "freshness"
    assert row["newest_open"] == _t(2023, 3, 24, 11)
    assert row["expected_open"] == expected_open(as_of, "1h")
    assert row["as_of"] == as_of
    assert ("behind" in row["message"]) == (level != "ok")


def test_a_series_without_candles_alerts_with_a_null_lag(klines):
    newest = newest_candles(klines)
    as_of = _t(2023, 4, 1, 0, 30)
    series = [SERIES, ("futures_um", "BTCUSDT", "1h"), ("spot", "BTCUSDT", "4h")]
    got = check_freshness(newest, series, as_of, CFG)
    DATASETS["monitor_freshness"].check(got)
    assert got["subject"].to_list() == [
        "spot:BTCUSDT:1h",
        "futures_um:BTCUSDT:1h",
        "spot:BTCUSDT:4h",
    ]
    assert got["level"].to_list() == ["ok", "alert", "alert"]
    missing = got.row(1, named=True)
    assert missing["lag_bars"] is None and missing["value"] is None
    assert missing["newest_open"] is None and missing["threshold"] == 3.0
    assert "no candle" in missing["message"] and "market_data" in missing["message"]


def test_check_freshness_with_no_expected_series_is_empty(klines):
    got = check_freshness(newest_candles(klines), [], _t(2023, 4, 1), CFG)
    assert got.height == 0
    DATASETS["monitor_freshness"].check(got)


WRITTEN = _t(2023, 3, 24, 11, 5)


@pytest.mark.parametrize(
    ("passed", "failed", "level", "value", "failed_checks"),
    [
        (True, [], "ok", 1.0, ""),
        (False, ["no_gaps"], "alert", 0.0, "no_gaps"),
        (False, ["no_gaps", "ohlc_consistent"], "alert", 0.0, "no_gaps,ohlc_consistent"),
    ],
)
def test_check_gates(passed, failed, level, value, failed_checks):
    verdict = {
        "dataset": "klines_checks",
        "version": 7,
        "passed": passed,
        "failed_checks": failed,
        "written_at": WRITTEN,
    }
    as_of = WRITTEN + timedelta(minutes=10)
    got = check_gates([verdict], as_of)
    DATASETS["monitor_gate"].check(got)
    row = got.row(0, named=True)
    assert (row["check"], row["subject"], row["level"], row["value"]) == (
        "gate",
        "klines_checks",
        level,
        value,
    )
    assert (row["version"], row["passed"], row["failed_checks"]) == (7, passed, failed_checks)
    assert row["written_at"] == WRITTEN and row["as_of"] == as_of
    for name in failed:
        assert name in row["message"]


def test_check_gates_without_verdicts_is_empty():
    got = check_gates([], WRITTEN)
    assert got.height == 0
    DATASETS["monitor_gate"].check(got)


def test_the_2023_03_24_halt_shows_as_a_lag(klines):
    # Binance halted spot trading: no 13:00 candle. At 14:00 the newest is 12:00, one behind.
    seen = klines.filter(pl.col("open_time") < _t(2023, 3, 24, 14))
    got = check_freshness(newest_candles(seen), [SERIES], _t(2023, 3, 24, 14), CFG)
    assert got.select("newest_open", "lag_bars", "level").row(0) == (
        _t(2023, 3, 24, 12),
        1,
        "warn",
    )
