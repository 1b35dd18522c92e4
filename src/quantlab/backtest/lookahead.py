"""Lookahead analysis: does a decision at bar t change when the data after t is taken away?

In the spirit of freqtrade's `lookahead-analysis`: the decision rule runs once on the full
history and again on the history cut at several points; a decision at or before a cut that
differs between the two runs could only have come from data after the cut, which a live run
never has. The rule is any function from (scores, bars) to a frame keyed by symbol and
open_time, e.g. the risk stage's sizing (`quantlab.portfolio.sizing.size_targets`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from quantlab.schema import require_columns
from quantlab.vocab import KEY

Rule = Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class LookaheadReport:
    """The cuts tried and every decision that changed when the future was removed."""

    cuts: list[datetime]
    checked: int  # decisions compared, over every cut
    changed: pl.DataFrame  # cut, symbol, open_time, full, truncated

    @property
    def leaks(self) -> bool:
        return self.changed.height > 0

    def describe(self) -> str:
        if not self.leaks:
            return f"no lookahead: {self.checked} decisions at {len(self.cuts)} cuts unchanged"
        first = self.changed.row(0, named=True)
        return (
            f"lookahead: {self.changed.height} of {self.checked} decisions changed when the "
            f"data after their cut was removed; first {first['symbol']} {first['open_time']} "
            f"(cut {first['cut']}): {first['full']} with the future, {first['truncated']} "
            "without. The rule reads data after the bar it decides on; shift that input"
        )


def lookahead_analysis(
    rule: Rule,
    scores: pl.DataFrame,
    bars: pl.DataFrame,
    column: str,
    cuts: Sequence[datetime] | int = 8,
    tolerance: float = 1e-12,
) -> LookaheadReport:
    """Compare `rule(scores, bars)[column]` on the full history with its runs on truncated ones.

    `cuts`: the open_times to cut at (inclusive), or how many to spread evenly over the
    second half of the history (the first half gives warm-ups room). Decisions compare
    within `tolerance`; a null on one side and not the other counts as a change.
    """
    require_columns(scores, KEY, "scores")
    require_columns(bars, KEY, "bars")
    full = rule(scores, bars).select(*KEY, pl.col(column).alias("full"))
    times = bars["open_time"].unique().sort()
    if isinstance(cuts, int):
        half = times.len() // 2
        step = max((times.len() - half) // max(cuts, 1), 1)
        cuts = times.gather(list(range(half, times.len(), step))[:cuts]).to_list()
    changed, checked = [], 0
    for cut in cuts:
        cut_rule = rule(
            scores.filter(pl.col("open_time") <= cut), bars.filter(pl.col("open_time") <= cut)
        ).select(*KEY, pl.col(column).alias("truncated"))
        both = full.filter(pl.col("open_time") <= cut).join(
            cut_rule, on=list(KEY), how="full", coalesce=True
        )
        checked += both.height
        differs = (
            (pl.col("full").is_null() != pl.col("truncated").is_null())
            | ((pl.col("full") - pl.col("truncated")).abs() > tolerance)
        ).fill_null(False)
        changed.append(
            both.filter(differs).select(
                pl.lit(cut).cast(pl.Datetime("ms", "UTC")).alias("cut"),
                *KEY,
                pl.col("full").cast(pl.Float64),
                pl.col("truncated").cast(pl.Float64),
            )
        )
    return LookaheadReport(list(cuts), checked, pl.concat(changed).sort("cut", *KEY))
