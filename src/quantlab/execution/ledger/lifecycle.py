"""What happens to a booked order: the venue's answers, its reports, and settling lost orders.

The venue's report is the truth about an order, with one exception: a report never moves a
terminal order back to an open state (a late NEW after a FILLED is an old message, ignored). Terminal to terminal is the venue's call (CANCELED -> FILLED is the
cancel/fill race). Fills consume the lock in proportion to the quantity they fill; a terminal
status releases what is left.
"""

from __future__ import annotations

import dataclasses

from quantlab.execution.ledger.assets import symbol_assets
from quantlab.execution.ledger.db import Tx
from quantlab.execution.ledger.errors import LedgerError
from quantlab.execution.ledger.fills import book_trade
from quantlab.execution.ledger.orders import (
    Assets,
    get_order,
    insert_order,
    need_order,
    order_assets,
    order_event,
    release,
    save,
)
from quantlab.execution.ledger.records import LedgerOrder
from quantlab.portfolio.orders import (
    Ack,
    OrderReport,
    OrderStatus,
    Rejected,
    SubmitResult,
    Unknown,
    VenueTrade,
)

_TOL = 1e-9
_UNSENT = (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN)


def _over(amount: float, limit: float) -> bool:
    return amount > limit + _TOL * max(1.0, abs(limit))


def _booked_qty(tx: Tx, order: LedgerOrder) -> float:
    total = tx.scalar(
        "SELECT COALESCE(SUM(qty), 0) FROM fills WHERE account = ? AND client_id = ?",
        (order.account, order.client_id),
    )
    return float(total)


def _belongs(trade: VenueTrade, order: LedgerOrder, report: OrderReport) -> bool:
    if trade.symbol != order.symbol:
        return False
    ids = {order.venue_order_id, report.venue_order_id} - {None, ""}
    return trade.client_id == order.client_id or str(trade.venue_order_id) in ids


def _book(
    tx: Tx, order: LedgerOrder, report: OrderReport, trades, at_ms: int, via: str
) -> LedgerOrder:
    assets = order_assets(tx, order.client_id)
    booked = _booked_qty(tx, order)
    for trade in trades:
        if not _belongs(trade, order, report):
            raise LedgerError(
                f"trade {trade.trade_id} ({trade.symbol}, order {trade.venue_order_id or trade.client_id}) "
                f"is not a fill of order {order.client_id}; pass each order only its own trades"
            )
        known = tx.scalar(
            "SELECT 1 FROM fills WHERE account = ? AND symbol = ? AND trade_id = ?",
            (order.account, trade.symbol, str(trade.trade_id)),
        )
        if known:
            continue
        remaining = order.qty - booked
        if _over(trade.qty, remaining):
            raise LedgerError(
                f"overfill: trade {trade.trade_id} of {trade.qty} on order {order.client_id} "
                f"({order.symbol}, qty {order.qty}, {booked} already filled); nothing was booked. "
                "Compare the venue's trades for this order with the ledger's fills"
            )
        book_trade(tx, order.account, order.client_id, assets, trade, at_ms, via)
        share = trade.qty / remaining if remaining > 0 else 1.0
        order = release(tx, order, order.locked_amount * min(share, 1.0), at_ms)
        booked += trade.qty
        order_event(
            tx, order, "fill",
            {"trade_id": str(trade.trade_id), "qty": trade.qty, "price": trade.price,
             "fee": trade.fee, "fee_asset": trade.fee_asset, "via": via},
            at_ms,
        )  # fmt: skip
    return order


def apply(
    tx: Tx, order: LedgerOrder, report: OrderReport, trades, at_ms: int, via: str
) -> LedgerOrder:
    """Book the report's trades, then its status, executed qty and venue id, onto `order`."""
    if report.symbol != order.symbol or report.client_id != order.client_id:
        raise LedgerError(
            f"report for {report.symbol} {report.client_id} does not match order "
            f"{order.symbol} {order.client_id}"
        )
    if _over(report.executed_qty, order.qty):
        raise LedgerError(
            f"overfill: the venue reports {report.executed_qty} executed on order "
            f"{order.client_id} ({order.symbol}) of qty {order.qty}; nothing was booked"
        )
    before = order
    order = _book(tx, order, report, trades, at_ms, via)
    status = report.status
    if order.status.terminal and not status.terminal:
        status = order.status  # an older message; no event, so re-reading it changes nothing
    newer = report.executed_qty >= order.executed_qty
    order = dataclasses.replace(
        order,
        status=status,
        venue_order_id=report.venue_order_id or order.venue_order_id,
        executed_qty=report.executed_qty if newer else order.executed_qty,
        cum_quote=report.cum_quote if newer else order.cum_quote,
        missing_count=0,  # the venue knows it
    )
    released = order.locked_amount if status.terminal else 0.0
    order = release(tx, order, released, at_ms)
    if status != before.status:
        detail = {"from": before.status.value, "to": status.value, "via": via,
                  "executed_qty": order.executed_qty, "released": released}  # fmt: skip
        order_event(tx, order, "status", detail, at_ms)
    if dataclasses.replace(order, updated_ms=before.updated_ms) != before:
        order = dataclasses.replace(order, updated_ms=at_ms)
    return save(tx, before, order)


def apply_report(tx: Tx, report: OrderReport, trades, at_ms: int, via: str) -> LedgerOrder:
    return apply(tx, need_order(tx, report.client_id), report, trades, at_ms, via)


def _settle(
    tx: Tx, order: LedgerOrder, status: OrderStatus, kind: str, detail: dict, at_ms: int
) -> LedgerOrder:
    new = dataclasses.replace(order, status=status, updated_ms=at_ms)
    new = release(tx, new, new.locked_amount if status.terminal else 0.0, at_ms)
    order_event(tx, new, kind, {**detail, "from": order.status.value}, at_ms)
    return save(tx, order, new)


def record_result(tx: Tx, client_id: str, result: SubmitResult, at_ms: int) -> LedgerOrder:
    """The submit's outcome: Ack books the report; Rejected and Unknown settle an unsent order
    (an order the venue has reported already keeps its status; the event is still recorded)."""
    order = need_order(tx, client_id)
    if isinstance(result, Ack):
        return apply(tx, order, result.report, result.report.trades, at_ms, "submit")
    if isinstance(result, Rejected):
        detail = {"code": result.code, "message": result.message}
        if order.status in _UNSENT:
            return _settle(tx, order, OrderStatus.REJECTED, "rejected", detail, at_ms)
    elif isinstance(result, Unknown):
        detail = {"reason": result.reason}
        if order.status is OrderStatus.PENDING_SUBMIT:
            return _settle(tx, order, OrderStatus.UNKNOWN, "unknown", detail, at_ms)
    else:
        raise LedgerError(
            f"record_result got {type(result).__name__}; expected Ack, Rejected or Unknown"
        )
    kind = "rejected" if isinstance(result, Rejected) else "unknown"
    order_event(tx, order, kind, {**detail, "kept": order.status.value}, at_ms)
    return order


def adopt_order(
    tx: Tx, account: str, report: OrderReport, trades, at_ms: int, assets: Assets
) -> LedgerOrder:
    """Book an order the venue knows and the ledger did not (placed before a crash, or by hand)."""
    known = get_order(tx, report.client_id, for_update=True)
    if known is not None:
        if known.account != account:
            raise LedgerError(
                f"order {report.client_id} belongs to account {known.account!r}, not {account!r}"
            )
        return apply(tx, known, report, trades, at_ms, "adopt")
    reference = report.price or (
        report.cum_quote / report.executed_qty if report.executed_qty else 0.0
    )
    order = LedgerOrder(
        client_id=report.client_id, key=f"adopted|{report.client_id}", account=account,
        symbol=report.symbol, side=report.side, type=report.type, tif=None, qty=float(report.qty),
        price=report.price, status=report.status, venue_order_id=report.venue_order_id or None,
        executed_qty=0.0, cum_quote=0.0, decision_ms=int(report.time_ms), target_weight=0.0,
        source="adopted", reference_price=float(reference),
        note="adopted: placed outside this ledger; target weight unknown", missing_count=0,
        created_ms=at_ms, updated_ms=at_ms, locked_asset=None, locked_amount=0.0,
    )  # fmt: skip
    insert_order(tx, order, symbol_assets(report.symbol, assets))
    order_event(tx, order, "adopted", {"venue_order_id": report.venue_order_id,
                                       "executed_qty": report.executed_qty}, at_ms)  # fmt: skip
    return apply(tx, order, report, trades, at_ms, "adopt")


def mark_missing(tx: Tx, client_id: str, at_ms: int) -> int:
    order = need_order(tx, client_id)
    new = dataclasses.replace(order, missing_count=order.missing_count + 1, updated_ms=at_ms)
    order_event(tx, new, "missing", {"count": new.missing_count}, at_ms)
    save(tx, order, new)
    return new.missing_count


def settle_lost(tx: Tx, client_id: str, at_ms: int, reason: str) -> LedgerOrder:
    """REJECTED: the venue never had it. Refused for a terminal order or one with fills."""
    order = need_order(tx, client_id)
    if order.status.terminal or _booked_qty(tx, order) > 0:
        raise LedgerError(
            f"order {client_id} is {order.status.value} with {_booked_qty(tx, order)} filled; only an "
            "unresolved order without fills can be settled as never placed"
        )
    detail = {"reason": reason, "missing_count": order.missing_count}
    return _settle(tx, order, OrderStatus.REJECTED, "settled_lost", detail, at_ms)
