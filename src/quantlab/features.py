"""Stage `features`: technical indicators per symbol, free of lookahead.

Input datasets: `klines` (at the version `klines_checks` passed). Output: `features`,
keyed by `symbol, open_time`. A value at `open_time` t uses only bars up to and
including t, i.e. what is known at that bar's close; warm-up rows are null.
"""

from __future__ import annotations

import polars as pl

from quantlab.bars import load_bars
from quantlab.catalog import DatasetRef
from quantlab.config import FeaturesConfig, config_hash
from quantlab.context import RunContext

KEY = ("symbol", "open_time")


def _wilder(expr: pl.Expr, n: int) -> pl.Expr:
    """Wilder's smoothing (an EMA with alpha 1/n), null until n values were seen."""
    return expr.ewm_mean(alpha=1.0 / n, adjust=False, min_samples=n)


def feature_exprs(cfg: FeaturesConfig) -> list[pl.Expr]:
    """One expression per feature; each is evaluated per symbol over time-sorted bars."""
    close, high, low = pl.col("close"), pl.col("high"), pl.col("low")
    log_ret = (close / close.shift(1)).log()
    exprs = [(close / close.shift(w)).log().alias(f"ret_{w}") for w in cfg.return_windows]
    exprs += [log_ret.rolling_std(w, min_samples=w).alias(f"vol_{w}") for w in cfg.vol_windows]
    delta = close.diff()
    gain = _wilder(delta.clip(lower_bound=0), cfg.rsi_window)
    loss = _wilder((-delta).clip(lower_bound=0), cfg.rsi_window)
    exprs.append((100 - 100 / (1 + gain / loss)).alias(f"rsi_{cfg.rsi_window}"))
    ema_fast = close.ewm_mean(span=cfg.ema_fast, adjust=False, min_samples=cfg.ema_slow)
    ema_slow = close.ewm_mean(span=cfg.ema_slow, adjust=False, min_samples=cfg.ema_slow)
    exprs.append(((ema_fast - ema_slow) / close).alias("macd_norm"))
    w = cfg.bollinger_window
    exprs.append(
        (
            (close - close.rolling_mean(w, min_samples=w)) / close.rolling_std(w, min_samples=w)
        ).alias(f"bb_z_{w}")
    )
    prev_close = close.shift(1)
    true_range = pl.max_horizontal(high - low, (high - prev_close).abs(), (low - prev_close).abs())
    # The first bar has no previous close, so its true range is undefined, not high - low.
    true_range = pl.when(prev_close.is_null()).then(None).otherwise(true_range)
    exprs.append((_wilder(true_range, cfg.atr_window) / close).alias(f"atr_{cfg.atr_window}"))
    v = cfg.volume_window
    log_vol = (pl.col("volume") + 1.0).log()
    exprs.append(
        (
            (log_vol - log_vol.rolling_mean(v, min_samples=v))
            / log_vol.rolling_std(v, min_samples=v)
        ).alias(f"volume_z_{v}")
    )
    exprs.append(((high - low) / close).alias("range_hl"))
    span = high - low
    exprs.append(pl.when(span > 0).then((close - low) / span).alias("close_pos"))
    exprs.append(
        pl.when(pl.col("volume") > 0)
        .then(pl.col("taker_buy_base_volume") / pl.col("volume"))
        .alias("taker_buy_ratio")
    )
    return exprs


def feature_names(cfg: FeaturesConfig) -> list[str]:
    return [e.meta.output_name() for e in feature_exprs(cfg)]


def build_features(
    bars: pl.DataFrame | pl.LazyFrame, config: FeaturesConfig | None = None
) -> pl.DataFrame:
    """Indicators for every bar of every symbol in `bars` (klines schema), keyed by symbol, open_time."""
    cfg = config or FeaturesConfig()
    lf = bars.lazy().sort(*KEY)
    return (
        lf.select(*KEY, *[e.over("symbol", order_by="open_time") for e in feature_exprs(cfg)])
        .sort(*KEY)
        .collect()
    )


def run(ctx: RunContext, klines: DatasetRef, checks: DatasetRef) -> DatasetRef:
    """Compute `features` from a `klines` version that passed the gate in `checks`."""
    cfg = ctx.config.features
    bars = load_bars(ctx, klines, checks)
    return ctx.catalog.write(
        "features",
        build_features(bars, cfg),
        stage="features",
        inputs=[klines, checks],
        config_hash=config_hash(cfg),
    )
