"""Volatility: ATR, Bollinger and Keltner channels, realized, Parkinson and Garman-Klass estimators.

The range-based estimators are per bar (not annualised): Parkinson uses the
high-low range, Garman-Klass adds open and close, both over a window of bars.
"""

from __future__ import annotations

import math

import polars as pl

from quantlab.features._primitives import (
    LOG_RET,
    atr_expr,
    cached,
    close,
    ema_close,
    high,
    low,
    open_,
    safe_div,
    ta_outputs,
)
from quantlab.features._registry import indicator

_BB_K = 2.0  # Bollinger bands at +-2 population standard deviations, TA-Lib's default
_KC_K = 2.0  # Keltner channel at +-2 ATR around the EMA


def _hl2() -> pl.Expr:
    """The squared log high-low range of each bar."""
    return cached("_hl2", (high / low).log().pow(2))


def _bands(n: int) -> tuple[pl.Expr, ...]:
    """TA-Lib BBANDS: SMA{n} +- 2 population standard deviations (upper, middle, lower)."""
    return ta_outputs(
        f"_bb{n}",
        "BBANDS",
        [close],
        ("upper", "middle", "lower"),
        timeperiod=n,
        nbdevup=_BB_K,
        nbdevdn=_BB_K,
        matype=0,
    )


def bollinger_width(n: int) -> pl.Expr:
    upper, middle, lower = _bands(n)
    return cached(f"_bbw{n}", (upper - lower) / middle)


def keltner_width(n: int) -> pl.Expr:
    return cached(f"_kcw{n}", 2 * _KC_K * atr_expr(n) / ema_close(n))


@indicator(
    "atr_{n}",
    family="volatility",
    describe="average true range over {n} bars (Wilder), price units (TA-Lib ATR)",
    warmup=lambda n: n,
    library=[{"n": 14}],
)
def atr(n: int) -> pl.Expr:
    return atr_expr(n)


@indicator(
    "natr_{n}",
    family="volatility",
    describe="ATR{n} / close, a fraction (TA-Lib NATR / 100)",
    warmup=lambda n: n,
    library=[{"n": 14}],
)
def natr(n: int) -> pl.Expr:
    return atr_expr(n) / close


@indicator(
    "bb_width_{n}",
    family="volatility",
    describe="Bollinger band width (upper - lower) / middle, SMA{n} +- 2 sd (TA-Lib BBANDS)",
    warmup=lambda n: n - 1,
    library=[{"n": 20}],
)
def bb_width(n: int) -> pl.Expr:
    return bollinger_width(n)


@indicator(
    "bb_pctb_{n}",
    family="volatility",
    describe="Bollinger %b: where close sits between the {n}-bar bands, 0 = lower, 1 = upper",
    warmup=lambda n: n - 1,
    library=[{"n": 20}],
)
def bb_pctb(n: int) -> pl.Expr:
    upper, _, lower = _bands(n)
    return safe_div(close - lower, upper - lower)


@indicator(
    "kc_pos_{n}",
    family="volatility",
    describe="Keltner position: (close - EMA{n}) / (2 ATR{n}); +-1 at the channel edges",
    warmup=lambda n: n,
    library=[{"n": 20}],
)
def kc_pos(n: int) -> pl.Expr:
    return safe_div(close - ema_close(n), _KC_K * atr_expr(n))


@indicator(
    "kc_width_{n}",
    family="volatility",
    describe="Keltner channel width 4 ATR{n} / EMA{n}",
    warmup=lambda n: n,
    library=[{"n": 20}],
)
def kc_width(n: int) -> pl.Expr:
    return keltner_width(n)


@indicator(
    "bb_kc_ratio_{n}",
    family="volatility",
    describe="Bollinger width / Keltner width over {n} bars; below 1 is a squeeze",
    warmup=lambda n: n,
    library=[{"n": 20}],
)
def bb_kc_ratio(n: int) -> pl.Expr:
    return safe_div(bollinger_width(n), keltner_width(n))


@indicator(
    "rvol_{n}",
    family="volatility",
    describe="realized volatility: sample sd of one-bar log returns over {n} bars",
    warmup=lambda n: n,
    library=[{"n": 24}, {"n": 72}],
)
def rvol(n: int) -> pl.Expr:
    return LOG_RET.rolling_std(n)


@indicator(
    "parkinson_{n}",
    family="volatility",
    describe="Parkinson volatility per bar from the high-low range over {n} bars",
    warmup=lambda n: n - 1,
    library=[{"n": 24}, {"n": 72}],
)
def parkinson(n: int) -> pl.Expr:
    return (_hl2().rolling_mean(n) / (4.0 * math.log(2.0))).sqrt()


@indicator(
    "garman_klass_{n}",
    family="volatility",
    describe="Garman-Klass volatility per bar from open, high, low, close over {n} bars",
    warmup=lambda n: n - 1,
    library=[{"n": 24}, {"n": 72}],
)
def garman_klass(n: int) -> pl.Expr:
    co2 = (close / open_).log().pow(2)
    return (0.5 * _hl2() - (2.0 * math.log(2.0) - 1.0) * co2).rolling_mean(n).sqrt()
