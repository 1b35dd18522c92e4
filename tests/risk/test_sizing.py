"""Risk sizing: vol targeting, caps, gross limit, the kill-switch; decisions use past data only."""

from __future__ import annotations

import math

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import load_sample_klines
from quantlab.config import RiskConfig, SignalConfig
from quantlab.portfolio import size_targets

HOURLY = 24 * 365
RAW = SignalConfig(smoothing=1, threshold=0.02)  # scores used as they are


@pytest.fixture(scope="module")
def bars():
    return pl.concat([load_sample_klines(s, ("2024-03",)) for s in ("BTCUSDT", "SOLUSDT")])


def _preds(bars, score):
    return bars.select("symbol", "open_time").with_columns(pl.lit(score).alias("score"))


def test_weight_is_target_vol_over_realised_vol(bars):
    cfg = RiskConfig(target_vol=0.2, vol_window=24, max_weight=10, max_gross=10)
    out = size_targets(_preds(bars, 0.5), bars, cfg, RAW, HOURLY)
    row = out.filter(pl.col("symbol") == "BTCUSDT").sort("open_time").row(100, named=True)
    btc = bars.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")["close"].to_list()
    rets = [math.log(btc[i] / btc[i - 1]) for i in range(77, 101)]
    mean = sum(rets) / 24
    vol = (sum((r - mean) ** 2 for r in rets) / 23) ** 0.5 * math.sqrt(HOURLY)
    assert row["vol"] == pytest.approx(vol)
    assert row["target_weight"] == pytest.approx(0.2 / vol / 2)


def test_caps_and_gross_limit(bars):
    cfg = RiskConfig(target_vol=5.0, vol_window=24, max_weight=0.4, max_gross=0.6)
    out = size_targets(_preds(bars, 0.9), bars, cfg, RAW, HOURLY).drop_nulls("vol")
    assert out["target_weight"].abs().max() <= 0.3 + 1e-12  # 0.4 each, scaled so 2 x w <= 0.6
    gross = out.group_by("open_time").agg(pl.col("target_weight").abs().sum())
    assert gross["target_weight"].max() <= 0.6 + 1e-12


def test_flat_below_threshold_no_shorts_on_spot_and_no_size_in_warm_up(bars):
    cfg = RiskConfig(vol_window=24)
    signal = SignalConfig(smoothing=1, threshold=0.1, allow_short=False)
    weak = size_targets(_preds(bars, 0.05), bars, cfg, signal, HOURLY)
    short = size_targets(_preds(bars, -0.9), bars, cfg, signal, HOURLY)
    warm = size_targets(_preds(bars, 0.9), bars, cfg, signal, HOURLY).sort("open_time").head(20)
    assert (weak["target_weight"] == 0).all()
    assert (short["target_weight"] == 0).all()
    assert (warm.filter(pl.col("vol").is_null())["target_weight"] == 0).all()


def test_kill_switch_flattens_everything(bars):
    out = size_targets(_preds(bars, 0.9), bars, RiskConfig(vol_window=24), RAW, HOURLY, killed=True)
    assert (out["target_weight"] == 0).all()


def test_targets_use_no_future_bar(bars):
    cfg = RiskConfig(vol_window=24)
    full = size_targets(_preds(bars, 0.5), bars, cfg, RAW, HOURLY)
    cut = bars["open_time"].sort()[300]
    part = size_targets(
        _preds(bars, 0.5).filter(pl.col("open_time") <= cut),
        bars.filter(pl.col("open_time") <= cut),
        cfg,
        RAW,
        HOURLY,
    )
    assert_frame_equal(full.filter(pl.col("open_time") <= cut), part)


def test_smoothing_averages_the_last_scores_per_symbol(bars):
    """With smoothing 2, one strong score next to a neutral one is not enough to trade."""
    btc = bars.filter(pl.col("symbol") == "BTCUSDT").sort("open_time").head(60)
    preds = btc.select("symbol", "open_time").with_columns(
        pl.when(pl.arange(0, pl.len()) == 50).then(0.5).otherwise(0.0).alias("score")
    )
    cfg = RiskConfig(vol_window=24)
    one = size_targets(preds, btc, cfg, SignalConfig(smoothing=1, threshold=0.3), HOURLY)
    two = size_targets(preds, btc, cfg, SignalConfig(smoothing=2, threshold=0.3), HOURLY)
    assert one.sort("open_time")["direction"][50] == 1.0
    assert two.sort("open_time")["direction"][50] == 0.0  # (0.0 + 0.5) / 2 < 0.3
    assert two.sort("open_time")["score"][50] == 0.25
