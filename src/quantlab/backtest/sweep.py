"""A vectorised sweep: many signal/sizing configurations of the same predictions in one engine call.

Each combination of the grid is sized by the one sizing function (`size_targets`, what the
risk stage runs) and all of them go through the engine's numba core together
(`engine_nb.sweep`, the same per-bar code as a single backtest, with the same costs, filters,
funding and kill-switch). The result is a table, one row per configuration, that
`quantlab backtest sweep` writes as the `backtest_sweep` dataset: a study. Every
configuration in it counts as a trial in the deflated Sharpe of every later backtest of the
same predictions, so choosing the best row and backtesting it cannot hide the search.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from quantlab.backtest.arrays import EngineInputs, target_grid
from quantlab.config import Config
from quantlab.metrics import drawdown, sharpe_moments
from quantlab.portfolio import engine_nb as nb
from quantlab.portfolio.sizing import size_targets
from quantlab.vocab import KEY

SWEEP_SCHEMA = {
    "config_id": pl.Int32(),
    "params": pl.String(),  # the grid values of this configuration, as JSON
    "sharpe": pl.Float64(),  # annualised
    "sharpe_per_period": pl.Float64(),
    "total_return": pl.Float64(),
    "max_drawdown": pl.Float64(),
    "fills": pl.Int64(),
    "rejections": pl.Int64(),
    "kills": pl.Int64(),
}


@dataclass(frozen=True)
class SweepResult:
    """One row per configuration (`table`), and each one's equity curve [K, T] on `times`."""

    table: pl.DataFrame
    equity: np.ndarray
    times: pl.Series


def size_each(
    combos: Sequence[tuple[dict[str, Any], Config]],
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    periods_per_year: int,
    span: pl.DataFrame,
) -> list[pl.DataFrame]:
    """The targets of every configuration, kept to the `span` rows (the out-of-fold keys)."""
    return [
        size_targets(
            predictions,
            bars,
            config.risk,
            config.signal,
            periods_per_year=periods_per_year,
            horizon=config.labels.horizon,
        )
        .join(span, on=list(KEY), how="semi")
        .select(*KEY, "target_weight")
        for _, config in combos
    ]


def run_sweep(
    inputs: EngineInputs,
    targets: Sequence[pl.DataFrame],
    params: Sequence[dict[str, Any]],
    periods_per_year: int,
) -> SweepResult:
    """Every configuration's targets through the engine core at once; its table of results."""
    stacked = np.ascontiguousarray(np.stack([target_grid(t, inputs) for t in targets]))
    equity, counts = nb.sweep(
        inputs.open, inputs.close_ff, inputs.has_bar, stacked, inputs.prev_qv, inputs.sigma,
        inputs.day_id, inputs.sym, inputs.par, inputs.ev,
    )  # fmt: skip
    rows = []
    for k, (chosen, curve) in enumerate(zip(params, equity, strict=True)):
        rows.append(_row(k, chosen, curve, counts[k], inputs.init_cash, periods_per_year))
    return SweepResult(pl.DataFrame(rows, schema=SWEEP_SCHEMA), equity, inputs.times)


def _row(
    k: int,
    chosen: dict[str, Any],
    curve: np.ndarray,
    counts: np.ndarray,
    init_cash: float,
    periods_per_year: int,
) -> dict[str, Any]:
    returns = np.diff(np.concatenate(([init_cash], curve))) / np.concatenate(
        ([init_cash], curve[:-1])
    )
    m = sharpe_moments(returns)
    per_period = None if m is None else float(m.sharpe)
    return {
        "config_id": k,
        "params": json.dumps(chosen, sort_keys=True),
        "sharpe": None if per_period is None else per_period * float(np.sqrt(periods_per_year)),
        "sharpe_per_period": per_period,
        "total_return": float(curve[-1] / init_cash - 1.0),
        "max_drawdown": float(drawdown(curve).min()),
        "fills": int(counts[nb.C_FILLS]),
        "rejections": int(counts[nb.C_REJ]),
        "kills": int(counts[nb.C_KILLS]),
    }
