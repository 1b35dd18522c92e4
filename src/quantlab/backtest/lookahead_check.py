"""`quantlab backtest lookahead`: the configured sizing rule's lookahead analysis on the latest run.

The rule the risk stage applies (`size_targets` with this config's `risk.*` and `signal.*`) runs
on the latest predictions of the primary model and the gated bars, once on the whole history
and again cut at several points (`quantlab.backtest.lookahead`). A target that changes when
the bars after it are removed is reported with where it happened.
"""

from __future__ import annotations

from functools import partial

import polars as pl

from quantlab.backtest.lookahead import LookaheadReport, lookahead_analysis
from quantlab.context import RunContext
from quantlab.errors import DatasetNotFound
from quantlab.pipeline import STAGES, latest_inputs
from quantlab.portfolio.sizing import size_targets
from quantlab.quality.read import load_bars
from quantlab.vocab import KEY, bars_per_year


def check_sizing(ctx: RunContext, cuts: int = 8) -> LookaheadReport:
    """The lookahead analysis of this config's sizing on the latest predictions and bars."""
    predictions, klines, checks, _labels = latest_inputs(ctx, STAGES["risk"])
    if predictions is None or klines is None or checks is None:
        raise DatasetNotFound("the risk stage is off for this config: there is no sizing to check")
    scores = ctx.catalog.read(predictions).filter(pl.col("model") == ctx.config.train.primary_model)
    bars = load_bars(ctx, klines, checks).select(*KEY, "open", "close").collect()
    rule = partial(
        _sized,
        cfg=ctx.config,
        periods=bars_per_year(ctx.config.universe.interval),
    )
    return lookahead_analysis(rule, scores, bars, "target_weight", cuts=cuts)


def _sized(scores: pl.DataFrame, bars: pl.DataFrame, *, cfg, periods: int) -> pl.DataFrame:
    return size_targets(
        scores, bars, cfg.risk, cfg.signal, periods_per_year=periods, horizon=cfg.labels.horizon
    )
