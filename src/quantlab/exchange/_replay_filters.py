"""exchangeInfo symbol filters, judged as Binance judges them today (filters.md).

PRICE_FILTER: minPrice <= price <= maxPrice and price % tickSize == 0 (each part off when 0).
LOT_SIZE (MARKET_LOT_SIZE for market orders): minQty <= qty <= maxQty and qty % stepSize == 0.
NOTIONAL: minNotional <= price * qty <= maxNotional (for MARKET orders only where
applyMinToMarket / applyMaxToMarket, at the price the order would fill at); MIN_NOTIONAL the
same with its `applyToMarket`. MAX_NUM_ORDERS: open orders on the symbol. The first failure is
Binance's -1013 "Filter failure: NAME". Decimals throughout: the modulo rules are exact on the
exchange's decimal strings, never float remainders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

_ZERO = Decimal(0)


def _d(entry: Mapping[str, Any], name: str) -> Decimal:
    return Decimal(str(entry.get(name, "0")))


def _price_ok(f: Mapping[str, Any], price: Decimal) -> bool:
    lo, hi, tick = _d(f, "minPrice"), _d(f, "maxPrice"), _d(f, "tickSize")
    if lo > 0 and price < lo:
        return False
    if hi > 0 and price > hi:
        return False
    return tick == 0 or price % tick == 0


def _lot_ok(f: Mapping[str, Any], qty: Decimal) -> bool:
    lo, hi, step = _d(f, "minQty"), _d(f, "maxQty"), _d(f, "stepSize")
    if qty < lo or (hi > 0 and qty > hi):
        return False
    return step == 0 or qty % step == 0


def filter_failure(
    filters: Iterable[Mapping[str, Any]],
    *,
    market: bool,
    qty: Decimal,
    price: Decimal | None,
    notional_price: Decimal,
    open_orders: int,
) -> str | None:
    """The name of the first filter the order breaks, or None. `price` is the limit price (None for
    a market order); `notional_price` the price the notional is judged at."""
    by_type = {f.get("filterType"): f for f in filters}
    if (
        price is not None
        and "PRICE_FILTER" in by_type
        and not _price_ok(by_type["PRICE_FILTER"], price)
    ):
        return "PRICE_FILTER"
    if "LOT_SIZE" in by_type and not _lot_ok(by_type["LOT_SIZE"], qty):
        return "LOT_SIZE"
    if market and "MARKET_LOT_SIZE" in by_type and not _lot_ok(by_type["MARKET_LOT_SIZE"], qty):
        return "MARKET_LOT_SIZE"
    notional = qty * notional_price
    if f := by_type.get("NOTIONAL"):
        lo, hi = _d(f, "minNotional"), _d(f, "maxNotional")
        if (not market or f.get("applyMinToMarket", True)) and notional < lo:
            return "NOTIONAL"
        if (not market or f.get("applyMaxToMarket", False)) and hi > 0 and notional > hi:
            return "NOTIONAL"
    f = by_type.get("MIN_NOTIONAL")
    if f and (not market or f.get("applyToMarket", True)) and notional < _d(f, "minNotional"):
        return "MIN_NOTIONAL"
    f = by_type.get("MAX_NUM_ORDERS")
    if f and not market and open_orders >= int(f.get("maxNumOrders", 0) or 10**9):
        return "MAX_NUM_ORDERS"
    return None
