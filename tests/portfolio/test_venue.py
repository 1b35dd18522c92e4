"""Exchange filters: one rounding for the backtest and the paper bridge, float-safe."""

from __future__ import annotations

import math

import polars as pl
import pytest

import engine_data as data
from quantlab.errors import DataError
from quantlab.portfolio.types import RejectReason
from quantlab.portfolio.venue import (
    check_order,
    check_order_for,
    floor_to_step,
    round_price,
    venue_rules,
)


@pytest.mark.parametrize(
    ("qty", "step", "expected"),
    [
        (0.3, 0.1, 0.3),  # 0.3 / 0.1 == 2.9999999999999996: a plain floor gives 0.2
        (0.7, 0.1, 0.7),
        (0.29999, 0.1, 0.2),
        (1.23456789, 0.00001, 1.23456),
        (0.000009, 0.00001, 0.0),
        (5.0, 0.0, 5.0),  # no filter
    ],
)
def test_floor_to_step_is_float_safe(qty, step, expected):
    assert floor_to_step(qty, step) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("price", "tick", "side", "expected"),
    [
        (100.001, 0.01, 1, 100.01),  # a buy rounds up: against the taker
        (100.001, 0.01, -1, 100.0),  # a sell rounds down
        (100.01, 0.01, 1, 100.01),  # on the grid already: unchanged either way
        (100.01, 0.01, -1, 100.01),
        (0.3, 0.1, 1, 0.3),
    ],
)
def test_round_price_goes_against_the_taker(price, tick, side, expected):
    assert round_price(price, tick, side) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("qty", "price", "reduce_only", "reason"),
    [
        (0.0, 20_000.0, False, RejectReason.STEP_SIZE),
        (0.000001, 20_000.0, False, RejectReason.MIN_QTY),
        (0.0002, 20_000.0, False, RejectReason.MIN_NOTIONAL),  # 4 USDT < 5
        (0.0002, 20_000.0, True, None),  # closing a position: no min notional
        (9001.0, 20_000.0, False, RejectReason.MAX_QTY),
        (0.001, 20_000.0, False, None),
    ],
)
def test_check_order_on_the_real_btcusdt_spot_filters(qty, price, reduce_only, reason):
    rules = data.spot_rules()
    assert check_order_for(rules, "BTCUSDT", qty, price, reduce_only) == reason
    code = check_order(qty, price, 1e-5, 1e-5, 9000.0, 5.0, reduce_only)
    assert code == (0 if reason is None else reason.value)


def test_venue_rules_read_the_real_filters_and_the_latest_snapshot():
    info = data.spot_exchange_info()
    rules = venue_rules(info, ["SOLUSDT", "BTCUSDT"], "spot")
    assert rules.symbols == ("SOLUSDT", "BTCUSDT")
    assert list(rules.step_size) == [0.01, 0.00001]
    assert list(rules.tick_size) == [0.01, 0.01]
    assert list(rules.min_notional) == [5.0, 5.0]
    older = info.with_columns(
        snapshot_time=pl.datetime(2023, 1, 1, time_zone="UTC").cast(pl.Datetime("ms", "UTC"))
    )
    newer = info.with_columns(
        step_size=pl.col("step_size") * 10,
        snapshot_time=pl.datetime(2024, 1, 1, time_zone="UTC").cast(pl.Datetime("ms", "UTC")),
    )
    latest = venue_rules(pl.concat([newer, older]), ["BTCUSDT"], "spot")
    assert latest.step_size[0] == pytest.approx(0.0001)


def test_a_symbol_missing_from_exchange_info_names_the_fix():
    with pytest.raises(DataError, match=r"DOGEUSDT.*exchange_info task"):
        venue_rules(data.spot_exchange_info(), ["BTCUSDT", "DOGEUSDT"], "spot")
    with pytest.raises(DataError, match="futures_um"):
        venue_rules(data.spot_exchange_info(), ["BTCUSDT"], "futures_um")


def test_a_missing_filter_means_no_limit():
    info = data.spot_exchange_info().with_columns(max_qty=pl.lit(None, pl.Float64))
    assert math.isinf(venue_rules(info, ["BTCUSDT"], "spot").max_qty[0])
