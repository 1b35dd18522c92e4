"""`run` for the risk stage: target weights sized by `portfolio.sizing`, behind the kill-switch.

Input datasets: `predictions`, `klines` (a version that passed the gate), `backtest`.
Output: `targets`, keyed by `symbol, open_time`: the portfolio weight to hold
from the next bar on. If the strategy's backtest drawdown is beyond
`risk.kill_drawdown`, every target is flat and the lineage says why.
"""

from __future__ import annotations

import polars as pl

from quantlab.catalog import BacktestRun, DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.portfolio.sizing import size_targets
from quantlab.quality.read import load_bars
from quantlab.risk.limits import check_kill_switch
from quantlab.vocab import KEY, bars_per_year

# The config this stage reads, its fingerprint: the universe's bars, the sizing, the signal rule.
READS = ("universe", "risk", "signal", "train.models")  # the first listed kind is traded


def run(
    ctx: RunContext,
    predictions: DatasetRef,
    klines: DatasetRef,
    checks: DatasetRef,
    backtest: DatasetRef,
) -> DatasetRef:
    """Size `targets` from `predictions`, applying the kill-switch from the `backtest` result."""
    cfg = ctx.config.risk
    kill = check_kill_switch(ctx.catalog.extra(backtest, BacktestRun).stats.max_drawdown, cfg)
    periods = bars_per_year(ctx.config.universe.interval)
    targets = size_targets(
        ctx.catalog.read(predictions).filter(pl.col("model") == ctx.config.train.primary_model),
        load_bars(ctx, klines, checks).select(*KEY, "close").collect(),
        cfg,
        ctx.config.signal,
        periods_per_year=periods,
        killed=kill.killed,
    )
    return ctx.catalog.write(
        "targets",
        targets,
        stage="risk",
        inputs=[predictions, klines, checks, backtest],
        config_hash=slice_hash(ctx.config, READS),
        extra={"killed": kill.killed, "kill_reason": kill.reason},
    )
