"""`run` for the backtest stage: the strategy on out-of-fold predictions, with fees and slippage.

Input datasets: `predictions`, `klines` (a version that passed the gate). Output:
`backtest`, the portfolio's equity curve, with the summary statistics in its
lineage and an HTML report beside it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from quantlab.backtest.engine import simulate
from quantlab.backtest.html import render_report
from quantlab.catalog import DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.portfolio.signals import directions_from_scores, smooth_scores
from quantlab.quality.read import load_bars
from quantlab.vocab import bars_per_year

# The config this stage reads, its fingerprint: the universe's bars, the costs, the signal rule.
READS = ("universe", "backtest", "signal", "train.models")  # the first listed kind is traded
REPORT = "report.html"


def run(
    ctx: RunContext, predictions: DatasetRef, klines: DatasetRef, checks: DatasetRef
) -> DatasetRef:
    """Backtest the out-of-fold scores in `predictions` on the gated `klines`."""
    cfg, signal = ctx.config.backtest, ctx.config.signal
    scores = ctx.catalog.read(predictions).filter(
        (pl.col("model") == ctx.config.train.primary_model) & (pl.col("fold") >= 0)
    )
    oof = smooth_scores(scores, signal)
    # Only the out-of-fold span is tested: bars before the first prediction would
    # count as a flat stretch and water down every statistic.
    bars = (
        load_bars(ctx, klines, checks)
        .filter(pl.col("open_time") >= oof["open_time"].min())
        .select("symbol", "open_time", "open", "close")
        .collect()
    )
    result = simulate(
        bars,
        directions_from_scores(oof.select("symbol", "open_time", "score"), signal),
        cfg,
        periods_per_year=bars_per_year(ctx.config.universe.interval),
    )
    return ctx.catalog.write(
        "backtest",
        result.equity,
        stage="backtest",
        inputs=[predictions, klines, checks],
        config_hash=slice_hash(ctx.config, READS),
        extra={"stats": result.stats},
        artifacts=lambda ref, folder: (folder / REPORT).write_text(
            render_report(result, title=f"quantlab {ref}")
        ),
    )


def report_path(ctx: RunContext, ref: DatasetRef) -> Path:
    """Where the HTML report of one backtest version lives."""
    return ctx.catalog.artifacts(ref) / REPORT
