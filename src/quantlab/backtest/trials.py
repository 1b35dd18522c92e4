"""Every configuration tried before a backtest is reported: the N and V[SR] of its deflated Sharpe.

A `TrialSet` holds the per-period Sharpe of each configuration tried and where it came from:
`optuna` (the training's tuning trials, each scored by its signal's Sharpe on its validation
slice), `signal_grid`, `sizing_grid` or `sweep` (grids evaluated on the reported period as a
study). A trial that ran but has no Sharpe (pruned, failed, or a flat book) still counts in N,
since it was tried, but gives nothing to the variance V[SR] of the trials' Sharpes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

# The sources a trial can come from (extend() accepts others, named by the caller).
TRIAL_SOURCES = ("optuna", "signal_grid", "sizing_grid", "sweep")
SHARPE_COLUMN = "valid_sharpe"  # train.search.TRIAL_COLUMNS: annualised, per trial


@dataclass(frozen=True)
class TrialSet:
    """The configurations tried: per-period Sharpe ratios by source, and those without one.

    `sharpes` are PER PERIOD (annualised / √periods_per_year); `sources[i]` names where
    `sharpes[i]` came from; `unscored` counts, by source, trials that ran without a Sharpe.
    """

    sharpes: tuple[float, ...] = ()
    sources: tuple[str, ...] = ()
    unscored: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.sharpes) != len(self.sources):
            raise ValueError(f"{len(self.sharpes)} Sharpe ratios for {len(self.sources)} sources")

    def extend(
        self,
        name: str,
        sharpes: Iterable[float | None],
        *,
        periods_per_year: int | None = None,
    ) -> TrialSet:
        """A new TrialSet with the trials of `name` added (a grid's or sweep's configurations).

        `sharpes` are per period, or annualised when `periods_per_year` is given (then divided
        by its square root). None or non-finite values count in N as unscored trials.
        """
        if not name:
            raise ValueError(f"name a trial source, e.g. one of {TRIAL_SOURCES}")
        scale = 1.0 if periods_per_year is None else 1.0 / math.sqrt(periods_per_year)
        scored, missing = [], 0
        for value in sharpes:
            if value is None or not math.isfinite(float(value)):
                missing += 1
            else:
                scored.append(float(value) * scale)
        unscored = Counter(self.unscored)
        if missing:
            unscored[name] += missing
        return TrialSet(
            sharpes=self.sharpes + tuple(scored),
            sources=self.sources + (name,) * len(scored),
            unscored=dict(unscored),
        )

    @property
    def n_trials(self) -> int:
        """N: every configuration tried, with or without a Sharpe."""
        return len(self.sharpes) + sum(self.unscored.values())

    @property
    def n_scored(self) -> int:
        return len(self.sharpes)

    @property
    def sharpe_var(self) -> float | None:
        """V[SR]: the sample variance (ddof 1) of the scored trials' per-period Sharpe ratios;
        None with fewer than two."""
        if len(self.sharpes) < 2:
            return None
        return float(np.var(np.asarray(self.sharpes), ddof=1))

    def counts(self) -> dict[str, dict[str, int]]:
        """Per source: how many trials were scored and how many ran without a Sharpe."""
        scored = Counter(self.sources)
        names = list(dict.fromkeys([*self.sources, *self.unscored]))
        return {n: {"scored": scored[n], "unscored": self.unscored.get(n, 0)} for n in names}

    def describe(self) -> str:
        """One line: N, by source, and what the unscored trials count for."""
        parts = [
            f"{n}: {c['scored']} scored"
            + (f" + {c['unscored']} without a Sharpe" if c["unscored"] else "")
            for n, c in self.counts().items()
        ]
        line = f"N = {self.n_trials} configurations tried" + (
            f" ({'; '.join(parts)})" if parts else ""
        )
        if sum(self.unscored.values()):
            line += "; trials without a Sharpe (pruned, failed, flat) count in N but not in V[SR]"
        return line


def trials_from_frame(trials: pl.DataFrame, periods_per_year: int) -> TrialSet:
    """The Optuna trials of a training run's `trials.csv` (train.search.TRIAL_COLUMNS).

    `valid_sharpe` is the annualised Sharpe of each trial's signal on its validation slice;
    a PRUNED or FAIL trial, or one whose book stayed flat, has none and counts as unscored.
    A table without the column (runs before it was recorded) counts every trial as unscored.
    """
    if trials.height and "state" in trials.columns:
        trials = trials.filter(pl.col("state") != "RUNNING")  # not a trial yet
    if SHARPE_COLUMN in trials.columns:
        values = trials[SHARPE_COLUMN].cast(pl.Float64).to_list()
    else:
        values = [None] * trials.height
    return TrialSet().extend("optuna", values, periods_per_year=periods_per_year)
