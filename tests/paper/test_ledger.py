"""The paper broker and ledger: orders to targets, atomic idempotent booking, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid

import polars as pl
import pytest

from quantlab.config import PaperConfig
from quantlab.errors import ConfigError
from quantlab.paper import Ledger, plan_orders

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
CFG = PaperConfig(equity=100_000, fee_rate=0.001, min_notional=10, qty_decimals=5)
# Real closes of 2024-12-31 23:00 UTC from the shipped sample.
LATEST = pl.DataFrame(
    {"symbol": ["BTCUSDT", "ETHUSDT"], "target_weight": [0.25, -0.1], "price": [93576.0, 3332.89]}
)


def _postgres_url():
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(PG_ADMIN, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        if os.environ.get("QUANTLAB_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc})")
    admin.autocommit = True
    name = f"quantlab_test_{uuid.uuid4().hex[:8]}"
    admin.cursor().execute(f"CREATE DATABASE {name}")
    return admin, name


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        with Ledger.connect(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as led:
            yield led
        return
    admin, name = _postgres_url()
    try:
        with Ledger.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as led:
            yield led
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def test_plan_orders_sizes_rounds_and_skips_dust():
    # ETH is held at -3.0 and -3.00039 is wanted: a 1.3 USDT order is dust and is skipped.
    (btc,) = plan_orders(LATEST, {"ETHUSDT": -3.0}, CFG, "k")
    assert (btc.side, btc.qty) == ("BUY", 0.26716)  # floor(25000 / 93576, 5 dp)
    assert btc.fee == pytest.approx(0.26716 * 93576.0 * 0.001)
    assert btc.client_order_id == "k-BTCUSDT"


def test_plan_orders_skips_orders_below_min_notional():
    at_target = {"BTCUSDT": 0.26716, "ETHUSDT": -3.00039}
    assert plan_orders(LATEST, at_target, CFG, "k") == []


def test_booking_updates_positions_and_is_idempotent(ledger):
    orders = plan_orders(LATEST, {}, CFG, "paper-targets-v3")
    assert [ledger.book("paper", o, "targets@v3") for o in orders] == [True, True]
    assert [ledger.book("paper", o, "targets@v3") for o in orders] == [False, False]
    positions = ledger.positions("paper")
    assert positions == {"BTCUSDT": pytest.approx(0.26716), "ETHUSDT": pytest.approx(-3.00039)}
    booked = ledger.orders("paper", prefix="paper-targets-v3")
    assert [o["symbol"] for o in booked] == ["BTCUSDT", "ETHUSDT"]
    # The next targets move the book from where it is, not from zero.
    flat = LATEST.with_columns(pl.lit(0.0).alias("target_weight"))
    closing = plan_orders(flat, positions, CFG, "paper-targets-v4")
    assert [(o.side, o.qty) for o in closing] == [("SELL", 0.26716), ("BUY", 3.00039)]
    for o in closing:
        ledger.book("paper", o, "targets@v4")
    assert all(abs(q) < 1e-9 for q in ledger.positions("paper").values())


def test_unknown_ledger_url_is_a_config_error():
    with pytest.raises(ConfigError, match="sqlite:///"):
        Ledger.connect("mysql://u:secret@host/db")
