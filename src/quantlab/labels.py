"""Stage `labels`: forward returns over a configured horizon.

Input dataset: `klines` (a version that passed the gate). Output: `labels`, keyed by
`symbol, open_time`, with `label_time`, the close time of the bar at which the
label is resolved, so training can purge samples whose label overlaps a test fold.
"""

from __future__ import annotations

import polars as pl

from quantlab.bars import load_bars
from quantlab.catalog import DatasetRef
from quantlab.config import LabelsConfig, config_hash
from quantlab.context import RunContext

KEY = ("symbol", "open_time")


def build_labels(
    bars: pl.DataFrame | pl.LazyFrame, config: LabelsConfig | None = None
) -> pl.DataFrame:
    """Forward log return from bar t's close to bar t+h's close, per symbol; null where unknown.

    Rows are shifted within a symbol, so a missing candle (as in an exchange
    halt) makes that label span one real hour more; `label_time` says exactly when.
    """
    cfg = config or LabelsConfig()
    h = cfg.horizon
    close = pl.col("close")
    fwd = (close.shift(-h) / close).log()
    return (
        bars.lazy()
        .sort(*KEY)
        .select(
            *KEY,
            fwd.over("symbol", order_by="open_time").alias(f"fwd_ret_{h}"),
            pl.col("close_time").shift(-h).over("symbol", order_by="open_time").alias("label_time"),
        )
        .with_columns(
            pl.when(pl.col(f"fwd_ret_{h}").is_not_null())
            .then((pl.col(f"fwd_ret_{h}") > 0).cast(pl.Int8))
            .alias("label_up")
        )
        .sort(*KEY)
        .collect()
    )


def target_column(cfg: LabelsConfig) -> str:
    return f"fwd_ret_{cfg.horizon}"


def run(ctx: RunContext, klines: DatasetRef, checks: DatasetRef) -> DatasetRef:
    """Compute `labels` from a `klines` version that passed the gate in `checks`."""
    cfg = ctx.config.labels
    bars = load_bars(ctx, klines, checks)
    return ctx.catalog.write(
        "labels",
        build_labels(bars, cfg),
        stage="labels",
        inputs=[klines, checks],
        config_hash=config_hash(cfg),
    )
