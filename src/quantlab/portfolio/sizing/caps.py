"""Caps on the book: per symbol, gross, net, and book volatility from an EWMA covariance.

Applied in that order, each only ever shrinking weights (clip, then one scale per bar), so
the output stays within every cap: |w_i| <= max_weight, sum |w| <= max_gross,
|sum w| <= max_net, sqrt(w' Sigma w) annualised <= max_book_vol.
"""

from __future__ import annotations

import polars as pl

from quantlab.config import RiskConfig
from quantlab.portfolio.sizing.vol import book_vol
from quantlab.vocab import KEY


def _scale_to(total: pl.Expr, cap: float) -> pl.Expr:
    return pl.when(total > cap).then(cap / total).otherwise(1.0)


def apply_caps(
    weights: pl.DataFrame,
    returns: pl.DataFrame,
    cfg: RiskConfig,
    lam: float,
    periods_per_year: float,
) -> pl.DataFrame:
    """`weights` (symbol, open_time, weight) capped into `target_weight`, with `book_vol`:
    the annualised book volatility of the capped weights. `returns` (symbol, open_time, ret)
    holds every bar's one-bar log return, the covariance's input."""
    clipped = weights.with_columns(pl.col("weight").clip(-cfg.max_weight, cfg.max_weight))
    gross = pl.col("weight").abs().sum().over("open_time")
    net = pl.col("weight").sum().over("open_time").abs()
    scaled = clipped.with_columns(pl.col("weight") * _scale_to(gross, cfg.max_gross)).with_columns(
        pl.col("weight") * _scale_to(net, cfg.max_net)
    )
    vol = book_vol(returns, scaled.select(*KEY, "weight"), lam, periods_per_year)
    cap = float("inf") if cfg.max_book_vol is None else cfg.max_book_vol
    factor = _scale_to(pl.col("book_vol"), cap)
    return (
        scaled.join(vol, on="open_time", how="left")
        .with_columns(factor.alias("factor"))
        .with_columns(
            (pl.col("weight") * pl.col("factor")).alias("target_weight"),
            (pl.col("book_vol") * pl.col("factor")).alias("book_vol"),
        )
        .drop("weight", "factor")
    )
