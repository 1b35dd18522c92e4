"""Target weights from scores: volatility targeting with per-symbol and gross caps.

The sizing policy the backtest judges and the risk stage applies; pure, no I/O.
"""

from __future__ import annotations

import math

import polars as pl

from quantlab.config import RiskConfig, SignalConfig
from quantlab.portfolio.signals import directions_from_scores, smooth_scores
from quantlab.vocab import KEY


def size_targets(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    cfg: RiskConfig,
    signal: SignalConfig,
    periods_per_year: float,
    killed: bool = False,
) -> pl.DataFrame:
    """Target weights: direction from the smoothed score, size from target vol / realised vol, then caps.

    `predictions` has symbol, open_time, score in [-1, 1]; `bars` has symbol,
    open_time, close. The direction rule is the backtest's (`quantlab.portfolio.signals`);
    realised vol uses closes up to and including t only.
    """
    n_symbols = max(predictions["symbol"].n_unique(), 1)
    log_ret = (pl.col("close") / pl.col("close").shift(1)).log()
    vol = (
        bars.lazy()
        .sort(*KEY)
        .select(
            *KEY,
            (
                log_ret.rolling_std(cfg.vol_window, min_samples=cfg.vol_window).over(
                    "symbol", order_by="open_time"
                )
                * math.sqrt(periods_per_year)
            ).alias("vol"),
        )
    )
    smoothed = smooth_scores(predictions.select(*KEY, "score"), signal)
    directions = directions_from_scores(smoothed, signal).select(
        *KEY, pl.col("direction").cast(pl.Float64)
    )
    raw = pl.col("direction") * cfg.target_vol / pl.col("vol") / n_symbols
    capped = raw.clip(-cfg.max_weight, cfg.max_weight).fill_null(0.0).fill_nan(0.0)
    sized = (
        smoothed.lazy()
        .join(directions.lazy(), on=list(KEY), how="left")
        .join(vol, on=list(KEY), how="left")
        .with_columns(capped.alias("weight"))
        .with_columns(pl.col("weight").abs().sum().over("open_time").alias("gross"))
        .with_columns(
            pl.when(pl.col("gross") > cfg.max_gross)
            .then(pl.col("weight") * cfg.max_gross / pl.col("gross"))
            .otherwise(pl.col("weight"))
            .alias("target_weight")
        )
    )
    if killed:
        sized = sized.with_columns(pl.lit(0.0).alias("target_weight"))
    return sized.select(*KEY, "score", "vol", "direction", "target_weight").sort(*KEY).collect()
