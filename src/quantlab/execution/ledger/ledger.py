"""The paper ledger: one class over the package's modules, one transaction per call.

`Ledger.connect(url)` opens SQLite (`sqlite:///path`) or PostgreSQL (`postgresql://...`,
psycopg2) and migrates the schema. Writes are one transaction each, so a crash leaves the
ledger as it was before the call or after it, never between.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from quantlab.execution.ledger import (
    accounts,
    frames,
    invariants,
    lifecycle,
    locking,
    migrate,
    orders,
    virtual,
)
from quantlab.execution.ledger.db import Db, Dialect
from quantlab.execution.ledger.records import (
    ORDER_SELECT,
    LedgerOrder,
    PositionRow,
    loads,
    order_from_row,
)
from quantlab.portfolio.orders import (
    Balance,
    OrderIntent,
    OrderReport,
    OrderStatus,
    SubmitResult,
    TradingState,
    VenueTrade,
)


class Ledger:
    """Orders, fills, the cash journal and their projections for paper accounts."""

    def __init__(self, db: Db, assets: Mapping[str, tuple[str, str]] | None = None):
        self._db = db
        self._assets: dict[str, tuple[str, str]] = dict(assets or {})
        self._memory_locks: dict[str, threading.Lock] = {}

    @classmethod
    def connect(
        cls,
        url: str,
        assets: Mapping[str, tuple[str, str]] | None = None,
        migrations: Path | None = None,
    ) -> Ledger:
        """Open and migrate; `assets` (symbol -> (base, quote)) names what fills are booked in."""
        db = Db(url)
        try:
            migrate.migrate(db, migrations)
        except BaseException:
            db.close()
            raise
        return cls(db, assets)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> Dialect:
        return self._db.dialect

    def schema_version(self) -> int:
        return migrate.schema_version(self._db)

    def register_assets(self, assets: Mapping[str, tuple[str, str]]) -> None:
        """symbol -> (base, quote) for symbols whose quote suffix is not enough (exchangeInfo's)."""
        self._assets.update(assets)

    def session_lock(self, account: str, wait_s: float) -> contextlib.AbstractContextManager[None]:
        """Hold the account's session lock for a with-block; LedgerBusy after `wait_s`."""
        if self._db.dialect == "postgresql":
            return locking.postgres_lock(self._db.target, self._db.url, account, wait_s)
        if self._db.path is None:
            lock = self._memory_locks.setdefault(account, threading.Lock())
            return locking.memory_lock(lock, account, wait_s)
        return locking.file_lock(self._db.path, account, wait_s)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Any]:
        with self._db.tx(write=False) as tx:
            yield tx

    # accounts, balances, positions
    def ensure_account(
        self, account: str, venue: str, initial: dict[str, float], at_ms: int
    ) -> bool:
        with self._db.tx() as tx:
            return accounts.ensure_account(tx, account, venue, initial, at_ms)

    def account_info(self, account: str) -> dict[str, Any] | None:
        with self._read() as tx:
            return accounts.account_info(tx, account)

    def set_cursor(self, account: str, ms: int) -> None:
        with self._db.tx() as tx:
            accounts.set_cursor(tx, account, ms)

    def balances(self, account: str) -> dict[str, Balance]:
        with self._read() as tx:
            return accounts.balances(tx, account)

    def positions(self, account: str) -> dict[str, PositionRow]:
        with self._read() as tx:
            return accounts.positions(tx, account)

    def post_cash_flow(
        self, account: str, asset: str, amount: float, kind: str, ref: str, at_ms: int
    ) -> None:
        with self._db.tx() as tx:
            accounts.post_cash_flow(tx, account, asset, amount, kind, ref, at_ms)

    # orders
    def orders(
        self,
        account: str,
        statuses: Iterable[OrderStatus | str] | None = None,
        symbol: str | None = None,
    ) -> list[LedgerOrder]:
        sql, params = ORDER_SELECT + " WHERE account = ?", [account]
        if statuses is not None:
            wanted = [OrderStatus(s).value for s in statuses]
            if not wanted:
                return []
            sql += f" AND status IN ({', '.join('?' for _ in wanted)})"
            params += wanted
        if symbol is not None:
            sql, params = sql + " AND symbol = ?", [*params, symbol]
        with self._read() as tx:
            return [
                order_from_row(r) for r in tx.all(sql + " ORDER BY created_ms, client_id", params)
            ]

    def order(self, client_id: str) -> LedgerOrder | None:
        with self._read() as tx:
            return orders.get_order(tx, client_id)

    def next_attempt(self, account: str, source: str, symbol: str, decision_ms: int) -> int:
        with self._read() as tx:
            return orders.next_attempt(tx, account, source, symbol, decision_ms)

    def create_order(
        self, intent: OrderIntent, lock: tuple[str, float] | None, at_ms: int
    ) -> tuple[LedgerOrder, bool]:
        with self._db.tx() as tx:
            return orders.create_order(tx, intent, lock, at_ms, self._assets)

    def record_result(self, client_id: str, result: SubmitResult, at_ms: int) -> LedgerOrder:
        with self._db.tx() as tx:
            return lifecycle.record_result(tx, client_id, result, at_ms)

    def apply_report(
        self, report: OrderReport, trades: Iterable[VenueTrade], at_ms: int, via: str
    ) -> LedgerOrder:
        with self._db.tx() as tx:
            return lifecycle.apply_report(tx, report, tuple(trades), at_ms, via)

    def adopt_order(
        self, account: str, report: OrderReport, trades: Iterable[VenueTrade], at_ms: int
    ) -> LedgerOrder:
        with self._db.tx() as tx:
            return lifecycle.adopt_order(tx, account, report, tuple(trades), at_ms, self._assets)

    def mark_missing(self, client_id: str, at_ms: int) -> int:
        with self._db.tx() as tx:
            return lifecycle.mark_missing(tx, client_id, at_ms)

    def settle_lost(self, client_id: str, at_ms: int, reason: str) -> LedgerOrder:
        with self._db.tx() as tx:
            return lifecycle.settle_lost(tx, client_id, at_ms, reason)

    def order_events(self, account: str, client_id: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT seq, client_id, kind, status, detail, at_ms FROM order_events WHERE account = ?"
        )
        params = [account] if client_id is None else [account, client_id]
        with self._read() as tx:
            rows = tx.dicts(
                sql + (" AND client_id = ?" if client_id else "") + " ORDER BY seq", params
            )
        return [{**row, "detail": loads(row["detail"])} for row in rows]

    def fills(self, account: str) -> pl.DataFrame:
        with self._read() as tx:
            return frames.fills(tx, account)

    def orders_frame(self, account: str) -> pl.DataFrame:
        with self._read() as tx:
            return frames.orders(tx, account)

    # events, breakers, halts, equity
    def add_event(self, account: str, kind: str, detail: dict, at_ms: int, symbol: str | None = None,
                  needs_person: bool = False) -> int:  # fmt: skip
        with self._db.tx() as tx:
            return accounts.add_event(tx, account, kind, detail, at_ms, symbol, needs_person)

    def events(
        self, account: str, kind: str | None = None, unresolved: bool = False
    ) -> list[dict[str, Any]]:
        with self._read() as tx:
            return accounts.events(tx, account, kind, unresolved)

    def resolve_events(self, account: str, at_ms: int, by: str, kind: str | None = None,
                       symbol: str | None = None) -> int:  # fmt: skip
        with self._db.tx() as tx:
            return accounts.resolve_events(tx, account, at_ms, by, kind, symbol)

    def trading_state(self, account: str) -> TradingState:
        with self._read() as tx:
            return accounts.trading_state(tx, account)

    def set_trading_state(self, account: str, state: TradingState, at_ms: int, by: str) -> None:
        with self._db.tx() as tx:
            accounts.set_trading_state(tx, account, state, at_ms, by)

    def halt_symbol(self, account: str, symbol: str, reason: str, at_ms: int) -> None:
        with self._db.tx() as tx:
            accounts.halt_symbol(tx, account, symbol, reason, at_ms)

    def clear_symbol(self, account: str, symbol: str, at_ms: int, by: str) -> None:
        with self._db.tx() as tx:
            accounts.clear_symbol(tx, account, symbol, at_ms, by)

    def halted_symbols(self, account: str) -> dict[str, str]:
        with self._read() as tx:
            return accounts.halted_symbols(tx, account)

    def record_equity(
        self, account: str, time_ms: int, equity: float, cash: float, gross_exposure: float
    ) -> None:
        with self._db.tx() as tx:
            accounts.record_equity(tx, account, time_ms, equity, cash, gross_exposure)

    def equity(self, account: str) -> pl.DataFrame:
        with self._read() as tx:
            return frames.equity(tx, account)

    # virtual positions and round trips
    def vpos_open(self, account: str, fields: dict[str, Any]) -> int:
        with self._db.tx() as tx:
            return virtual.vpos_open(tx, account, fields)

    def vpos_update(
        self, vpos_id: int, fields: dict[str, Any], events: list[dict[str, Any]]
    ) -> None:
        with self._db.tx() as tx:
            virtual.vpos_update(tx, vpos_id, fields, events)

    def vpos_list(self, account: str, status: str | None = "open") -> list[dict[str, Any]]:
        with self._read() as tx:
            return virtual.vpos_list(tx, account, status)

    def vpos_events(self, account: str) -> pl.DataFrame:
        with self._read() as tx:
            return frames.vpos_events(tx, account)

    def record_round_trip(self, account: str, rt: dict[str, Any]) -> bool:
        with self._db.tx() as tx:
            return virtual.record_round_trip(tx, account, rt)

    def round_trips(self, account: str) -> pl.DataFrame:
        with self._read() as tx:
            return frames.round_trips(tx, account)

    def check_invariants(self, account: str) -> list[str]:
        with self._read() as tx:
            return invariants.check_invariants(tx, account)
