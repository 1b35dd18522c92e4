"""Lookahead analysis on the real shipped bars: the sizing rule passes, a planted peek is caught."""

from __future__ import annotations

import math

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.backtest.lookahead import lookahead_analysis
from quantlab.config import RiskConfig, SignalConfig
from quantlab.portfolio.sizing import size_targets
from quantlab.vocab import KEY, bars_per_year

MONTHS = ("2023-03", "2023-04")


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return pl.concat([load_sample_klines(s, MONTHS) for s in ("BTCUSDT", "ETHUSDT")]).select(
        *KEY, "open", "high", "low", "close", "volume", "quote_volume"
    )


@pytest.fixture(scope="module")
def scores(bars: pl.DataFrame) -> pl.DataFrame:
    """A causal score: the sign-preserving squash of the last 6 bars' log return (no model)."""
    momentum = (
        (pl.col("close") / pl.col("close").shift(6)).log().over("symbol", order_by="open_time")
    )
    return bars.select(*KEY, (momentum * 20).tanh().fill_null(0.0).alias("score"))


def _sizing(scores: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    signal = SignalConfig(smoothing=2, threshold=0.1, allow_short=True)
    return size_targets(scores, bars, RiskConfig(), signal, bars_per_year("1h"))


def test_the_sizing_rule_decides_nothing_from_bars_after_its_decision(scores, bars):
    report = lookahead_analysis(_sizing, scores, bars, "target_weight", cuts=6)
    assert report.checked > 6 * 1000
    assert not report.leaks, report.describe()


def test_a_score_that_peeks_one_bar_ahead_is_caught(scores, bars):
    """The planted leak: the score at t is the sign of bar t+1's return, computed from the
    bars handed in; on the history cut at t the next bar is missing and the decision moves."""

    def peeking(_scores: pl.DataFrame, cut_bars: pl.DataFrame) -> pl.DataFrame:
        ahead = (
            (pl.col("close").shift(-1) / pl.col("close")).log().over("symbol", order_by="open_time")
        )
        leaked = cut_bars.select(*KEY, ahead.sign().fill_null(0.0).alias("score"))
        return _sizing(leaked, cut_bars)

    report = lookahead_analysis(peeking, scores, bars, "target_weight", cuts=6)
    assert report.leaks
    # Only the last bar before each cut can see past it: one bar per symbol per cut at most.
    assert report.changed.group_by("cut", "symbol").len()["len"].max() == 1
    assert (report.changed["open_time"] == report.changed["cut"]).all()
    assert "lookahead" in report.describe() and "shift that input" in report.describe()


def test_a_rule_whose_history_length_changes_its_values_is_caught(scores, bars):
    """A whole-sample statistic (the mean of every close handed in) is lookahead too."""

    def whole_sample(s: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
        mean = b["close"].mean()
        return b.select(*KEY, (pl.col("close") / mean).alias("w"))

    report = lookahead_analysis(whole_sample, scores, bars, "w", cuts=3)
    assert report.leaks and report.changed.height > 3
    assert math.isfinite(report.changed["full"].sum())
