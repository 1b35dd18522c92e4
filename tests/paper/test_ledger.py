"""The paper broker and ledger: orders to targets, atomic idempotent booking, SQLite and PostgreSQL."""

from __future__ import annotations

import polars as pl
import pytest

from quantlab.config import PaperConfig
from quantlab.errors import ConfigError
from quantlab.paper import Ledger, plan_orders

CFG = PaperConfig(equity=100_000, fee_rate=0.001, min_notional=10, qty_decimals=5)
# Real closes of 2024-12-31 23:00 UTC from the shipped sample.
LATEST = pl.DataFrame(
    {"symbol": ["BTCUSDT", "ETHUSDT"], "target_weight": [0.25, -0.1], "price": [93576.0, 3332.89]}
)


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
