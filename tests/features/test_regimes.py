"""Regimes: the six states follow the documented rules on past-only percentiles; usable as a label."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig, LabelsConfig, RegimeConfig
from quantlab.features import REGIMES, build_features, regime_names
from quantlab.labels import build_labels

RULES = RegimeConfig(lookback=240)
CFG = FeaturesConfig(
    columns=("adx_14", "natr_14", "bb_width_20", "regime"),
    timeframes={},
    cross_section={"rank": (), "zscore": ()},
    normalize={"columns": ()},
    regime=RULES,
)
MONTHS = ("2023-02", "2023-03", "2023-04")


@pytest.fixture(scope="module")
def bars():
    return pl.concat([load_sample_klines(s, MONTHS) for s in ("BTCUSDT", "SOLUSDT")])


@pytest.fixture(scope="module")
def out(bars):
    return build_features(bars, CFG)


def _rules(adx: float, vol: np.ndarray, width: np.ndarray, r: RegimeConfig) -> str:
    """`vol` and `width`: the last `lookback` values, ending with the bar's own."""
    if vol[-1] >= np.quantile(vol, r.spike_pct):
        return "Volatility_Spike"
    if width[-1] <= np.quantile(width, r.squeeze_pct):
        return "Squeeze"
    if adx >= r.strong_adx:
        return "Strong_Trend"
    if vol[-1] >= np.quantile(vol, r.high_vol_pct):
        return "Choppy_High_Vol"
    if adx >= r.weak_adx:
        return "Weak_Trend"
    return "Range"


def test_each_state_follows_the_rules_on_past_quantiles(out):
    sol = out.filter(pl.col("symbol") == "SOLUSDT").sort("open_time")
    adx, natr, width = (
        sol[c].to_numpy().astype(float) for c in ("adx_14", "natr_14", "bb_width_20")
    )
    names = sol.with_columns(regime_names(pl.col("regime")).alias("name"))["name"].to_list()
    n = RULES.lookback
    start = 20 + n - 2  # the Bollinger width quantile needs the longest history
    assert all(v is None for v in names[:start]) and names[start] is not None
    for i in range(start, len(names)):
        expected = _rules(adx[i], natr[i - n + 1 : i + 1], width[i - n + 1 : i + 1], RULES)
        assert names[i] == expected, i


def test_all_six_states_occur_on_real_bars(out):
    seen = set(out.with_columns(regime_names(pl.col("regime")))["regime"].drop_nulls())
    assert seen == set(REGIMES)


def test_the_regime_ahead_is_a_label(bars, out):
    cfg = LabelsConfig(regime={"horizon": 6, "rules": RULES}, barrier=None)
    labels = build_labels(bars, cfg).sort("symbol", "open_time")
    now = out.sort("symbol", "open_time")
    ahead = now.with_columns(pl.col("regime").shift(-6).over("symbol").alias("ahead"))
    assert labels["regime_6"].to_list() == ahead["ahead"].to_list()
    assert labels["regime_6"].dtype == pl.Int8


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError, match="weak_adx"):
        RegimeConfig(weak_adx=30, strong_adx=25)
    with pytest.raises(ValueError, match="squeeze_pct"):
        RegimeConfig(high_vol_pct=0.99, spike_pct=0.95)
