# ruff: noqa: F811  (pytest fixtures imported from test_ledger_support are parameters here)
"""The ledger's order lifecycle on SQLite and PostgreSQL: idempotent creation, submit
results, venue reports (partial fills, twice = once), cash flows, positions, adoption, lost
orders and the invariants. Orders and trades are synthetic (see test_ledger_support)."""

from __future__ import annotations

import dataclasses

import pytest

from execution.test_ledger_support import (  # noqa: F401  (fixtures)
    ACCOUNT,
    SOURCE,
    T0,
    funded,
    intent,
    ledger,
    ledger_url,
    raw_execute,
    report,
    trade,
)
from quantlab.execution.ledger import Ledger, LedgerError, PositionRow
from quantlab.execution.ledger.fills import project
from quantlab.portfolio.orders import Ack, OrderStatus, Rejected, TimeInForce, Unknown
from quantlab.portfolio.types import Side


def _bal(ledger: Ledger, asset: str) -> tuple[float, float]:
    b = ledger.balances(ACCOUNT)[asset]
    return b.free, b.locked


def test_create_order_is_idempotent_on_its_key(funded: Ledger):
    first, created = funded.create_order(intent(qty=1.0), ("USDT", 110.0), T0)
    again, created_again = funded.create_order(intent(qty=1.0), ("USDT", 110.0), T0 + 5)
    assert (created, created_again) == (True, False)
    assert again == first and first.status is OrderStatus.PENDING_SUBMIT
    assert _bal(funded, "USDT") == (10_000.0 - 110.0, 110.0)  # locked once
    assert [e["kind"] for e in funded.order_events(ACCOUNT)] == ["created"]
    assert funded.order(first.client_id) == first


def test_a_lock_larger_than_free_locks_what_is_free_and_says_so(funded: Ledger):
    order, _ = funded.create_order(intent(Side.SELL, 2.0), ("BTC", 2.0), T0)
    assert order.locked_amount == 1.0 and _bal(funded, "BTC") == (0.0, 1.0)
    (created,) = funded.order_events(ACCOUNT, order.client_id)
    assert created["detail"]["lock_short"] == 1.0 and created["detail"]["free_before"] == 1.0
    assert funded.check_invariants(ACCOUNT) == []


def test_ack_books_the_report_and_its_fills_and_releases_the_rest_of_the_lock(funded: Ledger):
    order, _ = funded.create_order(intent(qty=1.0), ("USDT", 110.0), T0)
    fill = trade(order, "t1", 1.0, 100.0, fee=0.001, fee_asset="BTC")
    done = funded.record_result(
        order.client_id, Ack(report(order, OrderStatus.FILLED, (fill,))), T0 + 3
    )
    assert (
        done.status is OrderStatus.FILLED and done.executed_qty == 1.0 and done.locked_amount == 0
    )
    assert done.venue_order_id == "v-" + order.client_id[:6]
    assert _bal(funded, "USDT") == (9_900.0, 0.0)
    assert _bal(funded, "BTC") == pytest.approx((1.999, 0.0))
    assert funded.check_invariants(ACCOUNT) == []


def test_rejected_settles_an_unsent_order_and_unlocks(funded: Ledger):
    order, _ = funded.create_order(intent(qty=1.0), ("USDT", 110.0), T0)
    msg = "Account has insufficient balance for requested action."
    done = funded.record_result(order.client_id, Rejected(-2010, msg), T0 + 1)
    assert done.status is OrderStatus.REJECTED and done.locked_amount == 0
    assert _bal(funded, "USDT") == (10_000.0, 0.0)
    last = funded.order_events(ACCOUNT, order.client_id)[-1]
    assert (
        last["kind"] == "rejected"
        and last["detail"]["code"] == -2010
        and last["detail"]["message"] == msg
    )


def test_unknown_keeps_the_lock_until_the_venue_answers(funded: Ledger):
    order, _ = funded.create_order(intent(qty=1.0), ("USDT", 110.0), T0)
    lost = funded.record_result(order.client_id, Unknown("timeout"), T0 + 1)
    assert lost.status is OrderStatus.UNKNOWN and lost.locked_amount == 110.0
    assert funded.order_events(ACCOUNT)[-1]["detail"] == {
        "reason": "timeout",
        "from": "PENDING_SUBMIT",
    }
    found = funded.apply_report(report(order, OrderStatus.NEW), (), T0 + 2, "query")
    assert found.status is OrderStatus.NEW and _bal(funded, "USDT") == (9_890.0, 110.0)


def test_partial_fills_then_the_rest_and_the_same_reports_twice_book_once(funded: Ledger):
    order, _ = funded.create_order(
        intent(qty=2.0, price=100.0, tif=TimeInForce.GTC), ("USDT", 200.0), T0
    )
    t1, t2 = trade(order, "t1", 0.5, 100.0), trade(order, "t2", 1.5, 100.0)
    steps = [
        report(order, OrderStatus.PARTIALLY_FILLED, (t1,)),
        report(order, OrderStatus.FILLED, (t1, t2)),
    ]
    for step in steps:
        funded.apply_report(step, step.trades, T0 + 1, "query")
        if step.status is OrderStatus.PARTIALLY_FILLED:
            assert funded.order(order.client_id).locked_amount == pytest.approx(150.0)
            assert _bal(funded, "USDT") == pytest.approx((9_800.0, 150.0))
    state = (funded.balances(ACCOUNT), funded.positions(ACCOUNT), funded.order(order.client_id),
             funded.order_events(ACCOUNT), funded.fills(ACCOUNT))  # fmt: skip
    for step in steps:  # a second reconciliation sees the same reports
        funded.apply_report(step, step.trades, T0 + 9, "reconcile")
    assert (funded.balances(ACCOUNT), funded.positions(ACCOUNT), funded.order(order.client_id),
            funded.order_events(ACCOUNT)) == state[:4]  # fmt: skip
    assert funded.fills(ACCOUNT).equals(state[4]) and funded.fills(ACCOUNT)[
        "trade_id"
    ].to_list() == ["t1", "t2"]
    assert funded.positions(ACCOUNT)["BTCUSDT"].qty == 2.0
    assert funded.check_invariants(ACCOUNT) == []


def test_an_expired_order_with_fills_books_them_and_frees_the_rest(funded: Ledger):
    order, _ = funded.create_order(
        intent(qty=2.0, price=100.0, tif=TimeInForce.IOC), ("USDT", 200.0), T0
    )
    part = trade(order, "t1", 0.5, 100.0, fee=0.0005, fee_asset="BTC")
    done = funded.apply_report(
        report(order, OrderStatus.EXPIRED, (part,)), (part,), T0 + 1, "submit"
    )
    assert (
        done.status is OrderStatus.EXPIRED and done.executed_qty == 0.5 and done.locked_amount == 0
    )
    assert _bal(funded, "USDT") == (9_950.0, 0.0) and _bal(funded, "BTC") == pytest.approx(
        (1.4995, 0.0)
    )


def test_cash_flows_take_the_fee_in_the_received_asset(funded: Ledger):
    buy, _ = funded.create_order(intent(Side.BUY, 1.0), None, T0)
    funded.apply_report(
        report(buy, OrderStatus.FILLED), (trade(buy, "b1", 1.0, 200.0, 0.001, "BTC"),), T0, "q"
    )
    sell, _ = funded.create_order(intent(Side.SELL, 0.5, attempt=1), ("BTC", 0.5), T0)
    funded.apply_report(
        report(sell, OrderStatus.FILLED), (trade(sell, "s1", 0.5, 300.0, 0.15, "USDT"),), T0, "q"
    )
    assert _bal(funded, "BTC") == pytest.approx((1.0 + 1.0 - 0.001 - 0.5, 0.0))
    assert _bal(funded, "USDT") == pytest.approx((10_000.0 - 200.0 + 150.0 - 0.15, 0.0))
    assert funded.check_invariants(ACCOUNT) == []


@pytest.mark.parametrize(
    ("start", "signed", "price", "expected"),
    [
        (PositionRow("X", 0.0, 0.0, 0.0, None), 1.0, 100.0, PositionRow("X", 1.0, 100.0, 0.0, 5)),
        (PositionRow("X", 1.0, 100.0, 0.0, 1), 1.0, 200.0, PositionRow("X", 2.0, 150.0, 0.0, 1)),
        (PositionRow("X", 2.0, 150.0, 0.0, 1), -1.5, 300.0, PositionRow("X", 0.5, 150.0, 225.0, 1)),
        (
            PositionRow("X", 0.5, 150.0, 225.0, 1),
            -0.5,
            100.0,
            PositionRow("X", 0.0, 0.0, 200.0, None),
        ),
        (PositionRow("X", 1.0, 100.0, 0.0, 1), -3.0, 90.0, PositionRow("X", -2.0, 90.0, -10.0, 5)),
        (PositionRow("X", -2.0, 90.0, 0.0, 1), 1.0, 80.0, PositionRow("X", -1.0, 90.0, 10.0, 1)),
    ],
)
def test_the_position_projection_averages_entries_and_realizes_on_reduction(
    start, signed, price, expected
):
    assert project(start, signed, price, 5) == pytest.approx(expected)


def test_positions_follow_the_fills(funded: Ledger):
    for n, (side, qty, price) in enumerate(
        [(Side.BUY, 1.0, 100.0), (Side.BUY, 1.0, 200.0), (Side.SELL, 1.5, 300.0)]
    ):
        order, _ = funded.create_order(intent(side, qty, attempt=n), None, T0 + n)
        funded.apply_report(
            report(order, OrderStatus.FILLED), (trade(order, f"t{n}", qty, price),), T0 + n, "q"
        )
    assert funded.positions(ACCOUNT)["BTCUSDT"] == PositionRow(
        "BTCUSDT", 0.5, 150.0, 225.0, T0 + 1000
    )


def test_an_overfill_raises_and_books_nothing(funded: Ledger):
    order, _ = funded.create_order(intent(qty=1.0), ("USDT", 110.0), T0)
    before = (funded.balances(ACCOUNT), funded.order_events(ACCOUNT))
    trades = (trade(order, "t1", 0.6, 100.0), trade(order, "t2", 0.6, 100.0))
    with pytest.raises(LedgerError, match="overfill"):
        funded.apply_report(
            report(order, OrderStatus.PARTIALLY_FILLED, executed=0.6), trades, T0, "q"
        )
    with pytest.raises(LedgerError, match="overfill"):
        funded.apply_report(report(order, OrderStatus.FILLED, executed=1.2), (), T0, "q")
    assert (funded.balances(ACCOUNT), funded.order_events(ACCOUNT)) == before
    assert (
        funded.fills(ACCOUNT).is_empty()
        and funded.order(order.client_id).status is OrderStatus.PENDING_SUBMIT
    )


def test_a_terminal_order_never_reopens_but_canceled_to_filled_is_the_venues_call(funded: Ledger):
    order, _ = funded.create_order(intent(qty=1.0), ("USDT", 110.0), T0)
    funded.apply_report(report(order, OrderStatus.CANCELED), (), T0 + 1, "cancel")
    stale = funded.apply_report(report(order, OrderStatus.NEW), (), T0 + 2, "query")
    assert stale.status is OrderStatus.CANCELED and _bal(funded, "USDT") == (10_000.0, 0.0)
    fill = trade(order, "t1", 1.0, 100.0)
    raced = funded.apply_report(
        report(order, OrderStatus.FILLED, (fill,)), (fill,), T0 + 3, "query"
    )
    assert raced.status is OrderStatus.FILLED and _bal(funded, "USDT") == (9_900.0, 0.0)
    kinds = [(e["kind"], e["status"]) for e in funded.order_events(ACCOUNT)]
    assert kinds == [
        ("created", "PENDING_SUBMIT"),
        ("status", "CANCELED"),
        ("fill", "CANCELED"),
        ("status", "FILLED"),
    ]
    assert funded.check_invariants(ACCOUNT) == []


def test_a_report_for_an_unknown_order_or_a_foreign_trade_is_refused(funded: Ledger):
    order, _ = funded.create_order(intent(qty=1.0), None, T0)
    other, _ = funded.create_order(intent(qty=1.0, attempt=1), None, T0)
    stranger = dataclasses.replace(report(order, OrderStatus.NEW), client_id="nobody")
    with pytest.raises(LedgerError, match="adopt_order"):
        funded.apply_report(stranger, (), T0, "q")
    with pytest.raises(LedgerError, match="not a fill of order"):
        funded.apply_report(
            report(order, OrderStatus.FILLED), (trade(other, "x", 1.0, 100.0),), T0, "q"
        )


def test_adopt_books_an_order_the_ledger_did_not_know_once(funded: Ledger):
    template, _ = funded.create_order(intent(qty=1.0, attempt=7), None, T0)
    fill = dataclasses.replace(trade(template, "a1", 1.0, 100.0), client_id="manual-1")
    rep = dataclasses.replace(report(template, OrderStatus.FILLED, (fill,)), client_id="manual-1")
    adopted = funded.adopt_order(ACCOUNT, rep, (fill,), T0 + 5)
    again = funded.adopt_order(ACCOUNT, rep, (fill,), T0 + 6)
    assert (
        adopted.key == "adopted|manual-1"
        and adopted.status is OrderStatus.FILLED
        and again == adopted
    )
    assert adopted.executed_qty == 1.0 and adopted.source == "adopted"
    assert [e["kind"] for e in funded.order_events(ACCOUNT, "manual-1")] == ["adopted", "fill"]
    assert funded.fills(ACCOUNT)["trade_id"].to_list() == ["a1"]
    assert funded.positions(ACCOUNT)["BTCUSDT"].qty == 1.0
    assert funded.check_invariants(ACCOUNT) == []


def test_a_missing_order_is_counted_then_settled_as_never_placed(funded: Ledger):
    order, _ = funded.create_order(intent(qty=1.0), ("USDT", 110.0), T0)
    funded.record_result(order.client_id, Unknown("HTTP 503"), T0)
    assert [funded.mark_missing(order.client_id, T0 + n) for n in (1, 2)] == [1, 2]
    settled = funded.settle_lost(order.client_id, T0 + 3, "not found after 2 reconciliations")
    assert settled.status is OrderStatus.REJECTED and _bal(funded, "USDT") == (10_000.0, 0.0)
    last = funded.order_events(ACCOUNT, order.client_id)[-1]
    assert last["kind"] == "settled_lost" and last["detail"]["missing_count"] == 2
    with pytest.raises(LedgerError, match="only an unresolved order"):
        funded.settle_lost(order.client_id, T0 + 4, "again")


def test_an_order_with_fills_cannot_be_settled_as_lost(funded: Ledger):
    order, _ = funded.create_order(intent(qty=1.0), None, T0)
    funded.apply_report(
        report(order, OrderStatus.PARTIALLY_FILLED), (trade(order, "t1", 0.5, 100.0),), T0, "q"
    )
    with pytest.raises(LedgerError, match="without fills"):
        funded.settle_lost(order.client_id, T0 + 1, "lost")


def test_next_attempt_counts_the_attempts_booked_for_a_decision(funded: Ledger):
    assert funded.next_attempt(ACCOUNT, SOURCE, "BTCUSDT", T0) == 0
    funded.create_order(intent(attempt=0), None, T0)
    funded.create_order(intent(attempt=3), None, T0)
    funded.create_order(intent(attempt=9, decision_ms=T0 + 1), None, T0)
    assert funded.next_attempt(ACCOUNT, SOURCE, "BTCUSDT", T0) == 4
    assert funded.next_attempt(ACCOUNT, SOURCE, "ETHUSDT", T0) == 0


def test_invariants_hold_after_a_sequence_and_catch_a_row_changed_behind_the_ledger(
    ledger_url: str,
):
    with Ledger.connect(ledger_url) as led:
        led.ensure_account(ACCOUNT, "paper", {"USDT": 10_000.0}, T0)
        order, _ = led.create_order(intent(qty=1.0), ("USDT", 110.0), T0)
        led.apply_report(
            report(order, OrderStatus.FILLED),
            (trade(order, "t1", 1.0, 100.0, 0.001, "BTC"),),
            T0,
            "q",
        )
        led.create_order(intent(qty=1.0, attempt=1, price=90.0), ("USDT", 95.0), T0)
        assert led.check_invariants(ACCOUNT) == []
    raw_execute(ledger_url, "UPDATE balances SET free = free + 1 WHERE asset = 'USDT'")
    raw_execute(ledger_url, "UPDATE positions SET qty = 2 WHERE symbol = 'BTCUSDT'")
    with Ledger.connect(ledger_url) as led:
        problems = led.check_invariants(ACCOUNT)
    assert any(p.startswith("balance USDT") and "cash flows sum to 9900" in p for p in problems)
    assert any(p.startswith("position BTCUSDT") for p in problems)
    assert not any("BTC:" in p or p.startswith("balance BTC") for p in problems)
