"""The paper venue's persisted state: orders, trades, balances, clock and fault script in SQLite.

Kept apart from the matching (`paper_venue`) so each reads on its own: this module knows rows
and transactions, not prices. Every method taking `db` runs inside the caller's `tx()`, so one
state change of the venue is one transaction.
"""

from __future__ import annotations

import json
import random
import sqlite3
from contextlib import contextmanager

from quantlab.errors import ConfigError
from quantlab.portfolio.orders import (
    Balance,
    OrderIntent,
    OrderReport,
    OrderStatus,
    OrderType,
    VenueTrade,
)  # fmt: skip
from quantlab.portfolio.types import Side

FAULT_KINDS = ("lose_reply", "timeout_before", "missing_for", "snapshot_fail")
EPS = 1e-9

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS balances (
    asset TEXT PRIMARY KEY, free REAL NOT NULL, locked REAL NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL UNIQUE, symbol TEXT NOT NULL,
    side TEXT NOT NULL, type TEXT NOT NULL, tif TEXT, qty REAL NOT NULL, price REAL,
    status TEXT NOT NULL, executed_qty REAL NOT NULL DEFAULT 0, cum_quote REAL NOT NULL DEFAULT 0,
    time_ms INTEGER NOT NULL, update_ms INTEGER NOT NULL, lock_asset TEXT NOT NULL,
    lock_left REAL NOT NULL, bars_seen INTEGER NOT NULL DEFAULT 0,
    hidden_reads INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS trades (
    trade_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, order_seq INTEGER NOT NULL,
    client_id TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL, price REAL NOT NULL,
    fee REAL NOT NULL, fee_asset TEXT NOT NULL, time_ms INTEGER NOT NULL, maker INTEGER NOT NULL);
"""


class PaperState:
    """One venue's SQLite file; created with `initial` balances and clock `start_ms` when new."""

    def __init__(self, state_url: str, account: str, initial: dict[str, float], start_ms: int,
                 fault_seed: int) -> None:  # fmt: skip
        if not state_url.startswith("sqlite:///"):
            scheme = state_url.split("://")[0]
            raise ConfigError(
                f"the paper venue keeps its state in SQLite; pass sqlite:///path, not {scheme}://"
            )
        path = state_url.removeprefix("sqlite:///")
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.executescript(_SCHEMA)
        with self.tx() as db:
            stored = db.execute("SELECT value FROM meta WHERE key='account'").fetchone()
            if stored is None:
                meta = {"account": account, "now_ms": start_ms, "next_trade": 1, "faults": [],
                        "fault_rate": 0.0, "fault_seed": fault_seed, "draws": 0,
                        "faults_injected": 0}  # fmt: skip
                db.executemany("INSERT INTO meta VALUES (?, ?)",
                               [(k, json.dumps(v)) for k, v in meta.items()])  # fmt: skip
                db.executemany("INSERT INTO balances VALUES (?, ?, 0)", list(initial.items()))
            elif (held := json.loads(stored["value"])) != account:
                raise ConfigError(
                    f"{path} holds the paper account {held!r}, not {account!r}; pass another "
                    "state file for another account"
                )

    @contextmanager
    def tx(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def get(self, key: str, db=None):
        row = (db or self._db).execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0])

    def set(self, db, key: str, value) -> None:
        db.execute("UPDATE meta SET value=? WHERE key=?", (json.dumps(value), key))

    # --- balances ------------------------------------------------------------------------
    def free(self, db, asset: str) -> float:
        row = db.execute("SELECT free FROM balances WHERE asset=?", (asset,)).fetchone()
        return row["free"] if row else 0.0

    def move(self, db, asset: str, free: float, locked: float) -> None:
        """Add to an asset's free and locked; float dust is 0, a real negative an error."""
        row = db.execute("SELECT free, locked FROM balances WHERE asset=?", (asset,)).fetchone()
        f0, l0 = (row["free"], row["locked"]) if row else (0.0, 0.0)
        f, lk = f0 + free, l0 + locked
        # a sum of locks released one by one ends at 1e-11, not 0
        f = 0.0 if abs(f) <= EPS * max(abs(f0), abs(free), 1.0) else f
        lk = 0.0 if abs(lk) <= EPS * max(abs(l0), abs(locked), 1.0) else lk
        if f < 0 or lk < 0:
            raise RuntimeError(
                f"paper venue bug: {asset} would go negative (free {f}, locked {lk})"
            )
        db.execute("INSERT OR REPLACE INTO balances VALUES (?, ?, ?)", (asset, f, lk))

    def balances(self) -> dict[str, Balance]:
        rows = self._db.execute("SELECT * FROM balances ORDER BY asset").fetchall()
        return {r["asset"]: Balance(r["asset"], r["free"], r["locked"]) for r in rows}

    # --- orders and trades -----------------------------------------------------------------
    def insert_order(self, db, it: OrderIntent, now: int, asset: str, amount: float) -> dict:
        db.execute(
            "INSERT INTO orders (client_id, symbol, side, type, tif, qty, price, status, time_ms,"
            " update_ms, lock_asset, lock_left) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (it.client_id, it.symbol, str(it.side), str(it.type), it.tif and str(it.tif), it.qty,
             it.price, str(OrderStatus.NEW), now, now, asset, amount),
        )  # fmt: skip
        return self.row(db, it.client_id)

    def hide(self, db, client_id: str, reads: int) -> None:
        db.execute("UPDATE orders SET hidden_reads=? WHERE client_id=?", (reads, client_id))

    def row(self, db, client_id: str, symbol: str | None = None) -> dict | None:
        row = db.execute("SELECT * FROM orders WHERE client_id=?", (client_id,)).fetchone()
        return None if row is None or (symbol and row["symbol"] != symbol) else dict(row)

    def rows(self, db, where: str, args: tuple = ()) -> list[dict]:
        return [dict(r) for r in db.execute(f"SELECT * FROM orders WHERE {where}", args)]

    def save(self, db, o: dict) -> None:
        """Write an order back; a terminal order's unused lock goes back to free."""
        if OrderStatus(o["status"]).terminal and o["lock_left"] > 0:
            self.move(db, o["lock_asset"], o["lock_left"], -o["lock_left"])
            o["lock_left"] = 0.0
        db.execute("UPDATE orders SET status=?, executed_qty=?, cum_quote=?, update_ms=?,"
                   " lock_left=?, bars_seen=? WHERE seq=?",
                   (o["status"], o["executed_qty"], o["cum_quote"], o["update_ms"],
                    o["lock_left"], o["bars_seen"], o["seq"]))  # fmt: skip

    def add_trade(self, db, o: dict, side: Side, qty, price, fee, fee_asset, t, maker) -> None:
        """One execution under the next "<symbol>-<n>" id, unique per venue."""
        n = self.get("next_trade", db)
        self.set(db, "next_trade", n + 1)
        db.execute("INSERT INTO trades VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (f"{o['symbol']}-{n}", o["symbol"], o["seq"], o["client_id"], str(side), qty,
                    price, fee, fee_asset, t, int(maker)))  # fmt: skip
        o["executed_qty"] += qty
        o["cum_quote"] += qty * price

    def visible(self, db, row: dict | None) -> bool:
        """A read of `row`: False (and one read used) while a missing_for fault hides it."""
        if row is None:
            return False
        if row["hidden_reads"] > 0:
            db.execute("UPDATE orders SET hidden_reads = hidden_reads - 1 WHERE seq=?",
                       (row["seq"],))  # fmt: skip
            return False
        return True

    def report(self, db, o: dict) -> OrderReport:
        trades = tuple(
            VenueTrade(t["symbol"], t["trade_id"], str(o["seq"]), t["client_id"], Side(t["side"]),
                       t["qty"], t["price"], t["fee"], t["fee_asset"], t["time_ms"],
                       bool(t["maker"]))
            for t in db.execute("SELECT * FROM trades WHERE order_seq=? ORDER BY rowid",
                                (o["seq"],))
        )  # fmt: skip
        return OrderReport(o["symbol"], o["client_id"], str(o["seq"]), OrderStatus(o["status"]),
                           Side(o["side"]), OrderType(o["type"]), o["qty"], o["executed_qty"],
                           o["cum_quote"], o["price"], o["time_ms"], o["update_ms"], trades)  # fmt: skip

    # --- faults --------------------------------------------------------------------------
    def faults(self) -> tuple:
        return tuple(tuple(f) if isinstance(f, list) else f for f in self.get("faults"))

    def set_faults(self, entries) -> None:
        for f in entries:
            if isinstance(f, str):
                ok = f in FAULT_KINDS and f != "missing_for"
            else:
                ok = len(f) == 2 and f[0] == "missing_for" and isinstance(f[1], int) and f[1] >= 1
            if not ok:
                raise ValueError(f"unknown fault {f!r}; use lose_reply, timeout_before, "
                                 "snapshot_fail or ('missing_for', N >= 1)")  # fmt: skip
        with self.tx() as db:
            self.set(db, "faults", [list(f) if isinstance(f, tuple) else f for f in entries])

    def scripted(self, db, kinds: tuple[str, ...]):
        """Consume the first scripted fault of `kinds` (None when there is none)."""
        script = self.get("faults", db)
        for i, f in enumerate(script):
            if (f[0] if isinstance(f, list) else f) in kinds:
                self.set(db, "faults", script[:i] + script[i + 1 :])
                self.set(db, "faults_injected", self.get("faults_injected", db) + 1)
                return tuple(f) if isinstance(f, list) else f
        return None

    def draw(self, db, kinds: tuple[str, ...]):
        """A random fault of `kinds` with probability `fault_rate`, seeded per draw so a
        restarted venue goes on with the same sequence."""
        rate = self.get("fault_rate", db)
        if rate <= 0.0:
            return None
        n = self.get("draws", db)
        self.set(db, "draws", n + 1)
        rng = random.Random(f"{self.get('fault_seed', db)}:{n}")
        if rng.random() >= rate:
            return None
        self.set(db, "faults_injected", self.get("faults_injected", db) + 1)
        kind = rng.choice(kinds)
        return ("missing_for", rng.randint(1, 3)) if kind == "missing_for" else kind
