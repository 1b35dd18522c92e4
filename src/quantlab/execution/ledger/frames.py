"""The ledger's tables as polars frames, with a fixed schema even when empty."""

from __future__ import annotations

import polars as pl

from quantlab.execution.ledger.db import Tx
from quantlab.execution.ledger.records import ORDER_COLUMNS

FILLS = {
    "account": pl.String, "symbol": pl.String, "trade_id": pl.String, "client_id": pl.String,
    "side": pl.String, "qty": pl.Float64, "price": pl.Float64, "fee": pl.Float64,
    "fee_asset": pl.String, "time_ms": pl.Int64, "maker": pl.Boolean,
}  # fmt: skip
ORDERS = {
    "client_id": pl.String, "key": pl.String, "account": pl.String, "symbol": pl.String,
    "side": pl.String, "type": pl.String, "tif": pl.String, "qty": pl.Float64,
    "price": pl.Float64, "status": pl.String, "venue_order_id": pl.String,
    "executed_qty": pl.Float64, "cum_quote": pl.Float64, "decision_ms": pl.Int64,
    "target_weight": pl.Float64, "source": pl.String, "reference_price": pl.Float64,
    "note": pl.String, "missing_count": pl.Int64, "created_ms": pl.Int64, "updated_ms": pl.Int64,
    "locked_asset": pl.String, "locked_amount": pl.Float64,
}  # fmt: skip
EQUITY = {
    "time_ms": pl.Int64,
    "equity": pl.Float64,
    "cash": pl.Float64,
    "gross_exposure": pl.Float64,
}
VPOS_EVENTS = {
    "seq": pl.Int64, "vpos_id": pl.Int64, "symbol": pl.String, "kind": pl.String,
    "price": pl.Float64, "pnl": pl.Float64, "at_ms": pl.Int64, "detail": pl.String,
}  # fmt: skip
ROUND_TRIPS = {
    "symbol": pl.String, "side": pl.String, "qty": pl.Float64, "entry_ms": pl.Int64,
    "entry_price": pl.Float64, "exit_ms": pl.Int64, "exit_price": pl.Float64, "pnl": pl.Float64,
    "fees": pl.Float64, "entry_score": pl.Float64, "entry_class": pl.String,
    "exit_reason": pl.String,
}  # fmt: skip


def _frame(
    tx: Tx, columns: str, table: str, where: str, order: str, params, schema
) -> pl.DataFrame:
    rows = tx.all(f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {order}", params)
    return pl.DataFrame(rows, schema=schema, orient="row")


def fills(tx: Tx, account: str) -> pl.DataFrame:
    schema = {**FILLS, "maker": pl.Int64}  # stored as 0/1 on both dialects
    frame = _frame(
        tx, ", ".join(FILLS), "fills", "account = ?", "time_ms, trade_id", (account,), schema
    )
    return frame.with_columns(pl.col("maker").cast(pl.Boolean))


def orders(tx: Tx, account: str) -> pl.DataFrame:
    return _frame(
        tx,
        ", ".join(ORDER_COLUMNS),
        "orders",
        "account = ?",
        "created_ms, client_id",
        (account,),
        ORDERS,
    )


def equity(tx: Tx, account: str) -> pl.DataFrame:
    return _frame(tx, ", ".join(EQUITY), "equity", "account = ?", "time_ms", (account,), EQUITY)


def vpos_events(tx: Tx, account: str) -> pl.DataFrame:
    return _frame(
        tx,
        ", ".join(VPOS_EVENTS),
        "virtual_position_events",
        "account = ?",
        "seq",
        (account,),
        VPOS_EVENTS,
    )


def round_trips(tx: Tx, account: str) -> pl.DataFrame:
    return _frame(
        tx,
        ", ".join(ROUND_TRIPS),
        "round_trips",
        "account = ?",
        "entry_ms, symbol",
        (account,),
        ROUND_TRIPS,
    )
