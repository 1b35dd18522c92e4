"""Accounts, balances, positions, the event log, breaker state, symbol halts and equity marks."""

from __future__ import annotations

import json
from typing import Any

from quantlab.execution.ledger.db import Tx
from quantlab.execution.ledger.errors import LedgerError
from quantlab.execution.ledger.fills import post_flow
from quantlab.execution.ledger.records import PositionRow, dumps, loads
from quantlab.portfolio.orders import Balance, TradingMode, TradingState

_MANUAL_FLOWS = ("funding", "adjust")


def ensure_account(tx: Tx, account: str, venue: str, initial: dict[str, float], at_ms: int) -> bool:
    """Create the account with its initial balances (posted as 'initial' cash flows); an
    existing account is left alone. The cursor starts at creation: nothing earlier is ours."""
    if tx.scalar("SELECT 1 FROM accounts WHERE account = ?" + tx.for_update, (account,)):
        return False
    negative = {a: v for a, v in initial.items() if v < 0}
    if negative:
        raise LedgerError(
            f"initial balances {negative} of account {account!r} are negative; start >= 0"
        )
    tx.run(
        "INSERT INTO accounts (account, venue, created_ms, cursor_ms, initial) VALUES (?, ?, ?, ?, ?)",
        (account, venue, at_ms, at_ms, json.dumps(initial, sort_keys=True)),
    )
    for asset, amount in sorted(initial.items()):
        post_flow(tx, account, asset, float(amount), "initial", "initial", at_ms)
    return True


def account_info(tx: Tx, account: str) -> dict[str, Any] | None:
    row = tx.one(
        "SELECT venue, created_ms, cursor_ms, initial FROM accounts WHERE account = ?", (account,)
    )
    if row is None:
        return None
    return {
        "venue": row[0],
        "created_ms": int(row[1]),
        "cursor_ms": int(row[2]),
        "initial": loads(row[3]),
    }


def set_cursor(tx: Tx, account: str, ms: int) -> None:
    if tx.run("UPDATE accounts SET cursor_ms = ? WHERE account = ?", (int(ms), account)) != 1:
        raise LedgerError(f"account {account!r} is not in the ledger; call ensure_account first")


def balances(tx: Tx, account: str) -> dict[str, Balance]:
    rows = tx.all(
        "SELECT asset, free, locked FROM balances WHERE account = ? ORDER BY asset", (account,)
    )
    return {a: Balance(a, float(f), float(lk)) for a, f, lk in rows}


def positions(tx: Tx, account: str) -> dict[str, PositionRow]:
    rows = tx.all(
        "SELECT symbol, qty, avg_price, realized_pnl, opened_ms FROM positions WHERE account = ? "
        "ORDER BY symbol",
        (account,),
    )
    return {s: PositionRow(s, float(q), float(p), float(r), o) for s, q, p, r, o in rows}


def post_cash_flow(
    tx: Tx, account: str, asset: str, amount: float, kind: str, ref: str, at_ms: int
) -> None:
    if kind not in _MANUAL_FLOWS:
        raise LedgerError(
            f"cash flow kind {kind!r} cannot be posted by hand; use one of {_MANUAL_FLOWS} "
            "(initial, trade and fee flows are the ledger's own)"
        )
    post_flow(tx, account, asset, amount, kind, ref, at_ms)


def add_event(
    tx: Tx,
    account: str,
    kind: str,
    detail: dict,
    at_ms: int,
    symbol: str | None,
    needs_person: bool,
) -> int:
    row = tx.one(
        "INSERT INTO events (account, kind, symbol, detail, at_ms, needs_person) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
        (account, kind, symbol, dumps(detail), at_ms, int(needs_person)),
    )
    return int(row[0])


def events(tx: Tx, account: str, kind: str | None, unresolved: bool) -> list[dict[str, Any]]:
    sql = (
        "SELECT seq, kind, symbol, detail, at_ms, needs_person, resolved_ms, resolved_by "
        "FROM events WHERE account = ?"
    )
    params: list[Any] = [account]
    if kind is not None:
        sql, params = sql + " AND kind = ?", [*params, kind]
    if unresolved:
        sql += " AND resolved_ms IS NULL"
    rows = tx.dicts(sql + " ORDER BY seq", params)
    for row in rows:
        row["detail"] = loads(row["detail"])
        row["needs_person"] = bool(row["needs_person"])
    return rows


def resolve_events(
    tx: Tx, account: str, at_ms: int, by: str, kind: str | None, symbol: str | None
) -> int:
    sql = "UPDATE events SET resolved_ms = ?, resolved_by = ? WHERE account = ? AND resolved_ms IS NULL"
    params: list[Any] = [at_ms, by, account]
    if kind is not None:
        sql, params = sql + " AND kind = ?", [*params, kind]
    if symbol is not None:
        sql, params = sql + " AND symbol = ?", [*params, symbol]
    return tx.run(sql, params)


_STATE_FIELDS = (
    "mode",
    "reason",
    "since_ms",
    "peak_equity",
    "day_ms",
    "day_start_equity",
    "manual",
)


def trading_state(tx: Tx, account: str) -> TradingState:
    row = tx.one(
        f"SELECT {', '.join(_STATE_FIELDS)} FROM trading_state WHERE account = ?", (account,)
    )
    if row is None:
        return TradingState()
    mode, reason, since, peak, day, day_start, manual = row
    return TradingState(
        TradingMode(mode), reason, int(since), float(peak), int(day), float(day_start), bool(manual)
    )


def set_trading_state(tx: Tx, account: str, state: TradingState, at_ms: int, by: str) -> None:
    """Store the state; a change of mode is an event (HALTED needs a person to resume)."""
    before = trading_state(tx, account)
    tx.run(
        f"INSERT INTO trading_state (account, {', '.join(_STATE_FIELDS)}, updated_ms, updated_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account) DO UPDATE SET "
        + ", ".join(f"{f} = excluded.{f}" for f in (*_STATE_FIELDS, "updated_ms", "updated_by")),
        (account, state.mode.value, state.reason, int(state.since_ms), float(state.peak_equity),
         int(state.day_ms), float(state.day_start_equity), int(state.manual), at_ms, by),
    )  # fmt: skip
    if state.mode != before.mode:
        detail = {"from": before.mode.value, "to": state.mode.value, "reason": state.reason,
                  "by": by, "manual": state.manual}  # fmt: skip
        add_event(
            tx, account, "trading_state", detail, at_ms, None, state.mode is TradingMode.HALTED
        )


def halt_symbol(tx: Tx, account: str, symbol: str, reason: str, at_ms: int) -> None:
    tx.run(
        "INSERT INTO symbol_halts (account, symbol, reason, halted_ms) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (account, symbol) DO UPDATE SET reason = excluded.reason, "
        "halted_ms = excluded.halted_ms, cleared_ms = NULL, cleared_by = NULL",
        (account, symbol, reason, at_ms),
    )
    add_event(tx, account, "symbol_halted", {"reason": reason}, at_ms, symbol, False)


def clear_symbol(tx: Tx, account: str, symbol: str, at_ms: int, by: str) -> None:
    cleared = tx.run(
        "UPDATE symbol_halts SET cleared_ms = ?, cleared_by = ? WHERE account = ? AND symbol = ? "
        "AND cleared_ms IS NULL",
        (at_ms, by, account, symbol),
    )
    if cleared:
        add_event(tx, account, "symbol_cleared", {"by": by}, at_ms, symbol, False)


def halted_symbols(tx: Tx, account: str) -> dict[str, str]:
    rows = tx.all(
        "SELECT symbol, reason FROM symbol_halts WHERE account = ? AND cleared_ms IS NULL ORDER BY symbol",
        (account,),
    )
    return {s: r for s, r in rows}


def record_equity(
    tx: Tx, account: str, time_ms: int, equity: float, cash: float, gross: float
) -> None:
    tx.run(
        "INSERT INTO equity (account, time_ms, equity, cash, gross_exposure) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (account, time_ms) DO UPDATE SET equity = excluded.equity, "
        "cash = excluded.cash, gross_exposure = excluded.gross_exposure",
        (account, int(time_ms), float(equity), float(cash), float(gross)),
    )
