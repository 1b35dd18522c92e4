"""Target weights: the one place they are computed, for the backtest over history and the
`risk` stage on the newest bars. Pure, no I/O.

direction (`quantlab.portfolio.signals`, unchanged) -> policy (`policies`: vol_target, kelly,
prob_size) -> take-profit / stop-loss (`exits`) -> caps (`caps`: per symbol, gross, net,
book vol). Every value at t uses predictions and bars up to and including t.
"""

from __future__ import annotations

import math

import polars as pl

from quantlab.config import RiskConfig, SignalConfig
from quantlab.errors import SchemaError
from quantlab.portfolio.signals import directions_from_scores, smooth_scores
from quantlab.portfolio.sizing.calibration import calibration
from quantlab.portfolio.sizing.caps import apply_caps
from quantlab.portfolio.sizing.exits import exit_codes
from quantlab.portfolio.sizing.policies import (
    PROB_COLUMNS,
    payoff_ratio,
    raw_weight,
    require_probabilities,
)
from quantlab.portfolio.sizing.vol import book_vol, ewma_sigma
from quantlab.schema import require_columns
from quantlab.vocab import KEY

__all__ = ["TARGET_COLUMNS", "book_vol", "calibration", "ewma_sigma", "size_targets"]

# What `size_targets` returns, in order (the `targets` dataset's columns).
TARGET_COLUMNS = (
    "symbol",
    "open_time",
    "score",  # the smoothed score the direction came from
    "vol",  # annualised EWMA vol at t
    "direction",  # the signal's -1 / 0 / 1
    "raw_weight",  # the policy's weight before exits and caps
    "exit",  # 0, or 1 / 2 once this run took profit / stopped out (flat until a new run)
    "book_vol",  # annualised sqrt(w' Sigma w) of the capped book at t
    "target_weight",  # decided at the close of open_time, held from the next bar
)


def size_targets(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    cfg: RiskConfig,
    signal: SignalConfig,
    periods_per_year: float,
    *,
    horizon: int = 1,
) -> pl.DataFrame:
    """Target weights of `cfg.policy`, within every cap, one row per prediction.

    `predictions`: symbol, open_time, score (plus prob_up, prob_down, prob_flat for kelly
    and prob_size), one model, one row per symbol and bar. `bars`: symbol, open_time, open,
    close (open only read by take-profit / stop-loss). `horizon`: the bars a prediction looks
    ahead (labels.horizon), over which kelly's payoff ratio b is measured. vol_target's
    n_symbols is the number of symbols in `predictions`: the configured universe, fixed
    before any bar (a symbol listed later still counts from the start).
    """
    require_columns(predictions, ("symbol", "open_time", "score"), "predictions")
    require_columns(bars, ("symbol", "open_time", "open", "close"), "bars")
    if predictions.select(*KEY).is_duplicated().any():
        raise SchemaError(
            "predictions repeat a (symbol, open_time): size one model's predictions at a "
            "time (filter by `model`, e.g. train.primary_model)"
        )
    if bars.select(*KEY).is_duplicated().any():
        raise SchemaError("bars repeat a (symbol, open_time); deduplicate them before sizing")
    if cfg.policy != "vol_target":
        require_probabilities(predictions, cfg.policy)
    lam = cfg.ewma_lambda
    probs = [c for c in PROB_COLUMNS if c in predictions.columns]
    smoothed = smooth_scores(predictions.select(*KEY, "score"), signal)
    directions = directions_from_scores(smoothed, signal).with_columns(
        pl.col("direction").cast(pl.Float64)
    )
    sigma = ewma_sigma(bars, lam, cfg.vol_min_bars)
    frame = (
        smoothed.join(directions, on=list(KEY), how="left")
        .join(predictions.select(*KEY, *probs), on=list(KEY), how="left")
        .with_columns(*(pl.lit(None, pl.Float64).alias(c) for c in PROB_COLUMNS if c not in probs))
        .join(sigma, on=list(KEY), how="left")
        .join(bars.select(*KEY, "open", "close"), on=list(KEY), how="left")
    )
    if cfg.policy == "kelly":
        if cfg.kelly_payoff == "even":
            frame = frame.with_columns(b_long=pl.lit(1.0), b_short=pl.lit(1.0))
        else:
            b = payoff_ratio(bars, horizon, cfg.payoff_window)
            frame = frame.join(b, on=list(KEY), how="left")
    n_symbols = max(predictions["symbol"].n_unique(), 1)
    frame = frame.sort(*KEY).with_columns(
        (pl.col("sigma") * math.sqrt(periods_per_year)).alias("vol"),
        raw_weight(cfg, n_symbols, periods_per_year).alias("raw_weight"),
    )
    frame = frame.with_columns(exit_codes(frame, cfg.take_profit, cfg.stop_loss))
    weights = frame.select(
        *KEY, pl.when(pl.col("exit") > 0).then(0.0).otherwise(pl.col("raw_weight")).alias("weight")
    )
    capped = apply_caps(weights, sigma.select(*KEY, "ret"), cfg, lam, periods_per_year)
    return (
        frame.join(capped, on=list(KEY), how="left")
        .select(
            *KEY,
            *(pl.col(c).cast(pl.Float64) for c in ("score", "vol", "direction", "raw_weight")),
            pl.col("exit").cast(pl.Int8),
            "book_vol",
            "target_weight",
        )
        .sort(*KEY)
    )
