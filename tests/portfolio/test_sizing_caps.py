"""Caps are never breached (a property test over random scores and caps on real bars), and
the book-vol cap reads an EWMA covariance: correlated longs are cut, a hedged book less so."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import load_sample_klines
from quantlab.config import RiskConfig, SignalConfig
from quantlab.portfolio.sizing import size_targets
from quantlab.portfolio.sizing.vol import book_vol
from quantlab.risk import cap_breaches

HOURLY = 24 * 365


@pytest.fixture(scope="module")
def bars():
    months = ("2024-03",)
    parts = [load_sample_klines(s, months) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")]
    return pl.concat(parts).filter(pl.col("open_time").dt.day() <= 15)


def _random_preds(bars, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 1.0, bars.height)
    return bars.select("symbol", "open_time").with_columns(
        prob_up=pl.Series(p),
        prob_down=pl.lit(None, pl.Float64),
        prob_flat=pl.lit(None, pl.Float64),
        score=pl.Series(2 * p - 1),
    )


caps = st.fixed_dictionaries(
    {
        "policy": st.sampled_from(["vol_target", "kelly", "prob_size"]),
        "target_vol": st.floats(0.05, 5.0),
        "max_weight": st.floats(0.01, 2.0),
        "max_gross": st.floats(0.01, 3.0),
        "max_net": st.floats(0.01, 3.0),
        "max_book_vol": st.one_of(st.none(), st.floats(0.01, 2.0)),
        "take_profit": st.one_of(st.none(), st.floats(0.5, 4.0)),
        "stop_loss": st.one_of(st.none(), st.floats(0.5, 4.0)),
        "kelly_payoff": st.sampled_from(["empirical", "even"]),
    }
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kw=caps, seed=st.integers(0, 10_000), short=st.booleans())
def test_no_cap_is_ever_breached(bars, kw, seed, short):
    cfg = RiskConfig(vol_min_bars=24, payoff_window=100, **kw)
    signal = SignalConfig(smoothing=1, threshold=0.05, allow_short=short)
    out = size_targets(_random_preds(bars, seed), bars, cfg, signal, HOURLY, horizon=4)
    assert out.height == bars.height
    assert cap_breaches(out, cfg) == []
    # cap_breaches itself reads the weights: recompute the book vol it trusts independently.
    per_bar = out.group_by("open_time").agg(
        pl.col("target_weight").abs().sum().alias("gross"),
        pl.col("target_weight").sum().alias("net"),
    )
    assert per_bar["gross"].max() <= cfg.max_gross * (1 + 1e-9)
    assert per_bar["net"].abs().max() <= cfg.max_net * (1 + 1e-9)
    assert out["target_weight"].abs().max() <= cfg.max_weight
    if not short:
        assert out["target_weight"].min() >= 0


def test_cap_breaches_names_the_cap_a_book_breaks(bars):
    cfg = RiskConfig(max_weight=0.3, max_gross=0.5, max_net=0.4)
    book = bars.select("symbol", "open_time").with_columns(
        target_weight=pl.lit(0.35), book_vol=pl.lit(0.1)
    )
    found = cap_breaches(book, cfg)
    assert [f.split()[0] for f in found] == ["risk.max_weight", "risk.max_gross", "risk.max_net"]


def test_book_vol_is_sqrt_w_sigma_w_of_the_ewma_covariance(bars):
    lam = 0.97
    rets = (
        bars.sort("symbol", "open_time")
        .with_columns(
            (pl.col("close") / pl.col("close").shift(1)).log().over("symbol").alias("ret")
        )
        .select("symbol", "open_time", "ret")
    )
    w = {"BTCUSDT": 0.3, "ETHUSDT": -0.2, "SOLUSDT": 0.1}
    weights = rets.select("symbol", "open_time", pl.col("symbol").replace_strict(w).alias("weight"))
    got = book_vol(rets, weights, lam, HOURLY).sort("open_time")
    wide = rets.pivot(on="symbol", index="open_time", values="ret").sort("open_time")
    r = wide.select(sorted(w)).to_numpy()
    cov = np.outer(r[1], r[1])  # every symbol's first return is at the same bar here
    for t in range(2, 200):
        cov = lam * cov + (1 - lam) * np.outer(r[t], r[t])
    vec = np.array([w[s] for s in sorted(w)])
    assert got["book_vol"][199] == pytest.approx(math.sqrt(vec @ cov @ vec * HOURLY), rel=1e-10)


def test_the_book_vol_cap_cuts_correlated_longs_to_the_cap(bars):
    loose = RiskConfig(target_vol=0.6, vol_min_bars=24, max_weight=1.0, max_gross=3.0, max_net=3.0)
    signal = SignalConfig(smoothing=1, threshold=0.05)
    preds = _random_preds(bars, 0).with_columns(score=pl.lit(0.9))  # long everything
    free = size_targets(preds, bars, loose, signal, HOURLY).drop_nulls("vol")
    capped = size_targets(
        preds, bars, loose.model_copy(update={"max_book_vol": 0.3}), signal, HOURLY
    )
    capped = capped.drop_nulls("vol")
    assert free["book_vol"].max() > 0.3  # crypto longs move together: the uncapped book is above
    assert capped["book_vol"].max() == pytest.approx(0.3, rel=1e-9)
    ratio = (capped["target_weight"] / free["target_weight"]).to_numpy()
    assert np.all(ratio <= 1 + 1e-12) and np.any(ratio < 0.99)
