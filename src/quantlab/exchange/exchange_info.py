"""Symbols and their trading filters from an exchangeInfo response, one row per symbol.

Spot sends PRICE_FILTER, LOT_SIZE and NOTIONAL (before 2023: MIN_NOTIONAL with
`minNotional`); USD-M futures send MIN_NOTIONAL with `notional`. Binance writes every number
as a decimal string; a filter a symbol lacks leaves its columns null.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from quantlab.errors import SchemaError
from quantlab.schema import EXCHANGE_INFO_SCHEMA
from quantlab.vocab import MARKETS

# column -> ((filterType, field), ...): the first one a symbol carries wins.
_FILTER_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "tick_size": (("PRICE_FILTER", "tickSize"),),
    "min_price": (("PRICE_FILTER", "minPrice"),),
    "max_price": (("PRICE_FILTER", "maxPrice"),),
    "step_size": (("LOT_SIZE", "stepSize"),),
    "min_qty": (("LOT_SIZE", "minQty"),),
    "max_qty": (("LOT_SIZE", "maxQty"),),
    "min_notional": (
        ("NOTIONAL", "minNotional"),
        ("MIN_NOTIONAL", "minNotional"),
        ("MIN_NOTIONAL", "notional"),
    ),
}


def parse_exchange_info(raw: dict, market: str) -> pl.DataFrame:
    """One row per symbol of `raw` (a spot or USD-M exchangeInfo body) in EXCHANGE_INFO_SCHEMA."""
    if market not in MARKETS:
        raise SchemaError(f"unknown market {market!r}; use one of {list(MARKETS)}")
    symbols = raw.get("symbols") if isinstance(raw, dict) else None
    if not isinstance(symbols, list):
        raise SchemaError(
            "exchangeInfo body has no 'symbols' list; pass the JSON of GET /api/v3/exchangeInfo "
            "or /fapi/v1/exchangeInfo as it came"
        )
    rows = [_row(entry, market, n) for n, entry in enumerate(symbols)]
    df = pl.DataFrame(rows, schema=dict.fromkeys(EXCHANGE_INFO_SCHEMA, pl.String()), orient="row")
    try:
        return df.with_columns(pl.col(c).cast(pl.Float64) for c in _FILTER_FIELDS)
    except pl.exceptions.InvalidOperationError as exc:
        raise SchemaError(
            f"an exchangeInfo filter value is not a decimal number: {str(exc).splitlines()[0]}"
        ) from None


def _row(entry: Any, market: str, n: int) -> list[str | None]:
    try:
        by_type = {f["filterType"]: f for f in entry.get("filters", [])}
        head = [market, entry["symbol"], entry["status"], entry["baseAsset"], entry["quoteAsset"]]
    except (AttributeError, KeyError, TypeError) as exc:
        raise SchemaError(
            f"exchangeInfo symbols[{n}] lacks {exc} (needs symbol, status, baseAsset, "
            "quoteAsset and filters with a filterType each)"
        ) from None
    return head + [_pick(by_type, options) for options in _FILTER_FIELDS.values()]


def _pick(by_type: dict[str, dict], options: tuple[tuple[str, str], ...]) -> str | None:
    for filter_type, field in options:
        value = by_type.get(filter_type, {}).get(field)
        if value is not None:
            return str(value)
    return None
