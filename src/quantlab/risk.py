"""Stage `risk`: volatility-targeted position sizes with caps and a drawdown kill-switch.

Input datasets: `predictions`, `klines` (a version that passed the gate), `backtest`.
Output: `targets`, keyed by `symbol, open_time`: the portfolio weight to hold
from the next bar on. If the strategy's backtest drawdown is beyond
`risk.kill_drawdown`, every target is flat and the lineage says why.
"""

from __future__ import annotations

import math

import polars as pl

from quantlab.bars import load_bars
from quantlab.catalog import BacktestRun, DatasetRef
from quantlab.config import RiskConfig, SignalConfig, config_hash
from quantlab.context import RunContext
from quantlab.schema import INTERVAL_MS
from quantlab.signals import signals_to_positions, smooth_scores

KEY = ("symbol", "open_time")
_YEAR_MS = 365 * 86_400_000


def size_positions(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    cfg: RiskConfig,
    signal: SignalConfig,
    periods_per_year: float,
    killed: bool = False,
) -> pl.DataFrame:
    """Target weights: direction from the smoothed score, size from target vol / realised vol, then caps.

    `predictions` has symbol, open_time, score in [-1, 1]; `bars` has symbol,
    open_time, close. The direction rule is the backtest's (`quantlab.signals`);
    realised vol uses closes up to and including t only.
    """
    n_symbols = max(predictions["symbol"].n_unique(), 1)
    log_ret = (pl.col("close") / pl.col("close").shift(1)).log()
    vol = (
        bars.lazy()
        .sort(*KEY)
        .select(
            *KEY,
            (
                log_ret.rolling_std(cfg.vol_window, min_samples=cfg.vol_window).over(
                    "symbol", order_by="open_time"
                )
                * math.sqrt(periods_per_year)
            ).alias("vol"),
        )
    )
    smoothed = smooth_scores(predictions.select(*KEY, "score"), signal)
    directions = signals_to_positions(smoothed, signal).select(
        *KEY, pl.col("position").cast(pl.Float64).alias("direction")
    )
    raw = pl.col("direction") * cfg.target_vol / pl.col("vol") / n_symbols
    capped = raw.clip(-cfg.max_weight, cfg.max_weight).fill_null(0.0).fill_nan(0.0)
    sized = (
        smoothed.lazy()
        .join(directions.lazy(), on=list(KEY), how="left")
        .join(vol, on=list(KEY), how="left")
        .with_columns(capped.alias("weight"))
        .with_columns(pl.col("weight").abs().sum().over("open_time").alias("gross"))
        .with_columns(
            pl.when(pl.col("gross") > cfg.max_gross)
            .then(pl.col("weight") * cfg.max_gross / pl.col("gross"))
            .otherwise(pl.col("weight"))
            .alias("target_weight")
        )
    )
    if killed:
        sized = sized.with_columns(pl.lit(0.0).alias("target_weight"))
    return sized.select(*KEY, "score", "vol", "direction", "target_weight").sort(*KEY).collect()


def run(
    ctx: RunContext,
    predictions: DatasetRef,
    klines: DatasetRef,
    checks: DatasetRef,
    backtest: DatasetRef,
) -> DatasetRef:
    """Size `targets` from `predictions`, applying the kill-switch from the `backtest` result."""
    cfg = ctx.config.risk
    stats = ctx.catalog.extra(backtest, BacktestRun).stats
    drawdown = abs(stats.max_drawdown or 0.0)
    killed = drawdown >= cfg.kill_drawdown
    periods = _YEAR_MS / INTERVAL_MS[ctx.config.universe.interval]
    targets = size_positions(
        ctx.catalog.read(predictions),
        load_bars(ctx, klines, checks).select(*KEY, "close").collect(),
        cfg,
        ctx.config.signal,
        periods_per_year=periods,
        killed=killed,
    )
    return ctx.catalog.write(
        "targets",
        targets,
        stage="risk",
        inputs=[predictions, klines, checks, backtest],
        config_hash=config_hash(cfg) + config_hash(ctx.config.signal),
        extra={
            "killed": killed,
            "kill_reason": f"backtest max drawdown {drawdown:.1%} >= {cfg.kill_drawdown:.0%}"
            if killed
            else "",
        },
    )
