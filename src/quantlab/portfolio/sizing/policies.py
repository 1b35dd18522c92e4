"""The sizing policies: a raw signed weight per bar from direction, vol and probabilities.

- vol_target: direction x target_vol / (EWMA sigma annualised) / n_symbols;
- kelly: direction x kelly_fraction x (p - (1 - p) / b), clipped to [0, max_weight], p the
  model's probability of the side taken, b the payoff ratio (past bars only, or 1);
- prob_size: López de Prado (AFML ch. 10): z = (p - 1/K) / sqrt(p (1 - p)),
  size = 2 Phi(z) - 1 in [0, 1), times max_weight, in the signal's direction.
"""

from __future__ import annotations

import math

import polars as pl
from scipy.special import ndtr

from quantlab.config import RiskConfig
from quantlab.errors import ConfigError
from quantlab.vocab import KEY

PROB_COLUMNS = ("prob_up", "prob_down", "prob_flat")


def side_probability() -> pl.Expr:
    """P(the side the direction takes): prob_up for a long, prob_down (or 1 - prob_up when
    the model is binary) for a short; null when flat or when the model gave no probability."""
    down = pl.coalesce(pl.col("prob_down"), 1.0 - pl.col("prob_up"))
    return (
        pl.when(pl.col("direction") > 0)
        .then(pl.col("prob_up"))
        .when(pl.col("direction") < 0)
        .then(down)
    )


def n_classes() -> pl.Expr:
    """K of the model behind a row: 3 when it gave P(flat), else 2."""
    return pl.when(pl.col("prob_flat").is_not_null()).then(3.0).otherwise(2.0)


def require_probabilities(predictions: pl.DataFrame, policy: str) -> None:
    """Kelly and prob_size need class probabilities; a regression model has none."""
    missing = [c for c in ("prob_up",) if c not in predictions.columns]
    if missing or predictions["prob_up"].null_count() == predictions.height:
        raise ConfigError(
            f"risk.policy {policy} sizes from class probabilities, and these predictions have "
            "no prob_up (a regression model?); train a classifier (train.target binary, "
            "direction or triple_barrier) or set risk.policy: vol_target"
        )


def payoff_ratio(bars: pl.DataFrame, horizon: int, window: int) -> pl.DataFrame:
    """`symbol, open_time, b_long, b_short`: average win over average loss of the asset's
    past `horizon`-bar simple returns (the last `window` of them, all resolved by t).

    A long wins when the price rose: b_long = mean gain / mean loss; a short is the mirror.
    Null until both a win and a loss have been seen.
    """
    ret = (pl.col("close") / pl.col("close").shift(horizon) - 1.0).over(
        "symbol", order_by="open_time"
    )
    up = pl.when(pl.col("r") > 0).then(pl.col("r")).otherwise(0.0)
    down = pl.when(pl.col("r") < 0).then(-pl.col("r")).otherwise(0.0)

    def roll(e: pl.Expr) -> pl.Expr:
        return e.rolling_sum(window, min_samples=1).over("symbol", order_by="open_time")

    n_up = roll((pl.col("r") > 0).cast(pl.Float64))
    n_down = roll((pl.col("r") < 0).cast(pl.Float64))
    mean_up = roll(up) / n_up
    mean_down = roll(down) / n_down
    ok = (n_up > 0) & (n_down > 0)
    return (
        bars.lazy()
        .select(*KEY, "close")
        .sort(*KEY)
        .with_columns(ret.alias("r"))
        .with_columns(
            pl.when(ok).then(mean_up / mean_down).alias("b_long"),
            pl.when(ok).then(mean_down / mean_up).alias("b_short"),
        )
        .select(*KEY, "b_long", "b_short")
        .collect()
    )


def _phi(z: pl.Expr) -> pl.Expr:
    """The standard normal CDF (polars has none: scipy's ndtr over the column)."""
    return z.map_batches(lambda s: pl.Series(s.name, ndtr(s.to_numpy())), return_dtype=pl.Float64)


def raw_weight(cfg: RiskConfig, n_symbols: int, periods_per_year: float) -> pl.Expr:
    """The policy's signed weight before caps, on a frame with direction, sigma (per bar),
    the probabilities and (kelly) b_long, b_short. Null or NaN inputs size to 0."""
    direction = pl.col("direction")
    if cfg.policy == "vol_target":
        vol = pl.col("sigma") * math.sqrt(periods_per_year)
        weight = direction * cfg.target_vol / vol / n_symbols
    elif cfg.policy == "kelly":
        p = side_probability()
        b = pl.when(direction > 0).then(pl.col("b_long")).otherwise(pl.col("b_short"))
        f = (cfg.kelly_fraction * (p - (1.0 - p) / b)).clip(0.0, cfg.max_weight)
        weight = pl.when(direction != 0).then(direction * f).otherwise(0.0)
    else:
        p = side_probability().clip(1e-12, 1.0 - 1e-12)
        z = (p - 1.0 / n_classes()) / (p * (1.0 - p)).sqrt()
        size = (2.0 * _phi(z.fill_null(0.0)) - 1.0).clip(0.0, 1.0)
        weight = pl.when((direction != 0) & p.is_not_null()).then(direction * size * cfg.max_weight)
    return weight.fill_nan(None).fill_null(0.0)
