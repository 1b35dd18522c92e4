"""Storage for virtual positions (the monitor's view of each opened position), their events,
and round trips (entry to flat, with the model's score at entry). Logic lives in
quantlab.execution.virtual and recorder; this module only reads and writes rows."""

from __future__ import annotations

from typing import Any

from quantlab.execution.ledger.db import Tx
from quantlab.execution.ledger.errors import LedgerError
from quantlab.execution.ledger.records import dumps

OPEN_FIELDS = ("symbol", "side", "qty", "entry_price", "entry_ms", "take_profit", "stop_loss",
               "expires_ms", "entry_score", "entry_class")  # fmt: skip
UPDATE_FIELDS = ("qty", "last_price", "max_pnl", "min_pnl", "status", "closed_ms", "close_reason")
ROUND_TRIP_FIELDS = ("symbol", "side", "qty", "entry_ms", "entry_price", "exit_ms", "exit_price",
                     "pnl", "fees", "entry_score", "entry_class", "exit_reason")  # fmt: skip
_STATUSES = ("open", "closed")


def _check(fields: dict[str, Any], allowed: tuple[str, ...], what: str, required: bool) -> None:
    unknown = sorted(set(fields) - set(allowed))
    missing = sorted(set(allowed) - set(fields)) if required else []
    if unknown or missing:
        raise LedgerError(
            f"{what}: unknown fields {unknown}, missing {missing}; expected {list(allowed)}"
        )
    if fields.get("status", "open") not in _STATUSES:
        raise LedgerError(f"{what}: status {fields['status']!r} is not one of {_STATUSES}")


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


def vpos_open(tx: Tx, account: str, fields: dict[str, Any]) -> int:
    _check(fields, OPEN_FIELDS, "vpos_open", required=True)
    values = [_value(fields[f]) for f in OPEN_FIELDS]
    row = tx.one(
        f"INSERT INTO virtual_positions (account, {', '.join(OPEN_FIELDS)}, status, max_pnl, "
        f"min_pnl) VALUES (?, {', '.join('?' for _ in OPEN_FIELDS)}, 'open', 0, 0) RETURNING id",
        [account, *values],
    )
    return int(row[0])


def vpos_update(tx: Tx, vpos_id: int, fields: dict[str, Any], events: list[dict[str, Any]]) -> None:
    _check(fields, UPDATE_FIELDS, "vpos_update", required=False)
    row = tx.one(
        "SELECT account, symbol FROM virtual_positions WHERE id = ?" + tx.for_update, (vpos_id,)
    )
    if row is None:
        raise LedgerError(f"no virtual position {vpos_id}; open it with vpos_open first")
    if fields:
        sets = ", ".join(f"{name} = ?" for name in fields)
        tx.run(
            f"UPDATE virtual_positions SET {sets} WHERE id = ?",
            [*map(_value, fields.values()), vpos_id],
        )
    for event in events:
        extra = sorted(set(event) - {"kind", "price", "pnl", "at_ms", "detail"})
        if extra or "kind" not in event or "at_ms" not in event:
            raise LedgerError(
                f"virtual position event {event} needs kind and at_ms; unknown keys {extra}"
            )
        tx.run(
            "INSERT INTO virtual_position_events (vpos_id, account, symbol, kind, price, pnl, at_ms, "
            "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (vpos_id, row[0], row[1], event["kind"], event.get("price"), event.get("pnl"),
             int(event["at_ms"]), dumps(event.get("detail"))),
        )  # fmt: skip


def vpos_list(tx: Tx, account: str, status: str | None) -> list[dict[str, Any]]:
    sql, params = "SELECT *, id AS vpos_id FROM virtual_positions WHERE account = ?", [account]
    if status is not None:
        sql, params = sql + " AND status = ?", [*params, status]
    return tx.dicts(sql + " ORDER BY id", params)


def record_round_trip(tx: Tx, account: str, rt: dict[str, Any]) -> bool:
    _check(rt, ROUND_TRIP_FIELDS, "record_round_trip", required=True)
    inserted = tx.run(
        f"INSERT INTO round_trips (account, {', '.join(ROUND_TRIP_FIELDS)}) VALUES "
        f"(?, {', '.join('?' for _ in ROUND_TRIP_FIELDS)}) "
        "ON CONFLICT (account, symbol, entry_ms, exit_ms) DO NOTHING",
        [account, *(_value(rt[f]) for f in ROUND_TRIP_FIELDS)],
    )
    return inserted == 1
