"""Momentum indicators: RSI, MACD, stochastic, Williams %R, rate of change (TA-Lib definitions)."""

from __future__ import annotations

import polars as pl

from quantlab.errors import ConfigError
from quantlab.features._primitives import IDX, cached, close, ema, high, low, safe_div, wilder
from quantlab.features._registry import indicator

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
    delta = close.diff()
    gain = cached(f"_rsi_up{n}", wilder(delta.clip(lower_bound=0), n, first=1))
    loss = cached(f"_rsi_down{n}", wilder((-delta).clip(lower_bound=0), n, first=1))
    return safe_div(100.0 * gain, gain + loss)  # a window with no move at all has no RSI


def _macd(fast: int, slow: int, sig: int) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """TA-Lib MACD: both EMAs seeded on the bar the slow one can start, outputs from slow+sig-2."""
    if not 1 < fast < slow:
        raise ConfigError(f"MACD needs 1 < fast < slow, got fast={fast} slow={slow}")
    line = cached(f"_macd{fast}_{slow}", ema(close, fast, seed_at=slow - 1) - ema(close, slow))
    signal = cached(f"_macd{fast}_{slow}_{sig}", ema(line, sig, first=slow - 1))
    ready = slow + sig - 2 <= IDX
    return (
        pl.when(ready).then(line),
        pl.when(ready).then(signal),
        pl.when(ready).then(line - signal),
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


def _stoch(k: int, slow: int, d: int) -> tuple[pl.Expr, pl.Expr]:
    """TA-Lib STOCH with SMA smoothing; both lines start where %D can, at k+slow+d-3."""
    hh, ll = cached(f"_hh{k}", high.rolling_max(k)), cached(f"_ll{k}", low.rolling_min(k))
    fast_k = cached(f"_fastk{k}", safe_div(100.0 * (close - ll), hh - ll))
    slow_k = cached(f"_slowk{k}_{slow}", fast_k.rolling_mean(slow))
    ready = pl.col("_i") >= k + slow + d - 3
    return pl.when(ready).then(slow_k), pl.when(ready).then(slow_k.rolling_mean(d))


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
    hh, ll = cached(f"_hh{n}", high.rolling_max(n)), cached(f"_ll{n}", low.rolling_min(n))
    return safe_div(-100.0 * (hh - close), hh - ll)


@indicator(
    "roc_{n}",
    family="momentum",
    describe="rate of change over {n} bars in percent (TA-Lib ROC)",
    warmup=lambda n: n,
    library=[{"n": 6}, {"n": 12}, {"n": 48}],
)
def roc(n: int) -> pl.Expr:
    return (close / close.shift(n) - 1.0) * 100.0
