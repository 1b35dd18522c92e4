"""The sizing policies against hand computations on real bars: EWMA vol targeting, fractional
Kelly with its payoff ratio, and López de Prado's probability-to-size map."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import RiskConfig, SignalConfig
from quantlab.errors import ConfigError, SchemaError
from quantlab.portfolio.sizing import size_targets
from quantlab.portfolio.sizing.policies import payoff_ratio

HOURLY = 24 * 365
RAW = SignalConfig(smoothing=1, threshold=0.02, allow_short=True)  # scores used as they are
LOOSE = {"max_weight": 10.0, "max_gross": 10.0, "max_net": 10.0}  # no cap binds


@pytest.fixture(scope="module")
def bars():
    return pl.concat([load_sample_klines(s, ("2024-03",)) for s in ("BTCUSDT", "SOLUSDT")])


def _preds(bars, prob_up, prob_down=None, prob_flat=None):
    """Predictions with constant probabilities; the score is what train gives each target."""
    out = bars.select("symbol", "open_time").with_columns(
        pl.lit(prob_up, pl.Float64).alias("prob_up"),
        pl.lit(prob_down, pl.Float64).alias("prob_down"),
        pl.lit(prob_flat, pl.Float64).alias("prob_flat"),
    )
    score = (
        2 * pl.col("prob_up") - 1 if prob_down is None else pl.col("prob_up") - pl.col("prob_down")
    )
    return out.with_columns(score.alias("score"))


def _btc_closes(bars):
    return bars.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")["close"].to_list()


def _row(out, i, symbol="BTCUSDT"):
    return out.filter(pl.col("symbol") == symbol).sort("open_time").row(i, named=True)


def test_vol_target_is_target_vol_over_the_riskmetrics_ewma_vol_per_symbol(bars):
    cfg = RiskConfig(target_vol=0.2, vol_halflife=None, vol_lambda=0.94, vol_min_bars=24, **LOOSE)
    out = size_targets(_preds(bars, 0.8), bars, cfg, RAW, HOURLY)
    closes = _btc_closes(bars)
    var = None
    for i in range(1, 101):  # sigma^2_t = lam sigma^2_{t-1} + (1 - lam) r_t^2, seeded with r_1^2
        r = math.log(closes[i] / closes[i - 1])
        var = r * r if var is None else 0.94 * var + 0.06 * r * r
    vol = math.sqrt(var * HOURLY)
    row = _row(out, 100)
    assert row["vol"] == pytest.approx(vol, rel=1e-10)
    assert row["target_weight"] == pytest.approx(0.2 / vol / 2, rel=1e-10)  # two symbols
    assert _row(out, 23)["vol"] is None and _row(out, 23)["target_weight"] == 0.0  # 23 returns
    assert _row(out, 24)["vol"] is not None


def test_the_halflife_sets_lambda():
    assert RiskConfig(vol_halflife=10).ewma_lambda == pytest.approx(0.5**0.1)
    with pytest.raises(ValueError, match="exactly one of vol_halflife and vol_lambda"):
        RiskConfig(vol_halflife=10, vol_lambda=0.94)


def test_payoff_ratio_is_the_past_average_win_over_average_loss(bars):
    h, window = 4, 50
    b = payoff_ratio(bars, h, window)
    closes = _btc_closes(bars)
    t = 200
    rets = [closes[s] / closes[s - h] - 1 for s in range(t - window + 1, t + 1)]
    wins, losses = [r for r in rets if r > 0], [-r for r in rets if r < 0]
    want = (sum(wins) / len(wins)) / (sum(losses) / len(losses))
    row = _row(b, t)
    assert row["b_long"] == pytest.approx(want, rel=1e-12)
    assert row["b_short"] == pytest.approx(1 / want, rel=1e-12)


def test_kelly_is_the_fraction_of_p_minus_q_over_b_clipped(bars):
    even = RiskConfig(policy="kelly", kelly_payoff="even", kelly_fraction=0.5, **LOOSE)
    out = size_targets(_preds(bars, 0.53), bars, even, RAW, HOURLY)
    assert _row(out, 100)["target_weight"] == pytest.approx(0.5 * (0.53 - 0.47))  # mlfinlab p, b=1
    # A short from a 3-class model bets on P(down).
    short = size_targets(_preds(bars, 0.1, 0.7, 0.2), bars, even, RAW, HOURLY)
    assert _row(short, 100)["target_weight"] == pytest.approx(-0.5 * (0.7 - 0.3))
    # With the empirical b, the same p sizes by the asset's own win/loss ratio.
    emp = RiskConfig(policy="kelly", payoff_window=50, kelly_fraction=0.5, **LOOSE)
    out = size_targets(_preds(bars, 0.7), bars, emp, RAW, HOURLY, horizon=4)
    b = _row(payoff_ratio(bars, 4, 50), 200)["b_long"]
    assert _row(out, 200)["target_weight"] == pytest.approx(max(0.5 * (0.7 - 0.3 / b), 0))
    capped = RiskConfig(policy="kelly", kelly_payoff="even", kelly_fraction=1.0, max_weight=0.1)
    assert size_targets(_preds(bars, 0.9), bars, capped, RAW, HOURLY)["target_weight"].max() <= 0.1


def test_prob_size_follows_afml_for_two_and_three_classes(bars):
    cfg = RiskConfig(policy="prob_size", max_weight=0.4, max_gross=10, max_net=10)
    p = 0.7
    z = (p - 0.5) / math.sqrt(p * (1 - p))
    want = 0.4 * (2 * 0.5 * (1 + math.erf(z / math.sqrt(2))) - 1)
    assert _row(size_targets(_preds(bars, p), bars, cfg, RAW, HOURLY), 50)[
        "target_weight"
    ] == pytest.approx(want, rel=1e-12)
    z3 = (0.6 - 1 / 3) / math.sqrt(0.6 * 0.4)
    want3 = -0.4 * (2 * 0.5 * (1 + math.erf(z3 / math.sqrt(2))) - 1)
    out = size_targets(_preds(bars, 0.1, 0.6, 0.3), bars, cfg, RAW, HOURLY)
    assert _row(out, 50)["target_weight"] == pytest.approx(want3, rel=1e-12)


def test_spot_is_long_only_and_weak_scores_hold_nothing(bars):
    cfg = RiskConfig(vol_min_bars=24)
    spot = SignalConfig(smoothing=1, threshold=0.1, allow_short=False)
    assert (size_targets(_preds(bars, 0.52), bars, cfg, spot, HOURLY)["target_weight"] == 0).all()
    assert (size_targets(_preds(bars, 0.05), bars, cfg, spot, HOURLY)["target_weight"] == 0).all()


def test_probability_policies_refuse_a_regression_model_and_repeated_rows_are_refused(bars):
    preds = bars.select("symbol", "open_time").with_columns(
        score=pl.lit(0.5), prob_up=pl.lit(None, pl.Float64)
    )
    with pytest.raises(ConfigError, match="train a classifier"):
        size_targets(preds, bars, RiskConfig(policy="kelly"), RAW, HOURLY)
    with pytest.raises(SchemaError, match="one model"):
        size_targets(pl.concat([preds, preds]), bars, RiskConfig(), RAW, HOURLY)


def test_smoothing_averages_the_last_scores_per_symbol(bars):
    """With smoothing 2, one strong score next to a neutral one is not enough to trade."""
    btc = bars.filter(pl.col("symbol") == "BTCUSDT").sort("open_time").head(60)
    preds = btc.select("symbol", "open_time").with_columns(
        pl.when(pl.arange(0, pl.len()) == 50).then(0.5).otherwise(0.0).alias("score")
    )
    cfg = RiskConfig(vol_min_bars=24)
    one = size_targets(preds, btc, cfg, SignalConfig(smoothing=1, threshold=0.3), HOURLY)
    two = size_targets(preds, btc, cfg, SignalConfig(smoothing=2, threshold=0.3), HOURLY)
    assert one["direction"][50] == 1.0 and one["target_weight"][50] > 0
    assert two["direction"][50] == 0.0 and two["target_weight"][50] == 0
    assert two["score"][50] == 0.25


def test_targets_do_not_depend_on_the_input_row_order(bars):
    cfg = RiskConfig(vol_min_bars=24)
    preds = _preds(bars, 0.8)
    shuffled = preds.sample(fraction=1.0, shuffle=True, seed=1)
    a = size_targets(preds, bars.sample(fraction=1.0, shuffle=True, seed=2), cfg, RAW, HOURLY)
    b = size_targets(shuffled, bars, cfg, RAW, HOURLY)
    assert np.allclose(a["target_weight"].to_numpy(), b["target_weight"].to_numpy())
