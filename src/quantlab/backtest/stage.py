"""`run` for the backtest stage: the sized targets traded as the venue would trade them.

Input datasets: `targets` (the risk stage's sizing of the out-of-fold predictions), the
`predictions` behind them (for the trials their tuning ran), `klines` and `exchange_info`
(versions that passed the gate) and, on a USD-M universe, `funding_rates`. Outputs, one
version each, with lineage: `backtest` (the book per bar close, its statistics with N, PSR,
DSR and MinTRL in the lineage, the tearsheet beside it), `backtest_fills`,
`backtest_funding` and `backtest_rejections`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from quantlab.backtest.engine import BacktestResult, simulate
from quantlab.backtest.inputs import BacktestInputs, load_inputs
from quantlab.backtest.settings import kill_settings
from quantlab.backtest.stats import summarize
from quantlab.backtest.study import study_trials
from quantlab.backtest.tearsheet import render_tearsheet
from quantlab.backtest.tracked import log_backtest
from quantlab.catalog import DatasetRef
from quantlab.catalog.refs import fingerprint
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.vocab import bars_per_year

# The config this stage reads, its fingerprint: the universe's bars, the costs and venue, the
# kill-switch (risk.kill_*: the engine applies it on the path), the tracking store it logs to.
READS = ("universe", "backtest", "risk", "train.models")
TEARSHEET = "tearsheet.html"
SIDE_DATASETS = ("backtest_fills", "backtest_funding", "backtest_rejections")


def run(
    ctx: RunContext,
    targets: DatasetRef,
    predictions: DatasetRef,
    klines: DatasetRef,
    checks: DatasetRef,
    exchange_info: DatasetRef,
    exchange_info_checks: DatasetRef,
    funding: DatasetRef | None = None,
    funding_checks: DatasetRef | None = None,
) -> DatasetRef:
    """Backtest `targets` on the gated bars, filters and funding; write the four datasets."""
    data = load_inputs(
        ctx,
        targets,
        predictions,
        klines,
        checks,
        exchange_info,
        exchange_info_checks,
        funding,
        funding_checks,
    )
    periods = bars_per_year(ctx.config.universe.interval)
    # N counts the training's trials and every sweep of these predictions: a sweep run since
    # the last backtest is a new input, so the backtest is judged again with it.
    trials, sweeps = study_trials(ctx, predictions, periods)
    inputs = [*data.refs, *sweeps]
    config_hash = slice_hash(ctx.config, READS)
    if (
        done := ctx.catalog.find("backtest", fingerprint("backtest", inputs, config_hash))
    ) is not None:
        return done
    result = backtest(ctx, data, periods)
    stats = summarize(result, periods_per_year=periods, benchmark=data.bars, trials=trials)
    write = {"stage": "backtest", "inputs": inputs, "config_hash": config_hash}
    written = {
        "backtest_fills": ctx.catalog.write("backtest_fills", result.fills, **write),
        "backtest_funding": ctx.catalog.write("backtest_funding", result.funding, **write),
        "backtest_rejections": ctx.catalog.write("backtest_rejections", result.rejections, **write),
    }
    html = render_tearsheet(
        result, stats, title=f"quantlab backtest of {targets}", benchmark=data.bars, trials=trials
    )
    ref = ctx.catalog.write(
        "backtest",
        result.equity,
        stage="backtest",
        inputs=inputs,
        config_hash=config_hash,
        extra={
            "stats": stats,
            "kills": result.kills.to_dicts(),
            "rejections": _counts(result.rejections),
            "trials": {name: c["scored"] + c["unscored"] for name, c in trials.counts().items()},
            # Written with it, same inputs and fingerprint: the fills, funding and rejections.
            "outputs": {name: ref.version for name, ref in written.items()},
        },
        artifacts=lambda _ref, folder: (folder / TEARSHEET).write_text(html),
    )
    log_backtest(ctx, ref, stats, tearsheet_path(ctx, ref), predictions)
    return ref


def backtest(ctx: RunContext, data: BacktestInputs, periods_per_year: int) -> BacktestResult:
    """The engine on the loaded inputs under this config: what `run` records, and nothing else."""
    return simulate(
        data.bars,
        data.targets,
        ctx.config.backtest,
        data.rules,
        market=ctx.config.universe.market,
        periods_per_year=periods_per_year,
        funding_rates=data.funding,
        mark_klines=data.mark_klines,
        kill=kill_settings(ctx.config.risk),
        allow_short=ctx.config.signal.allow_short,
    )


def _counts(rejections: pl.DataFrame) -> dict[str, int]:
    if rejections.height == 0:
        return {}
    counts = rejections.group_by("reason").len().sort("reason")
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def tearsheet_path(ctx: RunContext, ref: DatasetRef) -> Path:
    """Where the tearsheet of one backtest version lives."""
    return ctx.catalog.artifacts(ref) / TEARSHEET
