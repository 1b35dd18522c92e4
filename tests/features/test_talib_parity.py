"""Every indicator TA-Lib also has matches TA-Lib (the C library in the `ta-lib` wheel) after warm-up.

The comparison runs per symbol on real bars of three symbols built together, so it
also checks the wiring: parameters, per-symbol alignment, and that the warm-up is
null exactly where TA-Lib has no value yet.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig
from quantlab.features import build_features

talib = pytest.importorskip("talib")

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


@pytest.fixture(scope="module")
def built():
    bars = pl.concat([load_sample_klines(s, MONTHS) for s in SYMBOLS])
    names = tuple(_oracles(*[np.ones(3)] * 5))
    cfg = FeaturesConfig(
        columns=names,
        timeframes={},
        cross_section={"rank": (), "zscore": ()},
        normalize={"columns": ()},
    )
    # Shuffled input: the library must sort and split by symbol itself.
    return bars.sample(fraction=1.0, shuffle=True, seed=3), build_features(bars, cfg)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_indicators_match_talib(built, symbol):
    bars, out = built
    one = bars.filter(pl.col("symbol") == symbol).sort("open_time")
    ours = out.filter(pl.col("symbol") == symbol).sort("open_time")
    arrays = [one[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]
    for name, expected in _oracles(*arrays).items():
        got = ours[name].to_numpy().astype(float)  # nulls become NaN
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
        ready = ~np.isnan(expected)
        scale = np.abs(expected[ready]).max()
        np.testing.assert_allclose(
            got[ready], expected[ready], rtol=1e-8, atol=1e-12 * scale, err_msg=name
        )
