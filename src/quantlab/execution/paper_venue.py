"""The simulated venue: orders fill against recorded bars with the backtest's prices and costs.

A MARKET order placed at venue time t (the decision bar's close = the next bar's open_time) fills
at the first bar of its symbol opening at or after t, once the clock has passed that bar's close,
at `matching.market_price` with `costs.slippage_fraction` fed by `costs.impact_inputs` over the
venue's bars: the same inputs the backtest engine uses, so the same order on the same bars gets
the same price (the EWMA sigma starts at the first bar passed, so pass the backtest's window).
LIMIT orders follow `matching.limit_fill` bar by bar; fees follow `matching.fee_for`.

Everything the venue knows (orders, trades, balances, clock, fault script) lives in its own
SQLite file, one transaction per state change, so a restarted process sees every order placed
before. Where the venue parts from Binance: a client id is never reused (Binance frees it once
the order is closed), IOC/FOK are judged on the first bar instead of the book at placement, and
spot has no reduce-only exemption from the min notional (Binance's rule, stricter than the
engine's).
"""

from __future__ import annotations

import bisect
import json
import random
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import polars as pl

from quantlab.errors import ConfigError
from quantlab.execution import matching
from quantlab.execution.planner import lock_for
from quantlab.execution.types import (
    Ack,
    Balance,
    OrderIntent,
    OrderReport,
    OrderStatus,
    OrderType,
    Rejected,
    SubmitResult,
    TimeInForce,
    Unknown,
    VenueSnapshot,
    VenueTrade,
)  # fmt: skip
from quantlab.portfolio.costs import CostModel, impact_inputs, slippage_fraction
from quantlab.portfolio.types import RejectReason, Side
from quantlab.portfolio.venue import VenueRules, check_order_for, floor_to_step

INSUFFICIENT = "Account has insufficient balance for requested action."
FAULT_KINDS = ("lose_reply", "timeout_before", "missing_for", "snapshot_fail")
_EPS = 1e-9

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, free REAL NOT NULL, locked REAL NOT NULL);
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


@dataclass(frozen=True)
class _Bars:
    """One symbol's bars as arrays, with the engine's impact inputs per bar."""

    ms: list[int]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    prev_qv: np.ndarray
    sigma: np.ndarray

    def prices(self, k: int) -> matching.BarPrices:
        return matching.BarPrices(self.ms[k], float(self.open[k]), float(self.high[k]),
                                  float(self.low[k]), float(self.close[k]), float(self.volume[k]))  # fmt: skip


def _symbol_bars(bars: pl.DataFrame, lam: float) -> dict[str, _Bars]:
    """Per symbol, as `backtest.arrays.prepare_inputs` builds them: quote volume (else volume x
    close) and `impact_inputs` over the symbol's own bars (a grid gap carries the state there)."""
    out = {}
    frame = bars.with_columns(
        pl.col("open_time").dt.epoch("ms").alias("_ms"),
        pl.coalesce(pl.col("quote_volume").cast(pl.Float64), pl.col("volume") * pl.col("close")).alias("_qv"),
    ).sort("symbol", "open_time")  # fmt: skip
    for (symbol,), g in frame.group_by("symbol", maintain_order=True):
        col = {
            c: g[c].cast(pl.Float64).to_numpy()
            for c in ("open", "high", "low", "close", "volume", "_qv")
        }
        one = [col[c].reshape(-1, 1).copy() for c in ("open", "close", "_qv")]
        prev_qv, sigma = impact_inputs(*one, np.ones((g.height, 1), dtype=np.bool_), lam)
        out[symbol] = _Bars(g["_ms"].to_list(), col["open"], col["high"], col["low"], col["close"],
                            col["volume"], prev_qv[:, 0], sigma[:, 0])  # fmt: skip
    return out


class PaperVenue:
    """`types.Broker` on recorded bars, its state in a SQLite file (`sqlite:///path`).

    The clock starts at the first bar's open_time and only moves forward (`advance`). A BUY
    locks `planner.lock_for` (quote at the reference price plus `MARKET_BUY_BUFFER` for a market
    order, at the limit for a limit), a SELL its base qty; short of free balance the order is
    Rejected(-2010, INSUFFICIENT). A fill costing more than the order's lock plus the free
    quote is cut to what the balance allows and the rest EXPIRES (Binance's market remainder).

    Faults for tests, persisted with the state and consumed in order:
    - `venue.faults = ("lose_reply", ("missing_for", 2), "timeout_before", "snapshot_fail")`
      (assign a new tuple; the property returns a copy). "lose_reply": the next submit places
      the order and returns Unknown("reply lost"); "timeout_before": the next submit returns
      Unknown without placing; ("missing_for", N): the next placed order is invisible to the next
      N reads (query, cancel, snapshot) of it; "snapshot_fail": the next snapshot is incomplete.
    - `venue.fault_rate = x`: each submit and snapshot draws (seeded by `fault_seed`, reproducible
      across restarts) a fault of those kinds with probability x; `venue.faults_injected` counts
      scripted and random faults.
    """

    name = "paper"

    def __init__(self, state_url: str, account: str, bars: pl.DataFrame, interval_ms: int,
                 rules: VenueRules, assets: dict[str, tuple[str, str]], costs: CostModel,
                 max_participation: float, initial_balances: dict[str, float],
                 fault_seed: int = 0) -> None:  # fmt: skip
        if not state_url.startswith("sqlite:///"):
            raise ConfigError(
                f"the paper venue keeps its state in SQLite; pass sqlite:///path, not {state_url.split('://')[0]}://..."
            )
        missing = {
            "symbol",
            "open_time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_volume",
        } - set(bars.columns)
        if missing:
            raise ValueError(
                f"bars lack {sorted(missing)}; pass klines with OHLC, volume and quote_volume"
            )
        self.account, self.interval_ms, self.rules, self.assets = (
            account,
            interval_ms,
            rules,
            assets,
        )
        self.costs, self.max_participation = costs, max_participation
        self._bars = _symbol_bars(bars, costs.ewma_lambda)
        self._db = sqlite3.connect(
            state_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30
        )
        self._db.row_factory = sqlite3.Row
        self._db.executescript(_SCHEMA)
        with self._tx() as db:
            stored = db.execute("SELECT value FROM meta WHERE key='account'").fetchone()
            if stored is None:
                start = min((b.ms[0] for b in self._bars.values()), default=0)
                meta = {"account": account, "now_ms": start, "next_trade": 1, "faults": [],
                        "fault_rate": 0.0, "fault_seed": fault_seed, "draws": 0, "faults_injected": 0}  # fmt: skip
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()]
                )
                db.executemany(
                    "INSERT INTO balances VALUES (?, ?, 0)", list(initial_balances.items())
                )
            elif json.loads(stored["value"]) != account:
                raise ConfigError(
                    f"{state_url} holds the paper account {json.loads(stored['value'])!r}, not {account!r}; use another state file"
                )

    # --- persistence helpers -------------------------------------------------------------
    @contextmanager
    def _tx(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _get(self, key: str, db=None):
        return json.loads(
            (db or self._db).execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()[0]
        )

    def _set(self, db, key: str, value) -> None:
        db.execute("UPDATE meta SET value=? WHERE key=?", (json.dumps(value), key))

    def _move(self, db, asset: str, free: float, locked: float) -> None:
        """Add to an asset's free and locked; a float-dust negative is 0, a real one an error."""
        row = db.execute("SELECT free, locked FROM balances WHERE asset=?", (asset,)).fetchone()
        f, lk = (row["free"], row["locked"]) if row else (0.0, 0.0)
        f, lk = f + free, lk + locked
        # float dust: a sum of locks released one by one is 1e-11, not 0
        f = 0.0 if abs(f) <= _EPS * max(abs(f - free), abs(free), 1.0) else f
        lk = 0.0 if abs(lk) <= _EPS * max(abs(lk - locked), abs(locked), 1.0) else lk
        if f < 0 or lk < 0:
            raise RuntimeError(
                f"paper venue bug: {asset} would go negative (free {f}, locked {lk})"
            )
        db.execute(
            "INSERT OR REPLACE INTO balances VALUES (?, ?, ?)", (asset, max(f, 0.0), max(lk, 0.0))
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PaperVenue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- faults ------------------------------------------------------------------------
    @property
    def faults(self) -> tuple:
        return tuple(tuple(f) if isinstance(f, list) else f for f in self._get("faults"))

    @faults.setter
    def faults(self, entries) -> None:
        for f in entries:
            ok = (
                f in FAULT_KINDS and f != "missing_for"
                if isinstance(f, str)
                else (len(f) == 2 and f[0] == "missing_for" and isinstance(f[1], int) and f[1] >= 1)
            )
            if not ok:
                raise ValueError(
                    f"unknown fault {f!r}; use lose_reply, timeout_before, snapshot_fail or ('missing_for', N >= 1)"
                )
        with self._tx() as db:
            self._set(db, "faults", [list(f) if isinstance(f, tuple) else f for f in entries])

    @property
    def fault_rate(self) -> float:
        return self._get("fault_rate")

    @fault_rate.setter
    def fault_rate(self, x: float) -> None:
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"fault_rate is a probability in [0, 1], got {x}")
        with self._tx() as db:
            self._set(db, "fault_rate", float(x))

    @property
    def faults_injected(self) -> int:
        return self._get("faults_injected")

    def _scripted(self, db, kinds: tuple[str, ...]):
        """Consume the first scripted fault of `kinds` (None when there is none)."""
        script = self._get("faults", db)
        for i, f in enumerate(script):
            if (f[0] if isinstance(f, list) else f) in kinds:
                self._set(db, "faults", script[:i] + script[i + 1 :])
                self._set(db, "faults_injected", self._get("faults_injected", db) + 1)
                return tuple(f) if isinstance(f, list) else f
        return None

    def _draw(self, db, kinds: tuple[str, ...]):
        """A random fault of `kinds` with probability `fault_rate`, seeded per draw."""
        rate = self._get("fault_rate", db)
        if rate <= 0.0:
            return None
        n = self._get("draws", db)
        self._set(db, "draws", n + 1)
        rng = random.Random(f"{self._get('fault_seed', db)}:{n}")
        if rng.random() >= rate:
            return None
        self._set(db, "faults_injected", self._get("faults_injected", db) + 1)
        kind = rng.choice(kinds)
        return ("missing_for", rng.randint(1, 3)) if kind == "missing_for" else kind

    # --- Broker ------------------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        return self._get("now_ms")

    def submit(self, intent: OrderIntent) -> SubmitResult:
        with self._tx() as db:
            fault = self._scripted(db, ("lose_reply", "timeout_before")) or self._draw(
                db, ("lose_reply", "timeout_before", "missing_for")
            )
            if fault == "timeout_before":
                return Unknown("timeout: the order never reached the paper venue (injected)")
            result = self._place(db, intent)
            if isinstance(result, Ack):
                hide = fault if isinstance(fault, tuple) else self._scripted(db, ("missing_for",))
                if isinstance(hide, tuple):
                    db.execute(
                        "UPDATE orders SET hidden_reads=? WHERE client_id=?",
                        (hide[1], intent.client_id),
                    )
            if fault == "lose_reply":
                return Unknown("reply lost (injected): the order may exist; query it")
            return result

    def _place(self, db, it: OrderIntent) -> SubmitResult:
        if (
            it.symbol not in self._bars
            or it.symbol not in self.assets
            or it.symbol not in self.rules.symbols
        ):
            return Rejected(-1121, "Invalid symbol.")
        if db.execute("SELECT 1 FROM orders WHERE client_id=?", (it.client_id,)).fetchone():
            return Rejected(-2010, "Duplicate order sent.")
        i = self.rules.index(it.symbol)
        step, tick = float(self.rules.step_size[i]), float(self.rules.tick_size[i])
        if it.type is OrderType.LIMIT:
            if it.tif is None:
                return Rejected(
                    -1102,
                    "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
                )
            if (
                it.price is None
                or it.price <= 0
                or (tick > 0 and abs(round(it.price / tick) * tick - it.price) > _EPS * it.price)
            ):
                return Rejected(-1013, "Filter failure: PRICE_FILTER")
        if it.qty <= 0 or abs(floor_to_step(it.qty, step) - it.qty) > _EPS * it.qty:
            return Rejected(-1013, "Filter failure: LOT_SIZE")
        ref = it.price if it.type is OrderType.LIMIT else it.reference_price
        reason = check_order_for(self.rules, it.symbol, it.qty, ref, reduce_only=False)
        if reason is not None:
            name = "NOTIONAL" if reason is RejectReason.MIN_NOTIONAL else "LOT_SIZE"
            return Rejected(-1013, f"Filter failure: {name}")
        asset, amount = lock_for(it, self.costs.taker, self.assets)
        row = db.execute("SELECT free FROM balances WHERE asset=?", (asset,)).fetchone()
        if (row["free"] if row else 0.0) < amount * (1.0 - _EPS):
            return Rejected(-2010, INSUFFICIENT)
        self._move(db, asset, -amount, amount)
        now = self._get("now_ms", db)
        db.execute(
            "INSERT INTO orders (client_id, symbol, side, type, tif, qty, price, status, time_ms,"
            " update_ms, lock_asset, lock_left) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (it.client_id, it.symbol, str(it.side), str(it.type), it.tif and str(it.tif), it.qty,
             it.price, str(OrderStatus.NEW), now, now, asset, amount),
        )  # fmt: skip
        return Ack(self._report(db, self._row(db, it.client_id)))

    def advance(self, now_ms: int) -> None:
        """Match every open order against the bars that closed by `now_ms` (sells first)."""
        with self._tx() as db:
            if now_ms <= self._get("now_ms", db):
                return
            rows = db.execute("SELECT * FROM orders WHERE status IN ('NEW', 'PARTIALLY_FILLED')"
                              " ORDER BY side = 'BUY', seq").fetchall()  # fmt: skip
            for row in rows:
                self._match(db, dict(row), now_ms)
            self._set(db, "now_ms", now_ms)

    def _match(self, db, o: dict, now_ms: int) -> None:
        b = self._bars[o["symbol"]]
        side = Side(o["side"])
        i = self.rules.index(o["symbol"])
        step, tick = float(self.rules.step_size[i]), float(self.rules.tick_size[i])
        k = bisect.bisect_left(b.ms, o["time_ms"]) + o["bars_seen"]
        status = OrderStatus(o["status"])
        while status.open and k < len(b.ms) and b.ms[k] + self.interval_ms <= now_ms:
            left = o["qty"] - o["executed_qty"]
            first = o["bars_seen"] == 0
            if o["type"] == OrderType.MARKET:
                j = self.costs.symbols.index(o["symbol"])
                frac = slippage_fraction(left * b.open[k], b.prev_qv[k], b.sigma[k],
                                         self.costs.half_spread[j], self.costs.impact_coef[j])  # fmt: skip
                qty, price = left, matching.market_price(side, float(b.open[k]), frac, tick)
            else:
                qty, price = matching.limit_fill(
                    side, o["price"], left, b.prices(k), self.max_participation, step
                )
                if o["tif"] == TimeInForce.FOK and qty < left * (1.0 - _EPS):
                    qty = 0.0
            done = self._fill(db, o, side, qty, price, not first, b.ms[k], step) if qty > 0 else 0.0
            o["bars_seen"] += 1
            o["update_ms"] = b.ms[k] if done > 0 else o["update_ms"]
            left -= done
            if left <= _EPS * o["qty"]:
                status = OrderStatus.FILLED
            elif (
                done < qty
                or o["type"] == OrderType.MARKET
                or o["tif"] in (TimeInForce.IOC, TimeInForce.FOK)
            ):
                status = OrderStatus.EXPIRED
                o["update_ms"] = b.ms[k]
            elif o["executed_qty"] > 0:
                status = OrderStatus.PARTIALLY_FILLED
            k += 1
        o["status"] = str(status)
        self._save(db, o)

    def _fill(
        self, db, o: dict, side: Side, qty: float, price: float, maker: bool, t: int, step: float
    ) -> float:
        """Book one execution; a buy is cut to what its lock and the free quote pay. The qty filled."""
        base, quote = self.assets[o["symbol"]]
        if side is Side.BUY:
            row = db.execute("SELECT free FROM balances WHERE asset=?", (quote,)).fetchone()
            can = o["lock_left"] + (row["free"] if row else 0.0)
            if qty * price > can:
                qty = float(floor_to_step(can / price, step))
            if qty <= 0:
                return 0.0
            cost = qty * price
            from_lock = min(cost, o["lock_left"])
            self._move(db, quote, -(cost - from_lock), -from_lock)
            o["lock_left"] -= from_lock
        else:
            qty = min(qty, o["lock_left"])
            self._move(db, base, 0.0, -qty)
            o["lock_left"] -= qty
        rate = self.costs.maker if maker else self.costs.taker
        fee, fee_asset = matching.fee_for(side, qty, price, rate, base, quote)
        if side is Side.BUY:
            self._move(db, base, qty - fee, 0.0)
        else:
            self._move(db, quote, qty * price - fee, 0.0)
        n = self._get("next_trade", db)
        self._set(db, "next_trade", n + 1)
        db.execute("INSERT INTO trades VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (f"{o['symbol']}-{n}", o["symbol"], o["seq"], o["client_id"], str(side), qty,
                    price, fee, fee_asset, t, int(maker)))  # fmt: skip
        o["executed_qty"] += qty
        o["cum_quote"] += qty * price
        return qty

    def _save(self, db, o: dict) -> None:
        if OrderStatus(o["status"]).terminal and o["lock_left"] > 0:
            self._move(db, o["lock_asset"], o["lock_left"], -o["lock_left"])
            o["lock_left"] = 0.0
        db.execute("UPDATE orders SET status=?, executed_qty=?, cum_quote=?, update_ms=?, lock_left=?,"
                   " bars_seen=? WHERE seq=?", (o["status"], o["executed_qty"], o["cum_quote"],
                   o["update_ms"], o["lock_left"], o["bars_seen"], o["seq"]))  # fmt: skip

    def _row(self, db, client_id: str, symbol: str | None = None):
        row = db.execute("SELECT * FROM orders WHERE client_id=?", (client_id,)).fetchone()
        return None if row is None or (symbol and row["symbol"] != symbol) else dict(row)

    def _visible(self, db, row: dict | None) -> bool:
        """A read of `row`: False (and one read used) while a missing_for fault hides it."""
        if row is None:
            return False
        if row["hidden_reads"] > 0:
            db.execute(
                "UPDATE orders SET hidden_reads = hidden_reads - 1 WHERE seq=?", (row["seq"],)
            )
            return False
        return True

    def _report(self, db, o: dict) -> OrderReport:
        trades = tuple(
            VenueTrade(t["symbol"], t["trade_id"], str(o["seq"]), t["client_id"], Side(t["side"]),
                       t["qty"], t["price"], t["fee"], t["fee_asset"], t["time_ms"], bool(t["maker"]))
            for t in db.execute("SELECT * FROM trades WHERE order_seq=? ORDER BY rowid", (o["seq"],))
        )  # fmt: skip
        return OrderReport(o["symbol"], o["client_id"], str(o["seq"]), OrderStatus(o["status"]),
                           Side(o["side"]), OrderType(o["type"]), o["qty"], o["executed_qty"],
                           o["cum_quote"], o["price"], o["time_ms"], o["update_ms"], trades)  # fmt: skip

    def query(self, symbol: str, client_id: str) -> OrderReport | None:
        with self._tx() as db:
            row = self._row(db, client_id, symbol)
            return self._report(db, row) if self._visible(db, row) else None

    def cancel(self, symbol: str, client_id: str) -> OrderReport | None:
        with self._tx() as db:
            row = self._row(db, client_id, symbol)
            if not self._visible(db, row):
                return None
            if OrderStatus(row["status"]).open:
                row["status"], row["update_ms"] = str(OrderStatus.CANCELED), self._get("now_ms", db)
                self._save(db, row)
            return self._report(db, row)

    def balances(self) -> dict[str, Balance]:
        rows = self._db.execute("SELECT * FROM balances ORDER BY asset").fetchall()
        return {r["asset"]: Balance(r["asset"], r["free"], r["locked"]) for r in rows}

    def snapshot(self, symbols: list[str], since_ms: int) -> VenueSnapshot:
        with self._tx() as db:
            if self._scripted(db, ("snapshot_fail",)) or self._draw(db, ("snapshot_fail",)):
                return VenueSnapshot(
                    (), (), (), {}, complete=False, errors=("snapshot read failed (injected)",)
                )
            marks = ",".join("?" * len(symbols))
            rows = [dict(r) for r in db.execute(
                f"SELECT * FROM orders WHERE symbol IN ({marks}) AND (status IN ('NEW', 'PARTIALLY_FILLED')"
                " OR time_ms >= ? OR update_ms >= ?) ORDER BY seq", (*symbols, since_ms, since_ms))]  # fmt: skip
            shown = [self._report(db, r) for r in rows if self._visible(db, r)]
            trades = tuple(t for r in shown for t in r.trades if t.time_ms >= since_ms)
            return VenueSnapshot(
                open_orders=tuple(r for r in shown if r.status.open),
                recent_orders=tuple(r for r in shown if r.time_ms >= since_ms or r.update_ms >= since_ms),
                trades=trades, balances=self.balances(),
            )  # fmt: skip
