"""Every indicator TA-Lib also has matches TA-Lib (the C library in the `ta-lib` wheel) after warm-up.

The library calls TA-Lib for them, so these tests check the wiring against direct
TA-Lib calls: parameters, per-symbol alignment on real bars of three symbols built
together (shuffled), the warm-up null exactly where TA-Lib has no value yet and
equal to the registry's warm-up, and a flat stretch like an exchange halt.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import talib
from talib import abstract as talib_abstract

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig
from quantlab.errors import ConfigError
from quantlab.features import build_features, resolve

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
MONTHS = tuple(f"2023-{m:02d}" for m in range(1, 7))


def _oracles(o, h, lo, c, v) -> dict[str, np.ndarray]:
    macd, signal, hist = talib.MACD(c, 12, 26, 9)
    fast_macd, fast_signal, fast_hist = talib.MACD(c, 5, 35, 5)
    slow_k, slow_d = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    return {
        "rsi_7": talib.RSI(c, 7),
        "rsi_14": talib.RSI(c, 14),
        "macd_12_26_9": macd,
        "macd_signal_12_26_9": signal,
        "macd_hist_12_26_9": hist,
        "macd_5_35_5": fast_macd,
        "macd_signal_5_35_5": fast_signal,
        "macd_hist_5_35_5": fast_hist,
        "macd_pct_12_26_9": macd / c,
        "stoch_k_14_3_3": slow_k,
        "stoch_d_14_3_3": slow_d,
        "willr_14": talib.WILLR(h, lo, c, 14),
        "roc_12": talib.ROC(c, 12),
        "ema_9": talib.EMA(c, 9),
        "ema_21": talib.EMA(c, 21),
        "ema_200": talib.EMA(c, 200),
        "ema_dist_50": c / talib.EMA(c, 50) - 1,
        "sma_20": talib.SMA(c, 20),
        "sma_50": talib.SMA(c, 50),
        "adx_14": talib.ADX(h, lo, c, 14),
        "adx_7": talib.ADX(h, lo, c, 7),
        "plus_di_14": talib.PLUS_DI(h, lo, c, 14),
        "minus_di_14": talib.MINUS_DI(h, lo, c, 14),
        "atr_14": talib.ATR(h, lo, c, 14),
        "natr_14": talib.NATR(h, lo, c, 14) / 100,
        "bb_width_20": (upper - lower) / middle,
        "bb_pctb_20": (c - lower) / (upper - lower),
        "mfi_14": talib.MFI(h, lo, c, v, 14),
        "obv": talib.OBV(c, v),
    }


CFG = FeaturesConfig(
    columns=tuple(_oracles(*[np.ones(3)] * 5)),
    timeframes={},
    cross_section={"rank": (), "zscore": ()},
    normalize={"columns": ()},
)


def _assert_matches(bars: pl.DataFrame, out: pl.DataFrame, symbol: str) -> None:
    one = bars.filter(pl.col("symbol") == symbol).sort("open_time")
    ours = out.filter(pl.col("symbol") == symbol).sort("open_time")
    assert ours["open_time"].equals(one["open_time"])
    arrays = [one[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]
    with np.errstate(divide="ignore", invalid="ignore"):
        oracles = _oracles(*arrays)
    for name, expected in oracles.items():
        got = ours[name].to_numpy().astype(float)  # nulls become NaN
        # Where the oracle divides by a zero band width we have null, never inf or NaN.
        ready = np.isfinite(expected)
        np.testing.assert_array_equal(np.isnan(got), ~ready, err_msg=name)
        scale = max(np.abs(expected[ready]).max(), 1e-300)
        np.testing.assert_allclose(
            got[ready], expected[ready], rtol=1e-8, atol=1e-12 * scale, err_msg=name
        )


@pytest.fixture(scope="module")
def built():
    bars = pl.concat([load_sample_klines(s, MONTHS) for s in SYMBOLS])
    # Shuffled input: the library must sort and split by symbol itself.
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=3)
    return bars, build_features(shuffled, CFG)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_indicators_match_talib(built, symbol):
    _assert_matches(*built, symbol)


def test_a_flat_stretch_gives_talib_values_not_nulls():
    """Bars that do not move (a halt, an illiquid hour) at the start and in the middle.

    TA-Lib answers 0 where RSI, %R, %K and MFI divide nothing by nothing; so do we.
    """
    bars = load_sample_klines("ETHUSDT", MONTHS[:2])
    row = pl.int_range(pl.len())
    flat = (row < 40) | ((row >= 300) & (row < 340))
    anchor = pl.when(row < 40).then(pl.col("close").get(40)).otherwise(pl.col("close").get(299))
    bars = bars.with_columns(
        *[
            pl.when(flat).then(anchor).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        ],
        *[
            pl.when(flat).then(0).otherwise(pl.col(c)).cast(bars.schema[c]).alias(c)
            for c in ("volume", "quote_volume", "trades", "taker_buy_base_volume")
        ],
    )
    out = build_features(bars, CFG)
    _assert_matches(bars, out, "ETHUSDT")
    at = out.filter(row.over("symbol") == 330)
    # %K is a running mean of fast %K, so its zero carries TA-Lib's rounding.
    assert at.select("willr_14", "stoch_k_14_3_3", "mfi_14").row(0) == pytest.approx(
        (0.0, 0.0, 0.0), abs=1e-9
    )
    assert out["rsi_14"][20] == 0.0  # nothing has moved since the first bar


# The registry's warm-up of each TA-Lib-backed feature is TA-Lib's lookback at its defaults.
LOOKBACKS = {
    "rsi_21": ("RSI", {"timeperiod": 21}),
    "ema_50": ("EMA", {"timeperiod": 50}),
    "sma_7": ("SMA", {"timeperiod": 7}),
    "macd_hist_5_35_5": ("MACD", {"fastperiod": 5, "slowperiod": 35, "signalperiod": 5}),
    "atr_10": ("ATR", {"timeperiod": 10}),
    "natr_14": ("NATR", {"timeperiod": 14}),
    "adx_7": ("ADX", {"timeperiod": 7}),
    "plus_di_9": ("PLUS_DI", {"timeperiod": 9}),
    "minus_di_9": ("MINUS_DI", {"timeperiod": 9}),
    "stoch_d_5_3_4": ("STOCH", {"fastk_period": 5, "slowk_period": 3, "slowd_period": 4}),
    "willr_30": ("WILLR", {"timeperiod": 30}),
    "mfi_20": ("MFI", {"timeperiod": 20}),
    "bb_width_30": ("BBANDS", {"timeperiod": 30}),
    "roc_48": ("ROC", {"timeperiod": 48}),
    "obv": ("OBV", {}),
}


@pytest.mark.parametrize("name", LOOKBACKS)
def test_registry_warmup_is_talibs_lookback(name):
    fn, params = LOOKBACKS[name]
    assert resolve(name).warmup == talib_abstract.Function(fn, **params).lookback


def test_changed_talib_settings_are_refused():
    """An unstable period would lengthen the warm-up and change values; features refuse it."""
    bars = load_sample_klines("BTCUSDT", MONTHS[:1])
    talib.set_unstable_period("RSI", 10)
    try:
        with pytest.raises(ConfigError, match="set_unstable_period"):
            build_features(bars, CFG)
    finally:
        talib.set_unstable_period("RSI", 0)
    assert build_features(bars, CFG)["rsi_14"].null_count() == 14
