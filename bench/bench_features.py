"""Benchmark: the polars feature build against a pandas reference of the same indicators.

Prints both times and the ratio, measured in the same run on the same data.
The data is the real shipped sample (3 symbols x 2 years of 1h bars), tiled
`--repeat` times under new symbol names to reach a larger size; the tiled
copies are labelled synthetic in the output.

    uv run python bench/bench_features.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import load_sample_klines  # noqa: E402

from quantlab.config import FeaturesConfig  # noqa: E402
from quantlab.features import build_features, feature_names  # noqa: E402


def _wilder(s: pd.Series, n: int) -> pd.Series:
    return s.ewm(alpha=1 / n, adjust=False, min_periods=n).mean()


def pandas_features(bars: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    """A straightforward pandas groupby implementation, the way such code is usually written."""
    out = []
    for symbol, g in bars.sort_values(["symbol", "open_time"]).groupby("symbol", sort=True):
        c, h, lo, v = g["close"], g["high"], g["low"], g["volume"]
        f = pd.DataFrame({"symbol": symbol, "open_time": g["open_time"]})
        r1 = np.log(c / c.shift(1))
        for w in cfg.return_windows:
            f[f"ret_{w}"] = np.log(c / c.shift(w))
        for w in cfg.vol_windows:
            f[f"vol_{w}"] = r1.rolling(w, min_periods=w).std()
        d = c.diff()
        gain, loss = (
            _wilder(d.clip(lower=0), cfg.rsi_window),
            _wilder((-d).clip(lower=0), cfg.rsi_window),
        )
        f[f"rsi_{cfg.rsi_window}"] = 100 - 100 / (1 + gain / loss)
        fast = c.ewm(span=cfg.ema_fast, adjust=False, min_periods=cfg.ema_slow).mean()
        slow = c.ewm(span=cfg.ema_slow, adjust=False, min_periods=cfg.ema_slow).mean()
        f["macd_norm"] = (fast - slow) / c
        w = cfg.bollinger_window
        f[f"bb_z_{w}"] = (c - c.rolling(w, min_periods=w).mean()) / c.rolling(
            w, min_periods=w
        ).std()
        pc = c.shift(1)
        tr = (
            pd.concat([h - lo, (h - pc).abs(), (lo - pc).abs()], axis=1)
            .max(axis=1)
            .where(pc.notna())
        )
        f[f"atr_{cfg.atr_window}"] = _wilder(tr, cfg.atr_window) / c
        lv = np.log(v + 1.0)
        w = cfg.volume_window
        f[f"volume_z_{w}"] = (lv - lv.rolling(w, min_periods=w).mean()) / lv.rolling(
            w, min_periods=w
        ).std()
        f["range_hl"] = (h - lo) / c
        span = h - lo
        f["close_pos"] = ((c - lo) / span).where(span > 0)
        f["taker_buy_ratio"] = (g["taker_buy_base_volume"] / v).where(v > 0)
        out.append(f)
    return pd.concat(out, ignore_index=True)


def _best(fn, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--repeat", type=int, default=10, help="tile the real sample this many times"
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    real = pl.concat([load_sample_klines(s) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")])
    bars = pl.concat([real.with_columns(pl.col("symbol") + f"_{i}") for i in range(args.repeat)])
    cfg = FeaturesConfig()
    pdf = bars.to_pandas()

    ours = build_features(bars, cfg)
    ref = pandas_features(pdf, cfg)
    names = feature_names(cfg)
    diff = np.nanmax(np.abs(ours.select(names).to_numpy() - ref[names].to_numpy(dtype=float)))
    t_polars = _best(lambda: build_features(bars, cfg), args.runs)
    t_pandas = _best(lambda: pandas_features(pdf, cfg), args.runs)
    print(
        f"rows={bars.height:,} (real sample x{args.repeat}; copies beyond the first are synthetic "
        f"renames) features={len(names)} max_abs_diff={diff:.2e}"
    )
    print(f"polars build_features: {t_polars:.3f} s")
    print(f"pandas reference     : {t_pandas:.3f} s")
    print(f"speed-up (pandas / polars): {t_pandas / t_polars:.1f}x")


if __name__ == "__main__":
    main()
