"""`quantlab backtest sweep`: a study of signal/sizing settings on the out-of-fold period, recorded.

Choosing a threshold or a sizing parameter by comparing them on the period the backtest then
reports is selection bias. quantlab allows it only as a study: the sweep's every
configuration is written to `backtest_sweep` (one version per sweep, its inputs in the
lineage), and the backtest of any targets sized from the same `predictions` version counts
all of them, with the training's Optuna trials, in N and V[SR] of its deflated Sharpe
(`study_trials`). Nothing is forgotten by running the sweep again or choosing another row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl

from quantlab.backtest.arrays import prepare_inputs
from quantlab.backtest.grid import combinations, parse_grid
from quantlab.backtest.inputs import load_inputs
from quantlab.backtest.settings import kill_settings
from quantlab.backtest.sweep import SweepResult, run_sweep, size_each
from quantlab.backtest.trials import TrialSet
from quantlab.catalog import DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.pipeline import STAGES, latest_inputs
from quantlab.quality.read import load_bars
from quantlab.vocab import KEY, bars_per_year

DATASET = "backtest_sweep"
SOURCE = "sweep"


def run_study(ctx: RunContext, grid_items: Sequence[str]) -> tuple[DatasetRef, SweepResult]:
    """Sweep `grid_items` (SECTION.KEY=V1,V2) over the latest targets' predictions; write it."""
    grid = parse_grid(grid_items)
    combos = combinations(ctx.config, grid)
    refs = latest_inputs(ctx, STAGES["backtest"])
    targets, predictions, klines, checks = refs[:4]
    data = load_inputs(ctx, *refs)  # type: ignore[arg-type]
    periods = bars_per_year(ctx.config.universe.interval)
    primary = ctx.config.train.primary_model
    preds = ctx.catalog.read(predictions).filter(pl.col("model") == primary)
    history = load_bars(ctx, klines, checks).select(*KEY, "open", "close").collect()
    span = data.targets.select(*KEY)
    sized = size_each(combos, preds, history, periods, span)
    inputs = prepare_inputs(
        data.bars,
        ctx.config.backtest,
        data.rules,
        market=ctx.config.universe.market,
        funding_rates=data.funding,
        mark_klines=data.mark_klines,
        kill=kill_settings(ctx.config.risk),
        allow_short=ctx.config.signal.allow_short,
    )
    result = run_sweep(inputs, sized, [c for c, _ in combos], periods)
    best = result.table.sort("sharpe", descending=True, nulls_last=True).row(0, named=True)
    ref = ctx.catalog.write(
        DATASET,
        result.table,
        stage="backtest",
        inputs=[r for r in refs if r is not None and r != targets],
        # The grid is part of the identity: two sweeps of the same inputs are two studies.
        config_hash=_study_hash(ctx, grid),
        extra={"grid": grid, "configurations": result.table.height, "best": best},
    )
    return ref, result


def _study_hash(ctx: RunContext, grid: dict) -> str:
    import hashlib

    base = slice_hash(ctx.config, ("universe", "backtest", "risk", "signal", "labels.horizon"))
    text = json.dumps({"config": base, "grid": grid}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def study_trials(
    ctx: RunContext, predictions: DatasetRef, periods_per_year: int
) -> tuple[TrialSet, list[DatasetRef]]:
    """Every configuration the training and any sweep of `predictions` tried, as one TrialSet,
    and the `backtest_sweep` versions it counted."""
    from quantlab.backtest.training_trials import trials_from_training
    from quantlab.catalog import TrainingRun

    trials = trials_from_training(
        ctx.catalog.extra(predictions, TrainingRun),
        ctx.config.tracking.uri,
        periods_per_year=periods_per_year,
    )
    counted: list[DatasetRef] = []
    if not ctx.catalog.exists(DATASET):
        return trials, counted
    for info in ctx.catalog.versions(DATASET):
        lineage = info.lineage
        if lineage is None or lineage.inputs.get("predictions") != predictions.version:
            continue
        table = ctx.catalog.read(info.ref)
        trials = trials.extend(SOURCE, table["sharpe_per_period"].to_list())
        counted.append(info.ref)
    return trials, counted


def describe(ref: DatasetRef, result: SweepResult) -> str:
    """What `quantlab backtest sweep` prints: the best rows and what they will cost later."""
    top = result.table.sort("sharpe", descending=True, nulls_last=True).head(5)
    lines = [f"{ref}: {result.table.height} configurations"]
    for row in top.iter_rows(named=True):
        sharpe = "n/a" if row["sharpe"] is None else f"{row['sharpe']:.3f}"
        lines.append(
            f"  sharpe={sharpe} return={row['total_return']:+.2%} fills={row['fills']} "
            f"{json.loads(row['params'])}"
        )
    lines.append(
        "  every configuration above now counts in N of the deflated Sharpe of any backtest of "
        "these predictions; a setting chosen from this table must be judged on a later period"
    )
    return "\n".join(lines)
