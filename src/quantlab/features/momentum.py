"""Momentum indicators: RSI, MACD, stochastic, Williams %R, rate of change (TA-Lib's C code)."""

from __future__ import annotations

import polars as pl

from quantlab.errors import ConfigError
from quantlab.features._primitives import cached, close, high, low, ta_outputs
from quantlab.features._registry import indicator
from quantlab.features._talib import ta

_MACD = ({"fast": 12, "slow": 26, "sig": 9},)
_STOCH = ({"k": 14, "slow": 3, "d": 3},)


@indicator(
    "rsi_{n}",
    family="momentum",
    describe="Wilder's relative strength index over {n} bars, 0-100 (TA-Lib RSI)",
    warmup=lambda n: n,
    library=[{"n": 7}, {"n": 14}],
)
def rsi(n: int) -> pl.Expr:
    # TA-Lib gives 0, not null, where nothing moved since the first bar (avg gain + loss = 0).
    return cached(f"_rsi{n}", ta("RSI", close, timeperiod=n))


def _macd(fast: int, slow: int, sig: int) -> tuple[pl.Expr, ...]:
    """TA-Lib MACD: both EMAs seeded on the bar the slow one can start, outputs from slow+sig-2."""
    if not 1 < fast < slow:
        raise ConfigError(f"MACD needs 1 < fast < slow, got fast={fast} slow={slow}")
    return ta_outputs(
        f"_macd{fast}_{slow}_{sig}",
        "MACD",
        [close],
        ("line", "signal", "hist"),
        fastperiod=fast,
        slowperiod=slow,
        signalperiod=sig,
    )


def _macd_warmup(fast: int, slow: int, sig: int) -> int:
    return slow + sig - 2


@indicator(
    "macd_{fast}_{slow}_{sig}",
    family="momentum",
    describe="MACD line: EMA{fast} - EMA{slow} of close, price units (TA-Lib MACD)",
    warmup=_macd_warmup,
    library=_MACD,
)
def macd(fast: int, slow: int, sig: int) -> pl.Expr:
    return _macd(fast, slow, sig)[0]


@indicator(
    "macd_signal_{fast}_{slow}_{sig}",
    family="momentum",
    describe="MACD signal: EMA{sig} of the MACD({fast},{slow}) line, price units",
    warmup=_macd_warmup,
    library=_MACD,
)
def macd_signal(fast: int, slow: int, sig: int) -> pl.Expr:
    return _macd(fast, slow, sig)[1]


@indicator(
    "macd_hist_{fast}_{slow}_{sig}",
    family="momentum",
    describe="MACD histogram: line - signal of MACD({fast},{slow},{sig}), price units",
    warmup=_macd_warmup,
    library=_MACD,
)
def macd_hist(fast: int, slow: int, sig: int) -> pl.Expr:
    return _macd(fast, slow, sig)[2]


@indicator(
    "macd_pct_{fast}_{slow}_{sig}",
    family="momentum",
    describe="MACD({fast},{slow},{sig}) line / close: comparable across symbols and years",
    warmup=_macd_warmup,
    library=_MACD,
)
def macd_pct(fast: int, slow: int, sig: int) -> pl.Expr:
    return _macd(fast, slow, sig)[0] / close


@indicator(
    "macd_hist_pct_{fast}_{slow}_{sig}",
    family="momentum",
    describe="MACD({fast},{slow},{sig}) histogram / close",
    warmup=_macd_warmup,
    library=_MACD,
)
def macd_hist_pct(fast: int, slow: int, sig: int) -> pl.Expr:
    return _macd(fast, slow, sig)[2] / close


def _stoch(k: int, slow: int, d: int) -> tuple[pl.Expr, ...]:
    """TA-Lib STOCH with SMA smoothing; both lines start where %D can, at k+slow+d-3.

    A range without width counts as close at the low (fast %K 0), as in TA-Lib.
    """
    return ta_outputs(
        f"_stoch{k}_{slow}_{d}",
        "STOCH",
        [high, low, close],
        ("k", "d"),
        fastk_period=k,
        slowk_period=slow,
        slowk_matype=0,
        slowd_period=d,
        slowd_matype=0,
    )


@indicator(
    "stoch_k_{k}_{slow}_{d}",
    family="momentum",
    describe="stochastic slow %K: SMA{slow} of close's place in the {k}-bar range, 0-100 (TA-Lib STOCH)",
    warmup=lambda k, slow, d: k + slow + d - 3,
    library=_STOCH,
)
def stoch_k(k: int, slow: int, d: int) -> pl.Expr:
    return _stoch(k, slow, d)[0]


@indicator(
    "stoch_d_{k}_{slow}_{d}",
    family="momentum",
    describe="stochastic slow %D: SMA{d} of slow %K({k},{slow}), 0-100 (TA-Lib STOCH)",
    warmup=lambda k, slow, d: k + slow + d - 3,
    library=_STOCH,
)
def stoch_d(k: int, slow: int, d: int) -> pl.Expr:
    return _stoch(k, slow, d)[1]


@indicator(
    "willr_{n}",
    family="momentum",
    describe="Williams %R over {n} bars, -100 (at the low) to 0 (at the high) (TA-Lib WILLR)",
    warmup=lambda n: n - 1,
    library=[{"n": 14}],
)
def willr(n: int) -> pl.Expr:
    # TA-Lib, not polars' rolling_max/min: those cost about 30x TA-Lib's running extreme.
    # A range without width gives 0, as in TA-Lib.
    return ta("WILLR", high, low, close, timeperiod=n)


@indicator(
    "roc_{n}",
    family="momentum",
    describe="rate of change over {n} bars in percent (TA-Lib ROC)",
    warmup=lambda n: n,
    library=[{"n": 6}, {"n": 12}, {"n": 48}],
)
def roc(n: int) -> pl.Expr:
    return ta("ROC", close, timeperiod=n)  # (close / close n bars back - 1) * 100
