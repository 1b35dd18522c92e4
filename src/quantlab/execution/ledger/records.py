"""What the ledger hands back: orders and positions as frozen records, and their columns."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from quantlab.portfolio.orders import OrderStatus, OrderType, TimeInForce
from quantlab.portfolio.types import Side


@dataclass(frozen=True)
class LedgerOrder:
    """One order as the ledger books it; `locked_amount` is what it still holds of `locked_asset`."""

    client_id: str
    key: str
    account: str
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce | None
    qty: float
    price: float | None
    status: OrderStatus
    venue_order_id: str | None
    executed_qty: float
    cum_quote: float
    decision_ms: int
    target_weight: float
    source: str
    reference_price: float
    note: str
    missing_count: int
    created_ms: int
    updated_ms: int
    locked_asset: str | None
    locked_amount: float


@dataclass(frozen=True)
class PositionRow:
    """The position projected from fills: signed base qty, average entry, realized price pnl
    (fees are cash flows of their own), when the current position was opened (None: flat)."""

    symbol: str
    qty: float
    avg_price: float
    realized_pnl: float
    opened_ms: int | None


ORDER_FIELDS = tuple(f.name for f in fields(LedgerOrder))
# The table's column for each field ("key" is spelled order_key in SQL).
ORDER_COLUMNS = tuple("order_key" if name == "key" else name for name in ORDER_FIELDS)
ORDER_SELECT = "SELECT " + ", ".join(ORDER_COLUMNS) + " FROM orders"


def order_from_row(row: tuple) -> LedgerOrder:
    """A LedgerOrder from a row selected with ORDER_SELECT."""
    raw = dict(zip(ORDER_FIELDS, row, strict=True))
    raw["side"] = Side(raw["side"])
    raw["type"] = OrderType(raw["type"])
    raw["tif"] = TimeInForce(raw["tif"]) if raw["tif"] else None
    raw["status"] = OrderStatus(raw["status"])
    for name in (
        "qty",
        "executed_qty",
        "cum_quote",
        "target_weight",
        "reference_price",
        "locked_amount",
    ):
        raw[name] = float(raw[name])
    raw["price"] = None if raw["price"] is None else float(raw["price"])
    for name in ("decision_ms", "missing_count", "created_ms", "updated_ms"):
        raw[name] = int(raw[name])
    return LedgerOrder(**raw)


def dumps(detail: dict[str, Any] | None) -> str:
    """A detail dict as stored: JSON with sorted keys (enums and other objects as strings)."""
    return json.dumps(detail or {}, sort_keys=True, default=str)


def loads(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}
