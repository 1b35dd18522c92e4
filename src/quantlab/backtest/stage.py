"""`run` for the backtest stage: the strategy on out-of-fold predictions, with fees and slippage.

Input datasets: `predictions`, `klines` (a version that passed the gate). Output:
`backtest`, the portfolio's equity curve, with the summary statistics in its
lineage and an HTML report beside it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from quantlab.backtest.engine import run_backtest
from quantlab.backtest.report import render_report
from quantlab.bars import load_bars
from quantlab.catalog import DatasetRef
from quantlab.config import config_hash
from quantlab.context import RunContext
from quantlab.schema import INTERVAL_MS
from quantlab.signals import signals_to_positions, smooth_scores

_YEAR_MS = 365 * 86_400_000
REPORT = "report.html"


def run(
    ctx: RunContext, predictions: DatasetRef, klines: DatasetRef, checks: DatasetRef
) -> DatasetRef:
    """Backtest the out-of-fold scores in `predictions` on the gated `klines`."""
    cfg, signal = ctx.config.backtest, ctx.config.signal
    oof = smooth_scores(ctx.catalog.read(predictions).filter(pl.col("fold") >= 0), signal)
    # Only the out-of-fold span is tested: bars before the first prediction would
    # count as a flat stretch and water down every statistic.
    bars = (
        load_bars(ctx, klines, checks)
        .filter(pl.col("open_time") >= oof["open_time"].min())
        .select("symbol", "open_time", "open", "close")
        .collect()
    )
    result = run_backtest(
        bars,
        signals_to_positions(oof.select("symbol", "open_time", "score"), signal),
        cfg,
        periods_per_year=_YEAR_MS // INTERVAL_MS[ctx.config.universe.interval],
    )
    return ctx.catalog.write(
        "backtest",
        result.equity,
        stage="backtest",
        inputs=[predictions, klines, checks],
        config_hash=config_hash(cfg) + config_hash(signal),
        extra={"stats": result.stats},
        artifacts=lambda ref, folder: (folder / REPORT).write_text(
            render_report(result, title=f"quantlab {ref}")
        ),
    )


def report_path(ctx: RunContext, ref: DatasetRef) -> Path:
    """Where the HTML report of one backtest version lives."""
    return ctx.catalog.artifacts(ref) / REPORT
