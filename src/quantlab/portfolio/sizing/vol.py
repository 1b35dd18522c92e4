"""EWMA (RiskMetrics) volatility per symbol and the EWMA covariance behind the book-vol cap.

sigma^2_t = lam sigma^2_{t-1} + (1 - lam) r_t^2 on one-bar log returns, seeded with the first
squared return, no mean subtracted. Each value at t uses returns up to and including t only.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from numba import njit

from quantlab.vocab import KEY


def ewma_sigma(bars: pl.DataFrame, lam: float, min_bars: int) -> pl.DataFrame:
    """`symbol, open_time, ret, sigma`: per-bar EWMA sigma of log returns up to t.

    Null until a symbol has `min_bars` returns. A missing or non-finite return is skipped
    (sigma carries over), never read as a zero move.
    """
    ret = (pl.col("close") / pl.col("close").shift(1)).log().over("symbol", order_by="open_time")
    ret = pl.when(ret.is_finite()).then(ret)
    return (
        bars.lazy()
        .select(*KEY, "close")
        .sort(*KEY)
        .with_columns(ret.alias("ret"))
        .with_columns(
            (pl.col("ret") ** 2)
            .ewm_mean(alpha=1.0 - lam, adjust=False, min_samples=min_bars, ignore_nulls=True)
            .forward_fill()
            .over("symbol", order_by="open_time")
            .sqrt()
            .alias("sigma")
        )
        .select(*KEY, "ret", "sigma")
        .collect()
    )


@njit(cache=True)
def _book_var(returns: np.ndarray, weights: np.ndarray, lam: float) -> np.ndarray:
    """Per row t: w_t' Sigma_t w_t, Sigma_t the EWMA covariance of returns up to row t.

    A pair's covariance starts at its first joint return and updates only when both are
    present; a pair never seen together counts as perfectly correlated (an upper bound).
    """
    n_t, n = returns.shape
    cov = np.zeros((n, n))
    seen = np.zeros((n, n), dtype=np.bool_)
    out = np.zeros(n_t)
    for t in range(n_t):
        r = returns[t]
        for i in range(n):
            if math.isnan(r[i]):
                continue
            for j in range(i, n):
                if math.isnan(r[j]):
                    continue
                x = r[i] * r[j]
                if seen[i, j]:
                    cov[i, j] = lam * cov[i, j] + (1.0 - lam) * x
                else:
                    cov[i, j] = x
                    seen[i, j] = True
                cov[j, i] = cov[i, j]
                seen[j, i] = True
        w = weights[t]
        total = 0.0
        for i in range(n):
            if w[i] == 0.0:
                continue
            for j in range(n):
                if w[j] == 0.0:
                    continue
                if seen[i, j]:
                    total += w[i] * w[j] * cov[i, j]
                else:
                    total += abs(w[i] * w[j]) * math.sqrt(cov[i, i] * cov[j, j])
        out[t] = total
    return out


def book_vol(
    returns: pl.DataFrame, weights: pl.DataFrame, lam: float, periods_per_year: float
) -> pl.DataFrame:
    """`open_time, book_vol` for each time of `weights` (symbol, open_time, weight): the
    annualised sqrt(w' Sigma w), Sigma the EWMA covariance of `returns` (symbol, open_time,
    ret: every bar's one-bar log return) up to and including that time."""
    long = returns.select(*KEY, "ret").join(
        weights.select(*KEY, "weight"), on=list(KEY), how="full", coalesce=True
    )
    wide_r = long.pivot(on="symbol", index="open_time", values="ret", sort_columns=True)
    wide_w = long.pivot(on="symbol", index="open_time", values="weight", sort_columns=True)
    wide_r, wide_w = wide_r.sort("open_time"), wide_w.sort("open_time")
    symbols = [c for c in wide_r.columns if c != "open_time"]
    r = wide_r.select(symbols).to_numpy().astype(np.float64)
    w = wide_w.select(symbols).to_numpy().astype(np.float64)
    var = _book_var(np.where(np.isfinite(r), r, np.nan), np.where(np.isfinite(w), w, 0.0), lam)
    vol = pl.DataFrame(
        {
            "open_time": wide_r["open_time"],
            "book_vol": np.sqrt(np.maximum(var, 0.0) * periods_per_year),
        }
    )
    return vol.join(weights.select("open_time").unique(), on="open_time", how="semi")
