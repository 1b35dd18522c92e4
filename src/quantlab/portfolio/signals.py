"""From model scores to directions: smoothing and thresholds shared by the backtest and risk sizing."""

from __future__ import annotations

import polars as pl

from quantlab.config import SignalConfig
from quantlab.schema import UTC_MS, require_columns


def smooth_scores(predictions: pl.DataFrame, cfg: SignalConfig) -> pl.DataFrame:
    """Mean of each symbol's last `cfg.smoothing` scores (past only), so an N-bar forecast is held ~N bars.

    The first `smoothing - 1` scores of a symbol have no full window and become null (no opinion).
    """
    require_columns(predictions, ("symbol", "open_time", "score"), "predictions")
    n = cfg.smoothing
    return predictions.sort("symbol", "open_time").with_columns(
        pl.col("score").rolling_mean(n, min_samples=n).over("symbol", order_by="open_time")
    )


def directions_from_scores(scores: pl.DataFrame, cfg: SignalConfig) -> pl.DataFrame:
    """Turn model scores into directions in {-1, 0, 1} (column `direction`).

    +1 when score > threshold, -1 when score < -threshold and shorting is allowed, else 0.
    A null or NaN score means no opinion and gives 0 (polars orders NaN above every number,
    so it would otherwise read as a long).
    """
    require_columns(scores, ("symbol", "open_time", "score"), "scores")
    score = pl.col("score").cast(pl.Float64)
    valid = score.is_not_null() & score.is_not_nan()
    short = -1 if cfg.allow_short else 0
    direction = (
        pl.when(valid & (score > cfg.threshold))
        .then(pl.lit(1))
        .when(valid & (score < -cfg.threshold))
        .then(pl.lit(short))
        .otherwise(pl.lit(0))
        .cast(pl.Int8)
    )
    return scores.select(
        pl.col("symbol").cast(pl.String),
        pl.col("open_time").cast(UTC_MS),
        direction.alias("direction"),
    ).sort("symbol", "open_time")
