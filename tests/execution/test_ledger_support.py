"""Shared fixtures and builders of the ledger tests (no tests here).

Every ledger test runs twice: on a SQLite file under tmp_path and on a fresh PostgreSQL
database on 127.0.0.1:5432 (dropped afterwards). Without a reachable server the PostgreSQL
half skips, unless QUANTLAB_REQUIRE_POSTGRES=1, which turns the skip into a failure.

The orders, reports and trades built here are synthetic: the ledger's tests check
bookkeeping arithmetic, not market behaviour, so round prices keep the expected sums exact.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantlab.execution.ledger import Ledger, LedgerOrder
from quantlab.portfolio.orders import (
    OrderIntent,
    OrderReport,
    OrderStatus,
    OrderType,
    TimeInForce,
    VenueTrade,
    idempotency_key,
)
from quantlab.portfolio.types import Side

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
ACCOUNT = "acct"
SOURCE = "targets@v1"
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def _admin():
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        conn = psycopg2.connect(PG_ADMIN, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        if os.environ.get("QUANTLAB_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc})")
    conn.autocommit = True
    return conn


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty ledger: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    admin = _admin()
    name = f"ledger_{uuid.uuid4().hex[:12]}"
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger.connect(ledger_url) as led:
        yield led


@pytest.fixture
def funded(ledger: Ledger) -> Ledger:
    """The ledger with ACCOUNT holding 10,000 USDT and 1 BTC."""
    ledger.ensure_account(ACCOUNT, "paper", {"USDT": 10_000.0, "BTC": 1.0}, T0)
    return ledger


def raw_execute(url: str, sql: str) -> None:
    """Run `sql` behind the ledger's back (to corrupt a row on purpose)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(sql)
        return
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def intent(
    side: Side = Side.BUY,
    qty: float = 1.0,
    *,
    symbol: str = "BTCUSDT",
    attempt: int = 0,
    decision_ms: int = T0,
    price: float | None = None,
    tif: TimeInForce | None = None,
) -> OrderIntent:
    kind = OrderType.MARKET if price is None else OrderType.LIMIT
    key = idempotency_key(ACCOUNT, SOURCE, symbol, decision_ms, attempt)
    return OrderIntent(
        ACCOUNT, key, symbol, side, kind, qty, price, tif, decision_ms, 0.25, SOURCE, 100.0
    )


def trade(order: LedgerOrder, trade_id: str, qty: float, price: float, fee: float = 0.0,
          fee_asset: str = "") -> VenueTrade:  # fmt: skip
    return VenueTrade(order.symbol, trade_id, "v-" + order.client_id[:6], order.client_id, order.side,
                      qty, price, fee, fee_asset or "USDT", T0 + 1000)  # fmt: skip


def report(order: LedgerOrder, status: OrderStatus, trades: tuple[VenueTrade, ...] = (),
           executed: float | None = None) -> OrderReport:  # fmt: skip
    done = sum(t.qty for t in trades) if executed is None else executed
    quote = sum(t.qty * t.price for t in trades)
    return OrderReport(order.symbol, order.client_id, "v-" + order.client_id[:6], status, order.side,
                       order.type, order.qty, done, quote, order.price, T0, T0 + 2000, trades)  # fmt: skip
