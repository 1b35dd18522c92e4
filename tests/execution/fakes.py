"""An in-memory stand-in for the parts of `quantlab.execution.ledger.Ledger` that the breakers,
virtual positions and recorder use, written to the contract (CONTRACT17, "Ledger (lane L)").

It checks what the real ledger must refuse (unknown vpos fields, a round trip with missing or
extra fields) so code that passes against it speaks the ledger's API. Assumed where the contract
is silent, and worth checking against the real ledger: a vpos row carries its id as `vpos_id`,
and `vpos_events` has the columns seq, vpos_id, symbol, kind, price, pnl, at_ms, detail (JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

VPOS_OPEN = {"symbol", "side", "qty", "entry_price", "entry_ms", "take_profit", "stop_loss", "expires_ms",
             "entry_score", "entry_class"}  # fmt: skip
VPOS_UPDATE = {"qty", "last_price", "max_pnl", "min_pnl", "status", "closed_ms", "close_reason"}
VPOS_EVENT = {"kind", "price", "pnl", "at_ms", "detail"}
ROUND_TRIP = {"symbol", "side", "qty", "entry_ms", "entry_price", "exit_ms", "exit_price", "pnl", "fees",
              "entry_score", "entry_class", "exit_reason"}  # fmt: skip
FILLS_SCHEMA = {"account": pl.String, "symbol": pl.String, "trade_id": pl.String, "client_id": pl.String,
                "side": pl.String, "qty": pl.Float64, "price": pl.Float64, "fee": pl.Float64,
                "fee_asset": pl.String, "time_ms": pl.Int64, "maker": pl.Boolean}  # fmt: skip
ORDERS_SCHEMA = {"client_id": pl.String, "account": pl.String, "symbol": pl.String, "side": pl.String,
                 "decision_ms": pl.Int64, "source": pl.String, "note": pl.String}  # fmt: skip


@dataclass(frozen=True)
class PositionRow:
    """The contract's PositionRow."""

    symbol: str
    qty: float
    avg_price: float
    realized_pnl: float
    opened_ms: int


class FakeLedger:
    def __init__(self) -> None:
        self._vpos: dict[int, dict] = {}
        self._vpos_events: list[dict] = []
        self._round_trips: list[dict] = []
        self._fills: list[dict] = []
        self._orders: list[dict] = []

    # virtual positions
    def vpos_open(self, account: str, fields: dict) -> int:
        if set(fields) != VPOS_OPEN:
            raise ValueError(
                f"vpos_open fields {sorted(set(fields) ^ VPOS_OPEN)} differ from the contract's"
            )
        vid = len(self._vpos) + 1
        self._vpos[vid] = {"vpos_id": vid, "account": account, **fields, "status": "open", "last_price": None,
                           "max_pnl": 0.0, "min_pnl": 0.0, "closed_ms": None, "close_reason": None}  # fmt: skip
        return vid

    def vpos_update(self, vpos_id: int, fields: dict, events: list[dict]) -> None:
        row = self._vpos[vpos_id]  # KeyError: no such virtual position
        if not set(fields) <= VPOS_UPDATE:
            raise ValueError(
                f"vpos_update fields {sorted(set(fields) - VPOS_UPDATE)} are not updatable"
            )
        if fields.get("status", "open") not in ("open", "closed"):
            raise ValueError(f"vpos status {fields['status']!r} is not 'open' or 'closed'")
        for e in events:
            if set(e) != VPOS_EVENT:
                raise ValueError(
                    f"vpos event keys {sorted(set(e) ^ VPOS_EVENT)} differ from the contract's"
                )
            seq = len(self._vpos_events) + 1
            self._vpos_events.append({"seq": seq, "vpos_id": vpos_id, "account": row["account"],
                                      "symbol": row["symbol"], **e, "detail": json.dumps(e["detail"])})  # fmt: skip
        row.update(fields)

    def vpos_list(self, account: str, status: str | None = "open") -> list[dict]:
        rows = [r for r in self._vpos.values() if r["account"] == account]
        return [dict(r) for r in rows if status is None or r["status"] == status]

    def vpos_events(self, account: str) -> pl.DataFrame:
        schema = {"seq": pl.Int64, "vpos_id": pl.Int64, "symbol": pl.String, "kind": pl.String,
                  "price": pl.Float64, "pnl": pl.Float64, "at_ms": pl.Int64, "detail": pl.String}  # fmt: skip
        rows = [{k: e[k] for k in schema} for e in self._vpos_events if e["account"] == account]
        return pl.DataFrame(rows, schema=schema)

    # round trips
    def record_round_trip(self, account: str, rt: dict) -> bool:
        if set(rt) != ROUND_TRIP:
            raise ValueError(
                f"round trip fields {sorted(set(rt) ^ ROUND_TRIP)} differ from the contract's"
            )
        key = (account, rt["symbol"], rt["entry_ms"], rt["exit_ms"])
        if any(
            (r["account"], r["symbol"], r["entry_ms"], r["exit_ms"]) == key
            for r in self._round_trips
        ):
            return False
        self._round_trips.append({"account": account, **rt})
        return True

    def round_trips(self, account: str) -> pl.DataFrame:
        rows = [r for r in self._round_trips if r["account"] == account]
        schema = {"account": pl.String, "symbol": pl.String, "side": pl.String, "qty": pl.Float64,
                  "entry_ms": pl.Int64, "entry_price": pl.Float64, "exit_ms": pl.Int64, "exit_price": pl.Float64,
                  "pnl": pl.Float64, "fees": pl.Float64, "entry_score": pl.Float64, "entry_class": pl.Int64,
                  "exit_reason": pl.String}  # fmt: skip
        return pl.DataFrame(rows, schema=schema)

    # fills and orders: test setup books them directly
    def book_fill(self, account: str, **fill: object) -> None:
        """A fill as `ledger.fills` returns it (maker defaults to False)."""
        self._fills.append({"account": account, "maker": False, **fill})

    def book_order(self, account: str, **order: object) -> None:
        """An order row with the columns the recorder reads from `orders_frame`."""
        self._orders.append({"account": account, "source": "targets@v1", "note": "", **order})

    def fills(self, account: str) -> pl.DataFrame:
        rows = [f for f in self._fills if f["account"] == account]
        return pl.DataFrame(rows, schema=FILLS_SCHEMA).sort("time_ms", "trade_id")

    def orders_frame(self, account: str) -> pl.DataFrame:
        return pl.DataFrame(
            [o for o in self._orders if o["account"] == account], schema=ORDERS_SCHEMA
        )
