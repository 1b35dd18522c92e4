"""Sizes at t use only data up to t: change every input after t (scores, probabilities, open
and close prices) and the targets up to t stay the same, for each policy with every cap,
take-profit and stop-loss on. And vol targeting does what it says on synthetic GBM."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import load_sample_klines
from quantlab.config import RiskConfig, SignalConfig
from quantlab.portfolio.sizing import size_targets

HOURLY = 24 * 365


@pytest.fixture(scope="module")
def bars():
    months = ("2024-03", "2024-04")
    return pl.concat([load_sample_klines(s, months) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")])


def _preds(bars, seed):
    rng = np.random.default_rng(seed)
    up = rng.uniform(0.0, 0.7, bars.height)
    down = rng.uniform(0.0, 1.0 - up)
    return bars.select("symbol", "open_time").with_columns(
        prob_up=pl.Series(up),
        prob_down=pl.Series(down),
        prob_flat=pl.Series(1.0 - up - down),
        score=pl.Series(up - down),
    )


def _perturb_after(frame, cut, columns, seed):
    """Every value of `columns` after `cut` multiplied by a random factor in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    noise = pl.Series(rng.uniform(0.5, 1.5, frame.height))
    later = pl.col("open_time") > cut
    return frame.with_columns(
        *(pl.when(later).then(pl.col(c) * noise).otherwise(pl.col(c)).alias(c) for c in columns)
    )


@pytest.mark.parametrize("policy", ["vol_target", "kelly", "prob_size"])
def test_changing_every_input_after_t_leaves_targets_up_to_t_unchanged(bars, policy):
    cfg = RiskConfig(
        policy=policy,
        target_vol=0.5,
        vol_min_bars=24,
        payoff_window=200,
        max_weight=0.3,
        max_gross=0.7,
        max_net=0.4,
        max_book_vol=0.25,
        take_profit=1.5,
        stop_loss=1.0,
    )
    signal = SignalConfig(smoothing=3, threshold=0.1, allow_short=True)
    preds = _preds(bars, 0)
    full = size_targets(preds, bars, cfg, signal, HOURLY, horizon=4)
    times = bars["open_time"].unique().sort()
    for cut in (times[200], times[700], times[1200]):
        moved_bars = _perturb_after(bars, cut, ("open", "high", "low", "close"), 1)
        moved_preds = _perturb_after(preds, cut, ("prob_up", "prob_down", "prob_flat", "score"), 2)
        moved = size_targets(moved_preds, moved_bars, cfg, signal, HOURLY, horizon=4)
        before = pl.col("open_time") <= cut
        assert_frame_equal(full.filter(before), moved.filter(before))
        # ...and the perturbation did reach the targets after t, so the test can fail.
        assert not full.filter(~before).equals(moved.filter(~before))
    # Every feature is exercised: caps bind, exits fire, all three directions occur.
    assert (full["exit"] > 0).any() and (
        full["raw_weight"].abs() > full["target_weight"].abs()
    ).any()
    assert set(full["direction"].unique().to_list()) == {-1.0, 0.0, 1.0}


def test_cutting_the_inputs_at_t_gives_the_same_targets_up_to_t(bars):
    cfg = RiskConfig(max_book_vol=0.2, take_profit=2.0, stop_loss=1.0, vol_min_bars=24)
    signal = SignalConfig(smoothing=4, threshold=0.1)
    preds = _preds(bars, 3)
    full = size_targets(preds, bars, cfg, signal, HOURLY)
    cut = bars["open_time"].unique().sort()[500]
    part = size_targets(
        preds.filter(pl.col("open_time") <= cut),
        bars.filter(pl.col("open_time") <= cut),
        cfg,
        signal,
        HOURLY,
    )
    assert_frame_equal(full.filter(pl.col("open_time") <= cut), part)


def _gbm(vols: list[float], bars_each: int, seed: int) -> pl.DataFrame:
    """SYNTHETIC: one geometric Brownian motion, hourly, whose annual vol steps through `vols`."""
    rng = np.random.default_rng(seed)
    sig = np.repeat(np.array(vols) / math.sqrt(HOURLY), bars_each)
    logret = rng.standard_normal(len(sig)) * sig - 0.5 * sig**2
    close = 100.0 * np.exp(np.cumsum(logret))
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
    open_time = pl.Series(start + 3_600_000 * np.arange(len(sig))).cast(pl.Datetime("ms", "UTC"))
    return pl.DataFrame(
        {"symbol": "SYNTH", "open_time": open_time, "open": [100.0, *close[:-1]], "close": close}
    )


def test_vol_targeting_lands_synthetic_gbm_book_vol_near_the_target():
    """SYNTHETIC GBM whose vol jumps from 40% to 120% a year: an always-long book sized by
    vol_target realises about target_vol in both regimes; unsized, it would realise 40%/120%."""
    n = 4000
    bars = _gbm([0.4, 1.2], n, seed=7)
    preds = bars.select("symbol", "open_time").with_columns(score=pl.lit(1.0))
    cfg = RiskConfig(target_vol=0.2, max_weight=5.0, max_gross=5.0, max_net=5.0)
    out = size_targets(preds, bars, cfg, SignalConfig(smoothing=1, threshold=0.5), HOURLY)
    w = out["target_weight"].to_numpy()
    ret = (bars["close"] / bars["close"].shift(1) - 1).to_numpy()
    book = w[:-1] * ret[1:]  # the weight decided at t earns bar t + 1's return
    for lo, hi in ((200, n - 1), (n + 200, 2 * n - 1)):  # each regime, past the EWMA's lag
        realised = book[lo:hi].std(ddof=1) * math.sqrt(HOURLY)
        assert 0.2 * 0.9 < realised < 0.2 * 1.1
