"""Data-quality checks on a `funding_rates` frame (USD-M perpetual funding), run through GX.

A pure core like `quality.klines`: a frame in the funding-rates schema goes in, a
`CheckReport` comes out. Binance settles funding every 8 hours at 00:00, 08:00
and 16:00 UTC; `fundingTime` carries a few ms of jitter, and some contracts switch to
a 4h or 1h interval in volatile markets, so a spacing off 8h is a warning, not an error.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from quantlab.config import ValidateConfig
from quantlab.errors import ConfigError
from quantlab.quality._gx import (
    HELPER,
    Check,
    Runner,
    between_check,
    check_dtypes,
    columns_check,
    expectation,
    not_null_check,
    run_checks,
    true_check,
    unique_key_check,
    year_bounds_ms,
)
from quantlab.quality.checks import CheckReport
from quantlab.schema import FUNDING_RATES_KEY, FUNDING_RATES_SCHEMA

FUNDING_INTERVAL_MS = 8 * 3_600_000
FUNDING_JITTER_MS = 60_000  # real fundingTime values sit up to a few tens of ms off the hour
RATE_WARN = 0.0075  # |rate| above this per interval is extreme (Binance's default cap is 0.75%)
RATE_MAX = 0.05  # above this no Binance contract settles: the value is wrong
MARKETS = ("futures_um",)
SERIES_KEY = ("symbol",)  # a mislabelled market fails market_is_futures, not the spacing
_TIMES = ("funding_time", f"{HELPER}prev_funding_time", f"{HELPER}expected_after")
_REQUIRED = ("market", "symbol", "funding_time", "funding_rate")


def check_funding_rates(
    df: pl.DataFrame,
    cfg: ValidateConfig | None = None,
    *,
    as_of: datetime | None = None,
    row_order: bool = True,
    screen: bool = True,
    runner: Runner | None = None,
) -> CheckReport:
    """Run every funding-rate check on `df` (one or many symbols) and report the result.

    With `as_of` (tz-aware), a symbol whose last funding is more than
    `cfg.max_stale_bars` intervals older than expected at `as_of` is stale (warning).
    `row_order=False`: the order of the rows means nothing (a catalog version), so
    `funding_time_increasing` is not checked.
    """
    cfg = cfg or ValidateConfig()
    if as_of is not None and as_of.tzinfo is None:
        raise ConfigError(f"as_of {as_of} has no time zone; pass an aware UTC datetime")
    check_dtypes(
        df,
        FUNDING_RATES_SCHEMA,
        "funding_rates",
        "build the frame with quantlab.exchange.funding.parse_funding_rates",
    )
    if not all(c in df.columns for c in FUNDING_RATES_SCHEMA):
        schema_only = [columns_check(list(FUNDING_RATES_SCHEMA))]
        return run_checks("funding_rates", df, schema_only, runner=runner, severity=cfg.severity)
    as_of_ms = None if as_of is None else int(as_of.timestamp() * 1000)
    data = _prepare(df, cfg, as_of_ms)
    checks = _build_checks(cfg, data.columns, as_of_ms)
    if not row_order:
        checks = [c for c in checks if c.name != "funding_time_increasing"]
    return run_checks(
        "funding_rates",
        data,
        checks,
        times=_TIMES,
        screen=screen,
        runner=runner,
        severity=cfg.severity,
    )


def _prepare(df: pl.DataFrame, cfg: ValidateConfig, as_of_ms: int | None) -> pl.DataFrame:
    """Times as epoch ms, NaN as null, and the helper columns of the derived rules."""
    d = HELPER
    lo, hi = year_bounds_ms(cfg)
    keys = list(SERIES_KEY)
    t = pl.col("funding_time")
    rate = pl.col("funding_rate")
    base = df.with_columns(t.dt.epoch("ms"), pl.col("funding_rate", "mark_price").fill_nan(None))
    t_ok = t.is_between(lo, hi).fill_null(False)
    prev_in_input = pl.when(t_ok).then(t).forward_fill().shift(1).over(keys)
    out = base.with_columns(
        pl.when(t_ok & prev_in_input.is_not_null())
        .then(t >= prev_in_input)
        .alias(f"{d}increasing"),
        prev_in_input.alias(f"{d}prev_funding_time"),
        # Only a rate within the hard cap can be merely extreme: one defect, one check.
        pl.when(rate.abs() <= RATE_MAX).then(rate.abs() <= RATE_WARN).alias(f"{d}rate_moderate"),
    )
    # Spacing in time order per symbol: the previous settlement should be 8h (± jitter) ago.
    row = f"{d}row"
    prev = pl.when(t_ok).then(t).forward_fill().shift(1).over(keys)
    spacing = t - prev
    timed = (
        out.with_row_index(row)
        .sort([*keys, "funding_time", row], nulls_last=True)
        .with_columns(
            # A repeated funding_time is unique_key's to report, not a spacing of 0h.
            pl.when(t_ok & prev.is_not_null() & (spacing != 0))
            .then((spacing - FUNDING_INTERVAL_MS).abs() <= FUNDING_JITTER_MS)
            .alias(f"{d}interval_ok"),
            pl.when(t_ok & prev.is_not_null()).then(spacing / 3_600_000).alias(f"{d}spacing_hours"),
        )
    )
    if as_of_ms is not None:
        last = pl.when(t_ok).then(t).max().over(keys)
        on_last = t_ok & (t == last)
        expected_after = as_of_ms - FUNDING_INTERVAL_MS * (1 + cfg.max_stale_bars)
        timed = timed.with_columns(
            pl.when(on_last).then(t >= expected_after - FUNDING_JITTER_MS).alias(f"{d}fresh"),
            pl.when(on_last).then(pl.lit(expected_after)).alias(f"{d}expected_after"),
        )
    return timed.sort(row).drop(row)


def _build_checks(cfg: ValidateConfig, columns: list[str], as_of_ms: int | None) -> list[Check]:
    lo, hi = year_bounds_ms(cfg)
    d = HELPER
    at = ("symbol", "funding_time")
    checks = [
        columns_check([*FUNDING_RATES_SCHEMA, *[c for c in columns if c.startswith(d)]]),
        *[not_null_check(c, at) for c in _REQUIRED],
        unique_key_check(
            FUNDING_RATES_KEY,
            "one record per market, symbol and funding_time",
            show=(*at, "funding_rate"),
        ),
        Check(
            "market_is_futures",
            "error",
            expectation(
                "market_is_futures",
                "ExpectColumnValuesToBeInSet",
                column="market",
                value_set=list(MARKETS),
            ),
            suspect=~pl.col("market").is_in(list(MARKETS)),
            show=("symbol", "market"),
            text="funding is paid on USD-M futures",
        ),
        between_check("funding_time_in_range", "error", "funding_time", lo, hi, ("symbol",)),
        true_check(
            "funding_time_increasing",
            "error",
            "increasing",
            (*at, f"{d}prev_funding_time"),
            "funding_time never goes back within a symbol, in row order",
        ),
        between_check("funding_rate_within_cap", "error", "funding_rate", -RATE_MAX, RATE_MAX, at),
        true_check(
            "funding_rate_extreme",
            "warning",
            "rate_moderate",
            (*at, "funding_rate"),
            f"|funding_rate| <= {RATE_WARN:g} per interval",
        ),
        between_check("mark_price_positive", "error", "mark_price", cfg.min_price, show=at),
        true_check(
            "funding_interval",
            "warning",
            "interval_ok",
            (*at, f"{d}spacing_hours"),
            f"8h since the symbol's previous funding (± {FUNDING_JITTER_MS // 1000} s)",
        ),
    ]
    if as_of_ms is not None:
        checks.append(
            true_check(
                "stale_series",
                "warning",
                "fresh",
                (*at, f"{d}expected_after"),
                f"the last funding is at most {cfg.max_stale_bars} interval(s) late",
            )
        )
    return checks
