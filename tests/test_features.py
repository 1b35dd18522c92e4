"""Features: no lookahead, nulls during warm-up, per-symbol isolation, on real klines."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig
from quantlab.features import build_features, feature_names

CFG = FeaturesConfig()


@pytest.fixture(scope="module")
def bars():
    months = ("2023-02", "2023-03", "2023-04")
    return pl.concat([load_sample_klines(s, months) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")])


def test_every_feature_is_present_and_keyed(bars):
    out = build_features(bars, CFG)
    assert out.columns == ["symbol", "open_time", *feature_names(CFG)]
    assert len(feature_names(CFG)) >= 10
    assert out.height == bars.height
    assert out.select("symbol", "open_time").is_duplicated().sum() == 0


def test_values_at_t_do_not_change_when_later_bars_are_cut_off(bars):
    """The leakage test: features on data cut at t equal features on all data, for every row <= t."""
    full = build_features(bars, CFG)
    times = bars["open_time"].unique().sort()
    rng = random.Random(7)
    for cut in rng.sample(list(times[200:]), 5):
        cut_bars = bars.filter(pl.col("open_time") <= cut)
        partial = build_features(cut_bars, CFG)
        expected = full.filter(pl.col("open_time") <= cut)
        assert_frame_equal(partial, expected)


def test_warm_up_rows_are_null_not_guessed(bars):
    out = build_features(bars.filter(pl.col("symbol") == "BTCUSDT"), CFG).sort("open_time")
    assert out["vol_72"].head(72).is_null().all()
    assert out["vol_72"][72] is not None
    assert out["ret_24"].head(24).is_null().all()
    assert out[f"rsi_{CFG.rsi_window}"].head(CFG.rsi_window).is_null().all()


def test_symbols_do_not_bleed_into_each_other(bars):
    together = build_features(bars, CFG).filter(pl.col("symbol") == "ETHUSDT")
    alone = build_features(bars.filter(pl.col("symbol") == "ETHUSDT"), CFG)
    assert_frame_equal(together, alone)


def test_hand_checked_values_on_real_bars(bars):
    btc = bars.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")
    out = build_features(btc, CFG).sort("open_time")
    closes = btc["close"].to_list()
    import math

    assert out["ret_1"][5] == pytest.approx(math.log(closes[5] / closes[4]))
    assert out["ret_4"][10] == pytest.approx(math.log(closes[10] / closes[6]))
    window = closes[0:20]
    mean = sum(window) / 20
    std = (sum((c - mean) ** 2 for c in window) / 19) ** 0.5
    assert out["bb_z_20"][19] == pytest.approx((closes[19] - mean) / std)


def test_the_2023_03_24_halt_candle_is_handled(bars):
    """The real halt: the 12:00 candle has zero volume and 13:00 is missing; nothing breaks."""
    btc = build_features(bars.filter(pl.col("symbol") == "BTCUSDT"), CFG)
    halt = btc.filter(pl.col("open_time") == datetime(2023, 3, 24, 12, tzinfo=UTC))
    assert halt.height == 1
    assert halt["taker_buy_ratio"][0] is None  # zero volume: no ratio, not a division by zero
    assert btc.filter(pl.col("open_time") == datetime(2023, 3, 24, 13, tzinfo=UTC)).height == 0
