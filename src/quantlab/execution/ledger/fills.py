"""Booking one venue trade: the fill row, its cash flows (the journal) and the position.

A BUY posts +qty base and -qty*price quote, a SELL the reverse, and the fee is posted
negative in the asset the venue took it in (Binance: the received asset, or BNB). Balances
move with every posting, so per asset the balance total always equals the sum of the journal.
The fill's primary key (account, symbol, trade_id) makes booking the same trade twice a no-op.
"""

from __future__ import annotations

import math

from quantlab.execution.ledger.db import Tx
from quantlab.execution.ledger.records import PositionRow
from quantlab.portfolio.orders import VenueTrade
from quantlab.portfolio.types import Side

FLOWS = ("initial", "trade", "fee", "funding", "adjust")
_FLAT = 1e-12


def move_balance(tx: Tx, account: str, asset: str, free: float, locked: float, at_ms: int) -> None:
    """Add `free` and `locked` to the account's balance row of `asset` (created at 0)."""
    tx.run(
        "INSERT INTO balances (account, asset, free, locked, updated_ms) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (account, asset) DO UPDATE SET free = balances.free + excluded.free, "
        "locked = balances.locked + excluded.locked, updated_ms = excluded.updated_ms",
        (account, asset, float(free), float(locked), at_ms),
    )


def post_flow(
    tx: Tx, account: str, asset: str, amount: float, kind: str, ref: str, at_ms: int
) -> None:
    """One journal line; the free balance of `asset` moves by `amount`."""
    tx.run(
        "INSERT INTO cash_flows (account, asset, amount, kind, ref, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
        (account, asset, float(amount), kind, ref, at_ms),
    )
    move_balance(tx, account, asset, amount, 0.0, at_ms)


def free_of(tx: Tx, account: str, asset: str) -> float:
    value = tx.scalar(
        "SELECT free FROM balances WHERE account = ? AND asset = ?" + tx.for_update,
        (account, asset),
    )
    return 0.0 if value is None else float(value)


def project(pos: PositionRow, signed_qty: float, price: float, time_ms: int) -> PositionRow:
    """The position after a fill of `signed_qty` (+ buy, - sell) at `price` (netting).

    Adding to a position averages the entry; reducing it realizes (price - avg) per unit in
    the position's direction; crossing zero opens the remainder at `price`.
    """
    qty, avg, realized, opened = pos.qty, pos.avg_price, pos.realized_pnl, pos.opened_ms
    new = qty + signed_qty
    if qty == 0 or math.copysign(1, qty) == math.copysign(1, signed_qty):
        avg = (abs(qty) * avg + abs(signed_qty) * price) / abs(new)
        return PositionRow(pos.symbol, new, avg, realized, opened if qty != 0 else time_ms)
    direction = 1.0 if qty > 0 else -1.0
    realized += min(abs(signed_qty), abs(qty)) * (price - avg) * direction
    if abs(new) <= _FLAT * max(1.0, abs(qty)):
        return PositionRow(pos.symbol, 0.0, 0.0, realized, None)
    if math.copysign(1, new) != math.copysign(1, qty):
        return PositionRow(pos.symbol, new, price, realized, time_ms)
    return PositionRow(pos.symbol, new, avg, realized, opened)


def position_of(tx: Tx, account: str, symbol: str) -> PositionRow:
    row = tx.one(
        "SELECT qty, avg_price, realized_pnl, opened_ms FROM positions WHERE account = ? "
        "AND symbol = ?" + tx.for_update,
        (account, symbol),
    )
    if row is None:
        return PositionRow(symbol, 0.0, 0.0, 0.0, None)
    return PositionRow(symbol, float(row[0]), float(row[1]), float(row[2]), row[3])


def book_trade(
    tx: Tx,
    account: str,
    client_id: str,
    assets: tuple[str, str],
    trade: VenueTrade,
    at_ms: int,
    via: str,
) -> bool:
    """Book `trade` once: fill row, cash flows, position. False when it was booked before."""
    inserted = tx.run(
        "INSERT INTO fills (account, symbol, trade_id, client_id, venue_order_id, side, qty, "
        "price, fee, fee_asset, time_ms, maker, via, booked_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (account, symbol, trade_id) DO NOTHING",
        (account, trade.symbol, str(trade.trade_id), client_id, str(trade.venue_order_id),
         trade.side.value, float(trade.qty), float(trade.price), float(trade.fee), trade.fee_asset,
         int(trade.time_ms), int(bool(trade.maker)), via, at_ms),
    )  # fmt: skip
    if inserted != 1:
        return False
    base, quote = assets
    sign = 1.0 if trade.side is Side.BUY else -1.0
    ref = f"{trade.symbol}:{trade.trade_id}"
    post_flow(tx, account, base, sign * trade.qty, "trade", ref, at_ms)
    post_flow(tx, account, quote, -sign * trade.qty * trade.price, "trade", ref, at_ms)
    if trade.fee:
        post_flow(tx, account, trade.fee_asset, -trade.fee, "fee", ref, at_ms)
    pos = project(
        position_of(tx, account, trade.symbol), sign * trade.qty, trade.price, trade.time_ms
    )
    tx.run(
        "INSERT INTO positions (account, symbol, qty, avg_price, realized_pnl, opened_ms, "
        "updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, symbol) DO UPDATE SET "
        "qty = excluded.qty, avg_price = excluded.avg_price, realized_pnl = "
        "excluded.realized_pnl, opened_ms = excluded.opened_ms, updated_ms = excluded.updated_ms",
        (account, trade.symbol, pos.qty, pos.avg_price, pos.realized_pnl, pos.opened_ms, at_ms),
    )
    return True
