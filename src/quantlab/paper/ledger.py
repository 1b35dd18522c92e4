"""The paper ledger: orders, fills and positions in SQLite or PostgreSQL (psycopg2).

Each order is booked with its fill and the position update in one transaction,
and `client_order_id` is unique, so booking the same targets twice is a no-op.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantlab.errors import ConfigError
from quantlab.paper.broker import Order
from quantlab.portfolio.types import Side

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS orders (
        client_order_id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty DOUBLE PRECISION NOT NULL,
        target_weight DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS fills (
        client_order_id TEXT PRIMARY KEY REFERENCES orders (client_order_id),
        qty DOUBLE PRECISION NOT NULL,
        price DOUBLE PRECISION NOT NULL,
        fee DOUBLE PRECISION NOT NULL,
        filled_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS positions (
        account TEXT NOT NULL,
        symbol TEXT NOT NULL,
        qty DOUBLE PRECISION NOT NULL,
        avg_price DOUBLE PRECISION NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (account, symbol))""",
]


class Ledger:
    """A DB-API connection to the ledger; `?` placeholders are adapted for psycopg2."""

    def __init__(self, conn: Any, paramstyle: str):
        self._conn = conn
        self._pg = paramstyle == "pyformat"
        self._ensure_schema()

    @classmethod
    def connect(cls, url: str) -> Ledger:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            return cls(sqlite3.connect(path), "qmark")
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg2

            return cls(psycopg2.connect(url), "pyformat")
        raise ConfigError(
            f"paper.ledger_url {url.split('@')[-1]!r} is not supported; "
            "use sqlite:///path/to/ledger.sqlite or postgresql://user@host:port/db"
        )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def _execute(self, cur: Any, sql: str, params: tuple = ()) -> None:
        cur.execute(self._sql(sql), params)

    def _ensure_schema(self) -> None:
        cur = self._conn.cursor()
        for stmt in _SCHEMA:
            self._execute(cur, stmt)
        self._conn.commit()

    def positions(self, account: str) -> dict[str, float]:
        cur = self._conn.cursor()
        self._execute(cur, "SELECT symbol, qty FROM positions WHERE account = ?", (account,))
        return {symbol: float(qty) for symbol, qty in cur.fetchall()}

    def orders(self, account: str, prefix: str = "") -> list[dict[str, Any]]:
        cur = self._conn.cursor()
        self._execute(
            cur,
            "SELECT o.client_order_id, o.symbol, o.side, o.qty, f.price, f.fee, o.target_weight "
            "FROM orders o JOIN fills f ON f.client_order_id = o.client_order_id "
            "WHERE o.account = ? AND o.client_order_id LIKE ? ORDER BY o.client_order_id",
            (account, prefix + "%"),
        )
        cols = ["client_order_id", "symbol", "side", "qty", "price", "fee", "target_weight"]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def book(self, account: str, order: Order, source: str) -> bool:
        """Book an order, its fill and the position change atomically; False if already booked."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        cur = self._conn.cursor()
        try:
            self._execute(
                cur,
                "SELECT 1 FROM orders WHERE client_order_id = ?",
                (order.client_order_id,),
            )
            if cur.fetchone():
                self._conn.rollback()
                return False
            self._execute(
                cur,
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, 'FILLED', ?, ?)",
                (
                    order.client_order_id,
                    account,
                    order.symbol,
                    order.side.value,
                    order.qty,
                    order.target_weight,
                    source,
                    now,
                ),
            )
            self._execute(
                cur,
                "INSERT INTO fills VALUES (?, ?, ?, ?, ?)",
                (order.client_order_id, order.qty, order.price, order.fee, now),
            )
            self._apply_fill(cur, account, order, now)
            self._conn.commit()
        except Exception:
            self._conn.rollback()
            raise
        return True

    def _apply_fill(self, cur: Any, account: str, order: Order, now: str) -> None:
        self._execute(
            cur,
            "SELECT qty, avg_price FROM positions WHERE account = ? AND symbol = ?",
            (account, order.symbol),
        )
        row = cur.fetchone()
        qty, avg = (float(row[0]), float(row[1])) if row else (0.0, 0.0)
        signed = order.qty if order.side is Side.BUY else -order.qty
        new_qty = qty + signed
        if abs(new_qty) < 1e-12:
            new_qty, new_avg = 0.0, 0.0
        elif qty == 0 or (qty > 0) != (new_qty > 0):
            new_avg = order.price  # opened or flipped: the fill sets the cost basis
        elif abs(new_qty) > abs(qty):
            new_avg = (abs(qty) * avg + order.qty * order.price) / abs(new_qty)
        else:
            new_avg = avg  # reducing keeps the cost basis
        if row:
            self._execute(
                cur,
                "UPDATE positions SET qty = ?, avg_price = ?, updated_at = ? "
                "WHERE account = ? AND symbol = ?",
                (new_qty, new_avg, now, account, order.symbol),
            )
        else:
            self._execute(
                cur,
                "INSERT INTO positions VALUES (?, ?, ?, ?, ?)",
                (account, order.symbol, new_qty, new_avg, now),
            )
