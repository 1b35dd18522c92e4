"""`run` for the risk stage: target weights sized by `portfolio.sizing`, behind the kill-switch.

Input datasets: `predictions`, `klines` (a version that passed the gate), `backtest`.
Output: `targets`, keyed by `symbol, open_time`: the portfolio weight to hold
from the next bar on. If the strategy's backtest drawdown is beyond
`risk.kill_drawdown`, every target is flat and the lineage says why.
"""

from __future__ import annotations

from quantlab.catalog import DatasetRef
from quantlab.config import config_hash
from quantlab.context import RunContext
from quantlab.portfolio.sizing import KEY, size_targets
from quantlab.quality.read import load_bars
from quantlab.risk.limits import check_kill_switch
from quantlab.schema import INTERVAL_MS

_YEAR_MS = 365 * 86_400_000


def run(
    ctx: RunContext,
    predictions: DatasetRef,
    klines: DatasetRef,
    checks: DatasetRef,
    backtest: DatasetRef,
) -> DatasetRef:
    """Size `targets` from `predictions`, applying the kill-switch from the `backtest` result."""
    cfg = ctx.config.risk
    kill = check_kill_switch(ctx.catalog.lineage(backtest).extra.get("stats", {}), cfg)
    periods = _YEAR_MS / INTERVAL_MS[ctx.config.universe.interval]
    targets = size_targets(
        ctx.catalog.read(predictions),
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
        config_hash=config_hash(cfg) + config_hash(ctx.config.signal),
        extra={"killed": kill.killed, "kill_reason": kill.reason},
    )
