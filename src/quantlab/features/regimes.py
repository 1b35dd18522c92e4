"""Market regimes: six states from trend strength and volatility quantiles over past bars only.

The rules run in this order, the first that holds wins:

1. Volatility_Spike: ATR/close is at or above the `spike_pct` quantile of its last `lookback` values.
2. Squeeze: Bollinger width is at or below the `squeeze_pct` quantile of its last `lookback` values.
3. Strong_Trend: ADX >= `strong_adx`.
4. Choppy_High_Vol: ATR/close is at or above its `high_vol_pct` quantile but the trend is not strong.
5. Weak_Trend: ADX >= `weak_adx`.
6. Range: everything else.

The quantiles (linear interpolation, as numpy's default) at bar t are of the
`lookback` values ending at t, so they use no later bar. The code is the
state's index in `REGIMES`.
"""

from __future__ import annotations

import polars as pl

from quantlab.config import RegimeConfig
from quantlab.features._primitives import (
    HELPERS,
    IDX,
    atr_expr,
    cached,
    close,
    collect_deps,
    with_deps,
    with_helpers,
)
from quantlab.features._registry import indicator
from quantlab.features.trend import adx_expr
from quantlab.features.volatility import bollinger_width
from quantlab.vocab import REGIMES

CODE = {name: code for code, name in enumerate(REGIMES)}


def _rolling_q(x: pl.Expr, q: float, lookback: int, first: int) -> pl.Expr:
    """The q quantile of the last `lookback` values, this one included; `x` starts at row `first`.

    The warm-up nulls are filled before and the windows that held them masked after:
    polars' rolling quantile is ten times slower on a column with nulls.
    """
    full = x.fill_null(0.0).rolling_quantile(q, "linear", window_size=lookback)
    return pl.when(IDX.ge(first + lookback - 1)).then(full)


def regime_warmup(
    adx_window: int, atr_window: int, bb_window: int, lookback: int, **_: float
) -> int:
    return max(2 * adx_window - 1, atr_window + lookback - 1, bb_window + lookback - 2)


def regime_expr(
    adx_window: int,
    atr_window: int,
    bb_window: int,
    lookback: int,
    strong_adx: float,
    weak_adx: float,
    high_vol_pct: float,
    spike_pct: float,
    squeeze_pct: float,
) -> pl.Expr:
    """The regime code (Int8) of each bar of one symbol's time-sorted bars; null in warm-up."""
    trend = adx_expr(adx_window)
    vol = cached(f"_natr{atr_window}", atr_expr(atr_window) / close)
    width = bollinger_width(bb_window)
    spike = cached(
        f"_vol_q{spike_pct}_{atr_window}_{lookback}",
        vol >= _rolling_q(vol, spike_pct, lookback, atr_window),
    )
    high_vol = cached(
        f"_vol_q{high_vol_pct}_{atr_window}_{lookback}",
        vol >= _rolling_q(vol, high_vol_pct, lookback, atr_window),
    )
    squeeze = cached(
        f"_bbw_q{squeeze_pct}_{bb_window}_{lookback}",
        width <= _rolling_q(width, squeeze_pct, lookback, bb_window - 1),
    )
    state = (
        pl.when(spike)
        .then(CODE["Volatility_Spike"])
        .when(squeeze)
        .then(CODE["Squeeze"])
        .when(trend >= strong_adx)
        .then(CODE["Strong_Trend"])
        .when(high_vol)
        .then(CODE["Choppy_High_Vol"])
        .when(trend >= weak_adx)
        .then(CODE["Weak_Trend"])
        .otherwise(CODE["Range"])
    )
    known = trend.is_not_null() & spike.is_not_null() & high_vol.is_not_null()
    known = known & squeeze.is_not_null()
    return pl.when(known).then(state).cast(pl.Int8)


@indicator(
    "regime",
    family="regime",
    describe=(
        "regime code 0-5 = " + ", ".join(f"{c} {n}" for n, c in CODE.items()) + "; "
        "ADX{adx_window} vs {weak_adx}/{strong_adx}, ATR{atr_window}/close and BB{bb_window} "
        "width against their quantiles over {lookback} bars"
    ),
    warmup=regime_warmup,
    config_params=lambda cfg: cfg.regime.model_dump(),
)
def regime(**params: float) -> pl.Expr:
    return regime_expr(**params)  # type: ignore[arg-type]


def regime_names(codes: pl.Expr) -> pl.Expr:
    """Codes back to the state names, for reports and notebooks."""
    return codes.replace_strict(list(CODE.values()), list(CODE), default=None)


def with_regime(bars: pl.LazyFrame, rules: RegimeConfig, name: str = "regime") -> pl.LazyFrame:
    """Add the regime code as column `name` to one symbol's time-sorted klines."""
    with collect_deps() as deps:
        expr = regime_expr(**rules.model_dump()).alias(name)
    return with_deps(with_helpers(bars), deps).with_columns(expr).drop(HELPERS, *deps)
