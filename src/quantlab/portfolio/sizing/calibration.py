"""Are the class probabilities calibrated? A reliability table and the Brier score per fold.

Kelly sizes from the probabilities as given; this report says whether they deserve it: in a
calibrated model, the bars given P(up) near 0.6 go up about 60% of the time.
"""

from __future__ import annotations

import polars as pl

from quantlab.schema import require_columns
from quantlab.vocab import KEY


def calibration(
    predictions: pl.DataFrame, outcomes: pl.DataFrame, bins: int = 10
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reliability table and Brier score per fold of `prob_up` against `up` (1 / 0).

    `predictions`: symbol, open_time, fold, prob_up; `outcomes`: symbol, open_time, up
    (null where the outcome is not known yet; those rows are left out). Bins are equal-width
    on [0, 1]. Returns (`table`: fold, bin, lower, upper, count, mean_predicted, observed;
    `brier`: fold, count, brier, base_rate), folds sorted, empty bins left out.
    """
    require_columns(predictions, ("symbol", "open_time", "fold", "prob_up"), "predictions")
    require_columns(outcomes, ("symbol", "open_time", "up"), "outcomes")
    rows = (
        predictions.select(*KEY, "fold", "prob_up")
        .join(outcomes.select(*KEY, pl.col("up").cast(pl.Float64)), on=list(KEY), how="inner")
        .drop_nulls(["prob_up", "up"])
        .filter(pl.col("prob_up").is_not_nan())
        .with_columns(
            (pl.col("prob_up") * bins).floor().cast(pl.Int32).clip(0, bins - 1).alias("bin")
        )
    )
    table = (
        rows.group_by("fold", "bin")
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("prob_up").mean().alias("mean_predicted"),
            pl.col("up").mean().alias("observed"),
        )
        .with_columns(
            (pl.col("bin") / bins).cast(pl.Float64).alias("lower"),
            ((pl.col("bin") + 1) / bins).cast(pl.Float64).alias("upper"),
        )
        .select(
            pl.col("fold").cast(pl.Int32),
            "bin",
            "lower",
            "upper",
            "count",
            "mean_predicted",
            "observed",
        )
        .sort("fold", "bin")
    )
    brier = (
        rows.group_by("fold")
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            ((pl.col("prob_up") - pl.col("up")) ** 2).mean().alias("brier"),
            pl.col("up").mean().alias("base_rate"),
        )
        .with_columns(pl.col("fold").cast(pl.Int32))
        .sort("fold")
    )
    return table, brier
