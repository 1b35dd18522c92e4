"""Trend indicators: EMA and SMA and the distance to them, ADX with +DI and -DI (TA-Lib's C code)."""

from __future__ import annotations

import polars as pl

from quantlab.features._primitives import cached, close, ema_close, high, low
from quantlab.features._registry import indicator
from quantlab.features._talib import ta

_EMAS = [{"n": 9}, {"n": 21}, {"n": 50}, {"n": 200}]
_SMAS = [{"n": 20}, {"n": 50}]


def sma_close(n: int) -> pl.Expr:
    # TA-Lib's running sum: about 3x faster than polars' rolling_mean on a year of 1m bars.
    return cached(f"_sma{n}", ta("SMA", close, timeperiod=n))


@indicator(
    "ema_{n}",
    family="trend",
    describe="exponential moving average of close over {n} bars, price units (TA-Lib EMA)",
    warmup=lambda n: n - 1,
    library=_EMAS,
)
def ema_n(n: int) -> pl.Expr:
    return ema_close(n)


@indicator(
    "ema_dist_{n}",
    family="trend",
    describe="close / EMA{n} - 1: how far price ran from its {n}-bar EMA",
    warmup=lambda n: n - 1,
    library=_EMAS,
)
def ema_dist(n: int) -> pl.Expr:
    return close / ema_close(n) - 1.0


@indicator(
    "sma_{n}",
    family="trend",
    describe="simple moving average of close over {n} bars, price units (TA-Lib SMA)",
    warmup=lambda n: n - 1,
    library=_SMAS,
)
def sma(n: int) -> pl.Expr:
    return sma_close(n)


@indicator(
    "sma_dist_{n}",
    family="trend",
    describe="close / SMA{n} - 1",
    warmup=lambda n: n - 1,
    library=_SMAS,
)
def sma_dist(n: int) -> pl.Expr:
    return close / sma_close(n) - 1.0


def _di(n: int) -> tuple[pl.Expr, pl.Expr]:
    return (
        cached(f"_pdi{n}", ta("PLUS_DI", high, low, close, timeperiod=n)),
        cached(f"_mdi{n}", ta("MINUS_DI", high, low, close, timeperiod=n)),
    )


@indicator(
    "plus_di_{n}",
    family="trend",
    describe="+DI over {n} bars: smoothed up-moves / true range, 0-100 (TA-Lib PLUS_DI)",
    warmup=lambda n: n,
    library=[{"n": 14}],
)
def plus_di(n: int) -> pl.Expr:
    return _di(n)[0]


@indicator(
    "minus_di_{n}",
    family="trend",
    describe="-DI over {n} bars: smoothed down-moves / true range, 0-100 (TA-Lib MINUS_DI)",
    warmup=lambda n: n,
    library=[{"n": 14}],
)
def minus_di(n: int) -> pl.Expr:
    return _di(n)[1]


def adx_expr(n: int) -> pl.Expr:
    return cached(f"_adx{n}", ta("ADX", high, low, close, timeperiod=n))


@indicator(
    "adx_{n}",
    family="trend",
    describe="average directional index over {n} bars: trend strength, 0-100 (TA-Lib ADX)",
    warmup=lambda n: 2 * n - 1,
    library=[{"n": 14}],
)
def adx(n: int) -> pl.Expr:
    return adx_expr(n)
