"""The one copy of every score: hand-computed cases, scikit-learn / scipy / vectorbt as
references, the published PSR/DSR values, and the edge cases (None, never NaN or inf)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from quantlab import metrics as m
from quantlab.config import EvaluateConfig
from quantlab.features.evaluate import evaluate_factors
from quantlab.vocab import bars_per_year

RNG = np.random.default_rng(7)


# --- classification: hand-computed, then scikit-learn on random data ----------------------


def test_auc_hand_computed_with_a_tie():
    # Positives score 0.9 and 0.5, negatives 0.5 and 0.1: of the 4 (pos, neg) pairs 3 are
    # ordered right and one (0.5 vs 0.5) is tied, worth one half: AUC = 3.5 / 4.
    assert m.auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == 0.875
    assert m.auc([True, False], [0.2, 0.8]) == 0.0


def test_logloss_accuracy_macro_f1_hit_rate_hand_computed():
    assert m.logloss([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    # Multiclass with labels -1/0/1 (triple barrier): the true class's column is read.
    prob = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
    assert m.logloss([1, -1], prob, classes=[-1, 0, 1]) == pytest.approx(
        -(math.log(0.5) + math.log(0.6)) / 2
    )
    # A confident miss is clipped, not infinite.
    assert m.logloss([1], [0.0]) == pytest.approx(-math.log(1e-12))
    assert m.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    # Class 1: TP 2, FP 1, FN 1 -> F1 2/3; class 0: TP 0, FP 1, FN 1 -> 0; macro 1/3.
    assert m.macro_f1([1, 0, 1, 1], [1, 1, 1, 0]) == pytest.approx(1 / 3)
    # Zeros are no bet / no move: only (0.5, 0.1) hit and (-1, 2) missed count.
    assert m.hit_rate([0.5, -1.0, 0.0, 2.0], [0.1, 2.0, 3.0, 0.0]) == 0.5


def test_classification_scores_equal_scikit_learn_on_random_data():
    sk = pytest.importorskip("sklearn.metrics")
    y = RNG.integers(0, 2, 500)
    p = np.clip(0.5 + 0.2 * (y - 0.5) + RNG.normal(0, 0.2, 500), 0.01, 0.99)
    p[:40] = np.round(p[:40], 2)  # ties (and none rounded to 0: clipping differs)
    assert m.auc(y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)
    assert m.logloss(y, p) == pytest.approx(sk.log_loss(y, p), abs=1e-12)
    y3 = RNG.choice([-1, 0, 1], 500)
    probs = RNG.dirichlet([1, 1, 1], 500)
    yhat = np.array([-1, 0, 1])[probs.argmax(axis=1)]
    assert m.logloss(y3, probs, classes=[-1, 0, 1]) == pytest.approx(
        sk.log_loss(y3, probs, labels=[-1, 0, 1]), abs=1e-12
    )
    assert m.macro_f1(y3, yhat) == pytest.approx(sk.f1_score(y3, yhat, average="macro"))
    assert m.accuracy(y3, yhat) == pytest.approx(sk.accuracy_score(y3, yhat))


def test_classification_edge_cases():
    assert m.auc([1, 1, 1], [0.1, 0.2, 0.3]) is None  # one class: undefined
    assert m.auc([1, 0, 1], [0.9, 0.1, float("nan")]) == 1.0  # the NaN pair is dropped
    assert m.logloss([], []) is None and m.accuracy([], []) is None
    assert m.hit_rate([0.0, 1.0], [1.0, 0.0]) is None
    with pytest.raises(ValueError, match="binary"):
        m.auc([2, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="same length"):
        m.accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="not in classes"):
        m.logloss([2], [[0.5, 0.5]])


# --- IC and rank IC ------------------------------------------------------------------------


def test_ic_and_rank_ic_equal_scipy_and_skip_nan_pairs():
    x, y = RNG.normal(size=200), RNG.normal(size=200)
    y[:3] = np.nan
    assert m.ic(x, y) == pytest.approx(stats.pearsonr(x[3:], y[3:])[0], abs=1e-12)
    ties = np.round(x, 1)
    assert m.rank_ic(ties, y) == pytest.approx(stats.spearmanr(ties[3:], y[3:])[0], abs=1e-12)
    assert m.ic([1.0, 2.0], [3.0, 1.0]) is None  # under min_obs: two points always give ±1
    assert m.rank_ic([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None  # constant forecast


def test_rank_ic_per_time_is_the_mean_of_cross_sections():
    # Time 0: y ranks follow x exactly (+1); time 1: reversed (-1); time 2: two pairs only.
    x = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0]
    y = [10.0, 20.0, 30.0, 3.0, 2.0, 1.0, 5.0, 6.0]
    t = [0, 0, 0, 1, 1, 1, 2, 2]
    assert m.rank_ic(x, y, time=t) == 0.0
    assert m.rank_ic(x[:3], y[:3], time=t[:3]) == 1.0


def test_rank_ic_per_time_equals_factor_evaluation_cross_section():
    """metrics.ic/rank_ic with a time key is what factor evaluation reports per period."""
    start = datetime(2024, 1, 1)
    times = [start + timedelta(hours=h) for h in range(12)]
    symbols = [f"S{i}" for i in range(6)]
    rows = [(s, t) for t in times for s in symbols]
    feat = RNG.normal(size=len(rows))
    ret = 0.3 * feat + RNG.normal(size=len(rows))
    key = {"symbol": [r[0] for r in rows], "open_time": [r[1] for r in rows]}
    features = pl.DataFrame({**key, "f": feat}).with_columns(
        pl.col("open_time").dt.cast_time_unit("ms").dt.replace_time_zone("UTC")
    )
    labels = features.select("symbol", "open_time", pl.Series("fwd_ret_1", ret))
    cfg = EvaluateConfig(mode="cross_section", period="1w", min_obs=3, quantiles=2)
    per_period = evaluate_factors(features, labels, [1], cfg).ic
    assert per_period.height == 1
    t = features["open_time"]
    assert per_period["rank_ic"][0] == pytest.approx(m.rank_ic(feat, ret, time=t), abs=1e-15)
    assert per_period["ic"][0] == pytest.approx(m.ic(feat, ret, time=t), abs=1e-15)


# --- returns: Sharpe, Sortino, drawdown ----------------------------------------------------


def test_sharpe_and_sortino_hand_computed():
    r = [0.01, -0.02, 0.03, 0.0]
    # mean 0.005; deviations 0.005, -0.025, 0.025, -0.005: sample variance 0.0013 / 3.
    assert m.sharpe(r) == pytest.approx(0.005 / math.sqrt(0.0013 / 3), rel=1e-12)
    assert m.sharpe(r, bars_per_year("1d")) == pytest.approx(
        0.005 / math.sqrt(0.0013 / 3) * math.sqrt(365), rel=1e-12
    )
    # Downside: sqrt(mean(0, 0.0004, 0, 0)) = 0.01, so Sortino = 0.005 / 0.01.
    assert m.sortino(r) == pytest.approx(0.5, rel=1e-12)
    assert m.sortino(r, 8760) == pytest.approx(0.5 * math.sqrt(8760), rel=1e-12)


def test_max_drawdown_from_equity_and_from_returns():
    equity = [100.0, 120.0, 90.0, 95.0, 130.0, 117.0]
    assert m.max_drawdown(equity=equity) == pytest.approx(-0.25)
    np.testing.assert_allclose(m.drawdown(equity), [0, 0, -0.25, -25 / 120, 0, -0.1], atol=1e-15)
    returns = np.diff(equity) / equity[:-1]
    assert m.max_drawdown(returns=returns) == pytest.approx(-0.25, rel=1e-12)
    # The start is a peak: a loss on the first period is a drawdown.
    assert m.max_drawdown(returns=[-0.1, 0.05]) == pytest.approx(-0.1)
    assert m.max_drawdown(equity=[1.0, 2.0, 3.0]) == 0.0


def test_return_metrics_equal_vectorbt_on_random_returns():
    """The backtest's Sharpe/Sortino/max drawdown come from vectorbt; these are the same numbers."""
    import pandas as pd
    import vectorbt  # noqa: F401  (registers the .vbt accessor)

    r = RNG.normal(0.0002, 0.01, 2000)
    r[0] = 0.001  # vectorbt's drawdown ignores a first-period loss (see max_drawdown)
    ppy = bars_per_year("1h")
    year = pd.Timedelta(days=365)
    acc = pd.Series(r).vbt.returns(freq=year / ppy, year_freq=year)
    assert m.sharpe(r, ppy) == pytest.approx(acc.sharpe_ratio(), rel=1e-12)
    assert m.sortino(r, ppy) == pytest.approx(acc.sortino_ratio(), rel=1e-12)
    assert m.max_drawdown(returns=r) == pytest.approx(acc.max_drawdown(), rel=1e-12)


def test_return_metric_edge_cases_are_none_not_inf():
    assert m.sharpe([0.01] * 50) is None  # constant: sd 0 (or rounding noise), not inf
    assert m.sharpe([0.01]) is None and m.sharpe([]) is None
    assert m.sharpe([0.01, float("nan"), 0.02]) == m.sharpe([0.01, 0.02])  # NaN = missing bar
    assert m.sortino([0.01, 0.02, 0.03]) is None  # no losing period
    assert m.sortino([-0.01]) is None
    assert m.max_drawdown(returns=[]) is None and m.max_drawdown(equity=[]) is None
    assert m.sharpe_moments([0.0, 0.0]) is None
    with pytest.raises(ValueError, match="exactly one"):
        m.max_drawdown()


# --- PSR / DSR: public values -------------------------------------------------------------
# Source of every value: /work/shared/research/backtest-risk.md §2.2 (computed there with
# numpy 2.4.6 / scipy 1.17.1 from the formulas of Bailey & López de Prado 2012 and 2014).


def test_psr_mlfinlab_vector_b1():
    # B1: mlfinlab/tests/test_backtest_statistics.py expects 0.95727 for SR 1.14 vs SR* 1,
    # T 250, normal returns; the research note's value is 0.957278.
    assert m.probabilistic_sharpe_ratio(1.14, 250, 1.0, 0.0, 3.0) == pytest.approx(
        0.957278, abs=5e-7
    )


def test_dsr_paper_example_vector_a():
    # A: the DSR paper's example, SR_ann 2.5, V_ann 0.5, N 100, T 1250 daily (250 a year),
    # skew -3, raw kurtosis 10; per period SR = 2.5/sqrt(250), V = 0.5/250.
    sr, var = 2.5 / math.sqrt(250), 0.5 / 250
    assert m.expected_max_sharpe(100, var) == pytest.approx(0.113172, abs=5e-7)
    assert m.deflated_sharpe_ratio(sr, 1250, 100, var, -3.0, 10.0) == pytest.approx(
        0.900397, abs=5e-7
    )
    # A': excess kurtosis (7) passed by mistake gives 0.9018: the convention matters.
    assert m.deflated_sharpe_ratio(sr, 1250, 100, var, -3.0, 7.0) == pytest.approx(0.9018, abs=5e-5)
    # A''': against SR* = 0 the same track record looks certain (0.999997).
    assert m.probabilistic_sharpe_ratio(sr, 1250, 0.0, -3.0, 10.0) == pytest.approx(
        0.999997, abs=5e-7
    )


def test_dsr_mlfinlab_vector_b2_and_expected_max_values():
    # B2: trial SRs [3.5, 1.01, 1.02] (variance ddof 0, as mlfinlab), SR 1.14, T 250:
    # SR0 0.9990, DSR 0.958366 (mlfinlab expects 0.95836).
    var = float(np.var([3.5, 1.01, 1.02]))
    assert m.expected_max_sharpe(3, var) == pytest.approx(0.9990, abs=5e-5)
    assert m.deflated_sharpe_ratio(1.14, 250, 3, var) == pytest.approx(0.958366, abs=5e-7)
    # E[max Z] for N = 2, 10, 100, 1000 standard normal trials: 0.5198, 1.575, 2.531, 3.255.
    got = [m.expected_max_sharpe(n, 1.0) for n in (2, 10, 100, 1000)]
    np.testing.assert_allclose(got, [0.5198, 1.575, 2.531, 3.255], atol=5e-4)


def test_psr_dsr_properties_and_edges():
    assert m.probabilistic_sharpe_ratio(0.1, 500, 0.1) == 0.5  # SR = SR*: a coin flip
    psr0 = m.probabilistic_sharpe_ratio(0.08, 500)
    dsrs = [m.deflated_sharpe_ratio(0.08, 500, n, 0.001) for n in (2, 10, 100)]
    assert dsrs[0] < psr0 and dsrs[0] > dsrs[1] > dsrs[2]  # more trials, more deflation
    assert m.deflated_sharpe_ratio(0.08, 500, 10, 0.002) < dsrs[1]  # more spread, too
    # One trial is its own maximum: DSR = PSR(0), not Φ(+inf) = 1.
    assert m.expected_max_sharpe(1, 0.5) == 0.0
    assert m.deflated_sharpe_ratio(0.08, 500, 1, 0.5) == psr0
    assert m.probabilistic_sharpe_ratio(0.1, 1) is None  # n < 2
    assert m.probabilistic_sharpe_ratio(1.0, 100, 0.0, 5.0, 3.0) is None  # variance term < 0
    assert m.probabilistic_sharpe_ratio(float("nan"), 100) is None
    with pytest.raises(ValueError, match="n_trials"):
        m.expected_max_sharpe(0, 1.0)


def test_sharpe_moments_feed_psr_with_raw_kurtosis():
    r = RNG.standard_t(5, 5000) * 0.01 + 0.0005
    mo = m.sharpe_moments(r)
    assert mo.sharpe == m.sharpe(r) and mo.n == 5000
    assert mo.skew == pytest.approx(stats.skew(r))
    assert mo.kurtosis == pytest.approx(stats.kurtosis(r) + 3.0)  # raw = excess + 3
    z = mo.sharpe * math.sqrt(mo.n - 1)
    z /= math.sqrt(1 - mo.skew * mo.sharpe + (mo.kurtosis - 1) / 4 * mo.sharpe**2)
    psr = m.probabilistic_sharpe_ratio(mo.sharpe, mo.n, 0.0, mo.skew, mo.kurtosis)
    assert psr == pytest.approx(stats.norm.cdf(z), abs=1e-15)
