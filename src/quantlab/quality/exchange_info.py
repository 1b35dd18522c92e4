"""Data-quality checks on an `exchange_info` frame (symbols and trading filters), run through GX.

A pure core like `quality.klines`. Binance reports a disabled filter bound as 0
(e.g. `maxPrice` "0" means no maximum), so range checks apply only where both
bounds are set; the parser leaves a filter a symbol lacks as null.
"""

from __future__ import annotations

import polars as pl

from quantlab.config import ValidateConfig
from quantlab.errors import SchemaError
from quantlab.quality._gx import (
    HELPER,
    Check,
    Runner,
    between_check,
    columns_check,
    expectation,
    not_null_check,
    run_checks,
    true_check,
    unique_key_check,
)
from quantlab.quality.checks import CheckReport
from quantlab.schema import EXCHANGE_INFO_KEY, EXCHANGE_INFO_SCHEMA
from quantlab.vocab import MARKETS

# Every status the spot and USD-M futures APIs document for a symbol.
STATUSES = (
    "PRE_TRADING",
    "TRADING",
    "POST_TRADING",
    "END_OF_DAY",
    "HALT",
    "AUCTION_MATCH",
    "BREAK",
    "PENDING_TRADING",
    "PRE_DELIVERING",
    "DELIVERING",
    "DELIVERED",
    "PRE_SETTLE",
    "SETTLING",
    "CLOSE",
)
_REQUIRED = ("market", "symbol", "status", "base_asset", "quote_asset")


def check_exchange_info(
    df: pl.DataFrame,
    cfg: ValidateConfig | None = None,
    *,
    screen: bool = True,
    runner: Runner | None = None,
) -> CheckReport:
    """Run every exchange-info check on `df` (one row per market and symbol) and report.

    Of `cfg`, only the checks' severities apply. `runner` validates (default: in memory;
    the gate passes its Checkpoint's).
    """
    severity = (cfg or ValidateConfig()).severity
    for name, want in EXCHANGE_INFO_SCHEMA.items():
        if name in df.columns and df.schema[name] != want:
            raise SchemaError(
                f"exchange_info column {name!r} is {df.schema[name]}, expected {want}; "
                "build the frame with quantlab.exchange.exchange_info.parse_exchange_info"
            )
    if not all(c in df.columns for c in EXCHANGE_INFO_SCHEMA):
        schema_only = [columns_check(list(EXCHANGE_INFO_SCHEMA))]
        return run_checks("exchange_info", df, schema_only, runner=runner, severity=severity)
    d = HELPER
    data = df.with_columns(pl.col(pl.Float64).fill_nan(None)).with_columns(
        # BTCUSDT is BTC + USDT; a delivery contract adds a suffix (BTCUSDT_240927).
        pl.col("symbol")
        .str.starts_with(pl.col("base_asset") + pl.col("quote_asset"))
        .alias(f"{d}symbol_matches_assets"),
        *[
            pl.when(pl.col(c) != 0).then(pl.col(c)).alias(f"{d}{c}_limit")
            for c in ("max_price", "max_qty")
        ],
    )
    checks = _build_checks(data.columns)
    return run_checks(
        "exchange_info", data, checks, screen=screen, runner=runner, severity=severity
    )


def _range(name: str, low: str, high: str) -> Check:
    """`low` <= `high` where both are set; `high` 0 is Binance's "no limit" and is left out."""
    limit = f"{HELPER}{high}_limit"
    return Check(
        name,
        "error",
        expectation(
            name,
            "ExpectColumnPairValuesAToBeGreaterThanB",
            column_A=limit,
            column_B=low,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
        suspect=(pl.col(limit) < pl.col(low)).fill_null(False),
        show=("market", "symbol", low, high),
        text=f"{low} <= {high} where both are set ({high} 0 means no limit)",
    )


def _build_checks(columns: list[str]) -> list[Check]:
    at = ("market", "symbol")
    positive = dict(min_value=0, strict_min=True)
    return [
        columns_check([*EXCHANGE_INFO_SCHEMA, *[c for c in columns if c.startswith(HELPER)]]),
        *[not_null_check(c, at) for c in _REQUIRED],
        unique_key_check(
            EXCHANGE_INFO_KEY,
            "one row per market and symbol",
            show=(*at, "status"),
        ),
        Check(
            "market_known",
            "error",
            expectation(
                "market_known",
                "ExpectColumnValuesToBeInSet",
                column="market",
                value_set=list(MARKETS),
            ),
            suspect=~pl.col("market").is_in(list(MARKETS)),
            show=at,
            text=f"market is one of {', '.join(MARKETS)}",
        ),
        Check(
            "status_known",
            "error",
            expectation(
                "status_known",
                "ExpectColumnValuesToBeInSet",
                column="status",
                value_set=list(STATUSES),
            ),
            suspect=~pl.col("status").is_in(list(STATUSES)),
            show=(*at, "status"),
            text="status is one Binance documents",
        ),
        *[
            Check(
                f"{c}_positive",
                "error",
                expectation(f"{c}_positive", "ExpectColumnValuesToBeBetween", column=c, **positive),
                suspect=pl.col(c) <= 0,
                show=(*at, c),
                text=f"{c} > 0 where present",
            )
            for c in ("tick_size", "step_size")
        ],
        between_check("min_notional_non_negative", "error", "min_notional", 0, show=at),
        _range("price_range", "min_price", "max_price"),
        _range("qty_range", "min_qty", "max_qty"),
        true_check(
            "symbol_matches_assets",
            "warning",
            "symbol_matches_assets",
            (*at, "base_asset", "quote_asset"),
            "symbol starts with base_asset + quote_asset",
        ),
    ]
