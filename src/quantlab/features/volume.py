"""Volume and order flow: OBV, MFI, volume and trade-count z-scores, VWAP distance, taker-buy share."""

from __future__ import annotations

import polars as pl

from quantlab.features._primitives import (
    IDX,
    cached,
    close,
    high,
    low,
    rolling_z,
    safe_div,
    volume,
)
from quantlab.features._registry import indicator
from quantlab.features._talib import ta

_taker = pl.col("taker_buy_base_volume")


def _volume_sum(n: int) -> pl.Expr:
    return cached(f"_vsum{n}", volume.rolling_sum(n))


def _signed_volume() -> pl.Expr:
    """+volume on an up close, -volume on a down close, 0 when unchanged; null on the first bar."""
    return cached("_sv", pl.when(IDX > 0).then(volume * close.diff().sign()))


@indicator(
    "obv",
    family="volume",
    describe="on-balance volume since the first bar, base-asset units (TA-Lib OBV)",
    warmup=lambda: 0,
)
def obv() -> pl.Expr:
    # TA-Lib's one loop: several times faster than the same sum as polars expressions.
    return ta("OBV", close, volume)


@indicator(
    "obv_flow_{n}",
    family="volume",
    describe="OBV change over {n} bars / volume traded in them, -1 (all down) to 1 (all up)",
    warmup=lambda n: n,
    library=[{"n": 24}],
)
def obv_flow(n: int) -> pl.Expr:
    return safe_div(_signed_volume().rolling_sum(n), _volume_sum(n))


@indicator(
    "mfi_{n}",
    family="volume",
    describe="money flow index over {n} bars: volume-weighted RSI of the typical price (TA-Lib MFI)",
    warmup=lambda n: n,
    library=[{"n": 14}],
)
def mfi(n: int) -> pl.Expr:
    # TA-Lib gives 0, not null, where no money flowed in the window.
    return ta("MFI", high, low, close, volume, timeperiod=n)


@indicator(
    "volume_z_{n}",
    family="volume",
    describe="z-score of log(1 + volume) against the last {n} bars",
    warmup=lambda n: n - 1,
    library=[{"n": 24}, {"n": 168}],
)
def volume_z(n: int) -> pl.Expr:
    return rolling_z((volume + 1.0).log(), n, key="logvol")


@indicator(
    "vwap_dist_{n}",
    family="volume",
    describe="close / rolling VWAP over {n} bars - 1 (VWAP = quote volume / base volume)",
    warmup=lambda n: n - 1,
    library=[{"n": 24}],
)
def vwap_dist(n: int) -> pl.Expr:
    vwap = safe_div(pl.col("quote_volume").rolling_sum(n), _volume_sum(n))
    return close / vwap - 1.0


@indicator(
    "taker_buy_ratio",
    family="volume",
    describe="taker-buy share of the bar's volume, 0-1; null on a bar without volume",
    warmup=lambda: 0,
)
def taker_buy_ratio() -> pl.Expr:
    return safe_div(_taker, volume)


@indicator(
    "taker_buy_ratio_{n}",
    family="volume",
    describe="taker-buy share of the volume over the last {n} bars, 0-1",
    warmup=lambda n: n - 1,
    library=[{"n": 24}],
)
def taker_buy_ratio_n(n: int) -> pl.Expr:
    return safe_div(_taker.rolling_sum(n), _volume_sum(n))


@indicator(
    "trades_z_{n}",
    family="volume",
    describe="z-score of log(1 + number of trades) against the last {n} bars",
    warmup=lambda n: n - 1,
    library=[{"n": 24}],
)
def trades_z(n: int) -> pl.Expr:
    return rolling_z((pl.col("trades").cast(pl.Float64) + 1.0).log(), n, key="logtrades")
