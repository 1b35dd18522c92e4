"""Order rows: reading, saving a change with its order_event, and creating an order.

Every change to an order writes one row to the append-only `order_events` in the same
transaction, so the events are the order's history and the `orders` row its projection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from quantlab.execution.ledger.assets import symbol_assets
from quantlab.execution.ledger.db import Tx
from quantlab.execution.ledger.errors import LedgerError
from quantlab.execution.ledger.fills import free_of, move_balance
from quantlab.execution.ledger.records import (
    ORDER_COLUMNS,
    ORDER_FIELDS,
    ORDER_SELECT,
    LedgerOrder,
    dumps,
    order_from_row,
)
from quantlab.portfolio.orders import OrderIntent, OrderStatus

Assets = Mapping[str, tuple[str, str]]


def get_order(tx: Tx, client_id: str, for_update: bool = False) -> LedgerOrder | None:
    row = tx.one(
        ORDER_SELECT + " WHERE client_id = ?" + (tx.for_update if for_update else ""), (client_id,)
    )
    return None if row is None else order_from_row(row)


def need_order(tx: Tx, client_id: str) -> LedgerOrder:
    order = get_order(tx, client_id, for_update=True)
    if order is None:
        raise LedgerError(
            f"no order with client id {client_id!r} in the ledger; an order the venue knows and "
            "the ledger does not is booked with adopt_order"
        )
    return order


def order_event(tx: Tx, order: LedgerOrder, kind: str, detail: dict[str, Any], at_ms: int) -> None:
    tx.run(
        "INSERT INTO order_events (account, client_id, kind, status, detail, at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (order.account, order.client_id, kind, order.status.value, dumps(detail), at_ms),
    )


def _value(value: Any) -> Any:
    return getattr(value, "value", value)  # enums are stored by their value


def save(tx: Tx, old: LedgerOrder, new: LedgerOrder) -> LedgerOrder:
    """Write the fields of `new` that differ from `old` (nothing when none does)."""
    changed = [
        (column, _value(getattr(new, name)))
        for name, column in zip(ORDER_FIELDS, ORDER_COLUMNS, strict=True)
        if getattr(new, name) != getattr(old, name)
    ]
    if changed:
        sets = ", ".join(f"{column} = ?" for column, _ in changed)
        tx.run(
            f"UPDATE orders SET {sets} WHERE client_id = ?",
            [v for _, v in changed] + [old.client_id],
        )
    return new


def release(tx: Tx, order: LedgerOrder, amount: float, at_ms: int) -> LedgerOrder:
    """Move `amount` of the order's lock back from locked to free."""
    amount = min(amount, order.locked_amount)
    if order.locked_asset is None or amount <= 0:
        return order
    move_balance(tx, order.account, order.locked_asset, amount, -amount, at_ms)
    return dataclasses.replace(order, locked_amount=order.locked_amount - amount)


def insert_order(tx: Tx, order: LedgerOrder, assets: tuple[str, str]) -> None:
    columns = (*ORDER_COLUMNS, "base_asset", "quote_asset")
    values = [_value(getattr(order, name)) for name in ORDER_FIELDS] + list(assets)
    marks = ", ".join("?" for _ in columns)
    tx.run(f"INSERT INTO orders ({', '.join(columns)}) VALUES ({marks})", values)


def create_order(
    tx: Tx, intent: OrderIntent, lock: tuple[str, float] | None, at_ms: int, assets: Assets
) -> tuple[LedgerOrder, bool]:
    """Book `intent` as PENDING_SUBMIT and lock its funds; (existing order, False) for a known key.

    The venue, not the ledger, decides whether the account can pay: a lock larger than the
    free balance locks what is free and the 'created' event records the shortfall.
    """
    row = tx.one(ORDER_SELECT + " WHERE order_key = ?", (intent.key,))
    if row is not None:
        return order_from_row(row), False
    clash = get_order(tx, intent.client_id)
    if clash is not None:
        raise LedgerError(
            f"client id {intent.client_id} of key {intent.key!r} already belongs to key "
            f"{clash.key!r}; an idempotency key must map to one client id"
        )
    if intent.qty <= 0:
        raise LedgerError(f"order {intent.key!r} has qty {intent.qty}; an order's qty is > 0")
    pair = symbol_assets(intent.symbol, assets)
    detail: dict[str, Any] = {"key": intent.key, "qty": intent.qty, "price": intent.price}
    locked_asset, locked = None, 0.0
    if lock is not None:
        locked_asset, want = lock[0], float(lock[1])
        if want < 0:
            raise LedgerError(
                f"order {intent.key!r} asks to lock {want} {locked_asset}; a lock is >= 0"
            )
        free = free_of(tx, intent.account, locked_asset)
        locked = min(want, max(free, 0.0))
        detail.update(lock_asset=locked_asset, lock_requested=want, locked=locked)
        if locked < want:
            detail.update(lock_short=want - locked, free_before=free)
        if locked > 0:
            move_balance(tx, intent.account, locked_asset, -locked, locked, at_ms)
    order = LedgerOrder(
        client_id=intent.client_id, key=intent.key, account=intent.account, symbol=intent.symbol,
        side=intent.side, type=intent.type, tif=intent.tif, qty=float(intent.qty),
        price=intent.price, status=OrderStatus.PENDING_SUBMIT, venue_order_id=None,
        executed_qty=0.0, cum_quote=0.0, decision_ms=int(intent.decision_ms),
        target_weight=float(intent.target_weight), source=intent.source,
        reference_price=float(intent.reference_price), note=intent.note, missing_count=0,
        created_ms=at_ms, updated_ms=at_ms, locked_asset=locked_asset, locked_amount=locked,
    )  # fmt: skip
    insert_order(tx, order, pair)
    order_event(tx, order, "created", detail, at_ms)
    return order, True


def order_assets(tx: Tx, client_id: str) -> tuple[str, str]:
    row = tx.one("SELECT base_asset, quote_asset FROM orders WHERE client_id = ?", (client_id,))
    if row is None:
        raise LedgerError(f"no order with client id {client_id!r} in the ledger")
    return str(row[0]), str(row[1])


def next_attempt(tx: Tx, account: str, source: str, symbol: str, decision_ms: int) -> int:
    """0, or 1 + the highest attempt booked for (account, source, symbol, decision bar)."""
    prefix = f"{account}|{source}|{symbol}|{decision_ms}|"
    keys = tx.all(
        "SELECT order_key FROM orders WHERE account = ? AND source = ? AND symbol = ? "
        "AND decision_ms = ?",
        (account, source, symbol, decision_ms),
    )
    attempts = [
        int(key[len(prefix) :])
        for (key,) in keys
        if key.startswith(prefix) and key[len(prefix) :].isdigit()
    ]
    return max(attempts) + 1 if attempts else 0
