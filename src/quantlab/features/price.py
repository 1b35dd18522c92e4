"""Price shape: simple and log returns at several lags, the bar's range, body and close position."""

from __future__ import annotations

import polars as pl

from quantlab.features._primitives import close, high, low, open_, safe_div
from quantlab.features._registry import indicator

_LAGS = [{"n": 1}, {"n": 4}, {"n": 24}]


@indicator(
    "ret_{n}",
    family="price",
    describe="simple return over {n} bars, close / close {n} bars back - 1",
    warmup=lambda n: n,
    library=_LAGS,
)
def ret(n: int) -> pl.Expr:
    return close / close.shift(n) - 1.0


@indicator(
    "logret_{n}",
    family="price",
    describe="log return over {n} bars, ln(close / close {n} bars back)",
    warmup=lambda n: n,
    library=_LAGS,
)
def logret(n: int) -> pl.Expr:
    return (close / close.shift(n)).log()


@indicator(
    "range_hl",
    family="price",
    describe="the bar's high-low range / close",
    warmup=lambda: 0,
)
def range_hl() -> pl.Expr:
    return (high - low) / close


@indicator(
    "close_pos",
    family="price",
    describe="where the close sits in the bar's range, 0 = low, 1 = high; null on a flat bar",
    warmup=lambda: 0,
)
def close_pos() -> pl.Expr:
    return safe_div(close - low, high - low)


@indicator(
    "body",
    family="price",
    describe="candle body (close - open) / (high - low), -1 to 1; null on a flat bar",
    warmup=lambda: 0,
)
def body() -> pl.Expr:
    return safe_div(close - open_, high - low)
