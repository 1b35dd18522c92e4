"""The ledger's invariants, recomputed from its journal: [] when the books agree.

Projections (positions, balances, order locks) are kept in step with the append-only rows
(fills, cash flows) inside every write; a difference means a row was changed behind the
ledger's back or a bug slipped in, and the paper run must stop rather than trade on it.
"""

from __future__ import annotations

from collections import defaultdict

from quantlab.execution.ledger.db import Tx
from quantlab.portfolio.orders import TERMINAL

_REL = 1e-9


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _REL * max(1.0, abs(a), abs(b))


def _below_zero(x: float, scale: float) -> bool:
    return x < -_REL * max(1.0, abs(scale))


def _positions(tx: Tx, account: str) -> list[str]:
    fills: dict[str, float] = defaultdict(float)
    rows = tx.all("SELECT symbol, side, qty FROM fills WHERE account = ?", (account,))
    for symbol, side, qty in rows:
        fills[symbol] += float(qty) if side == "BUY" else -float(qty)
    held = {
        s: float(q)
        for s, q in tx.all("SELECT symbol, qty FROM positions WHERE account = ?", (account,))
    }
    return [
        f"position {symbol}: {held.get(symbol, 0.0)} booked but the fills sum to {fills.get(symbol, 0.0)}"
        for symbol in sorted(set(fills) | set(held))
        if not _close(held.get(symbol, 0.0), fills.get(symbol, 0.0))
    ]


def _balances(tx: Tx, account: str) -> list[str]:
    flows = {
        a: float(v)
        for a, v in tx.all(
            "SELECT asset, SUM(amount) FROM cash_flows WHERE account = ? GROUP BY asset", (account,)
        )
    }
    rows = {a: (float(f), float(lk)) for a, f, lk in tx.all(
        "SELECT asset, free, locked FROM balances WHERE account = ?", (account,))}  # fmt: skip
    locks: dict[str, float] = defaultdict(float)
    for asset, amount in tx.all(
        "SELECT locked_asset, locked_amount FROM orders WHERE account = ? AND locked_asset IS NOT NULL",
        (account,),
    ):
        locks[asset] += float(amount)
    problems = []
    for asset in sorted(set(flows) | set(rows) | set(locks)):
        free, locked = rows.get(asset, (0.0, 0.0))
        total = flows.get(asset, 0.0)
        if not _close(free + locked, total):
            problems.append(
                f"balance {asset}: free {free} + locked {locked} = {free + locked}, but the cash "
                f"flows sum to {total}"
            )
        if _below_zero(free, total) or _below_zero(locked, total):
            problems.append(f"balance {asset}: free {free} and locked {locked} must be >= 0")
        if not _close(locked, locks.get(asset, 0.0)):
            problems.append(
                f"balance {asset}: locked {locked}, but open orders lock {locks.get(asset, 0.0)}"
            )
    return problems


def _orders(tx: Tx, account: str) -> list[str]:
    problems = [
        f"orders: {n} orders share the {label} {value!r}"
        for label, column in (("idempotency key", "order_key"), ("client id", "client_id"))
        for value, n in tx.all(
            f"SELECT {column}, COUNT(*) FROM orders WHERE account = ? GROUP BY {column} HAVING COUNT(*) > 1",
            (account,),
        )
    ]
    filled = dict(tx.all(
        "SELECT client_id, SUM(qty) FROM fills WHERE account = ? GROUP BY client_id", (account,)))  # fmt: skip
    rows = tx.all(
        "SELECT client_id, symbol, qty, status, locked_amount FROM orders WHERE account = ?",
        (account,),
    )
    for client_id, symbol, qty, status, locked in rows:
        done = float(filled.get(client_id, 0.0))
        if done > float(qty) + _REL * max(1.0, float(qty)):
            problems.append(f"order {client_id} ({symbol}): fills sum to {done} over its qty {qty}")
        if status in TERMINAL and float(locked) != 0.0:
            problems.append(f"order {client_id} ({symbol}) is {status} but still locks {locked}")
    return problems


def check_invariants(tx: Tx, account: str) -> list[str]:
    """Every broken invariant of `account`, one sentence each naming the symbol or asset."""
    return _positions(tx, account) + _balances(tx, account) + _orders(tx, account)
