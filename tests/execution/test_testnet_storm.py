"""A fault storm through the signed adapter against the replay exchange (testnet mode).

The replay exchange accepts orders and then answers 503, holds the reply past the client's
timeout, hides a new order from lookups, or resets the connection (after placing, or before):
every fault Binance documents as "execution status unknown". Hundreds of orders later, each
intended order exists at the venue at most once, every order the venue has is in the ledger,
balances agree, and the ledger's invariants hold. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from helpers import SAMPLE
from quantlab.config import PaperConfig
from quantlab.exchange.replay import ReplayServer, parse_account
from quantlab.exchange.trading import SpotTradingClient
from quantlab.execution.binance_venue import BinanceVenue
from quantlab.execution.ledger import Ledger
from quantlab.execution.reconcile import reconcile
from quantlab.execution.session import SessionResult, place
from quantlab.portfolio.orders import (
    OrderIntent,
    OrderStatus,
    OrderType,
    idempotency_key,
)
from quantlab.portfolio.types import Side

KEY, SECRET = "stormkey01", "stormsecret01"
ASSETS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}
NOW = int(datetime(2024, 6, 3, 12, 30, tzinfo=UTC).timestamp() * 1000)  # inside the sample


def _intent(i: int) -> OrderIntent:
    symbol = ("BTCUSDT", "ETHUSDT")[i % 2]
    side = Side.BUY if (i // 2) % 2 == 0 else Side.SELL
    qty = 0.01 if symbol == "BTCUSDT" else 0.1
    return OrderIntent(
        account="paper", key=idempotency_key("paper", "storm@v1", symbol, i, 0), symbol=symbol,
        side=side, type=OrderType.MARKET, qty=qty, price=None, tif=None, decision_ms=i,
        target_weight=0.0, source="storm@v1", reference_price=0.0,
    )  # fmt: skip


def test_a_storm_of_unknown_outcomes_places_every_order_at_most_once(ledger_url):
    account = parse_account(f"{KEY}:{SECRET}:USDT=1000000,BTC=20,ETH=200")
    with ReplayServer(SAMPLE, accounts=[account], now_ms=NOW) as server:
        server.order_faults.storm(rate=0.6, seed=11, timeout_s=1.5, missing_n=2)
        client = SpotTradingClient(server.base_url, KEY, SECRET, timeout_s=1.0)
        client.exchange_info(list(ASSETS))
        venue = BinanceVenue(client, query_retries=3, query_backoff_s=0.02)
        cfg = PaperConfig(missing_checks=2)
        with Ledger.connect(ledger_url) as ledger:
            ledger.register_assets(ASSETS)
            held = {a: b.total for a, b in venue.balances().items() if a in ("USDT", "BTC", "ETH")}
            ledger.ensure_account("paper", "binance", held, NOW)
            result = SessionResult()
            for i in range(200):
                place(ledger, venue, _intent(i), 0.001, NOW, result)
            injected = sum(server.order_faults.injected.values())
            server.order_faults.clear()
            for _ in range(cfg.missing_checks + 1):  # calm: every unknown is found or settled
                report = reconcile(
                    ledger, venue, "paper", list(ASSETS), cfg, NOW, NOW - 3_600_000,
                    ("BTC", "ETH", "USDT"),
                )  # fmt: skip
            assert injected >= 100, server.order_faults.injected
            assert result.unknown  # the storm did leave outcomes unknown at first
            orders = ledger.orders("paper")
            assert len(orders) == 200  # one ledger order per intent, never a second
            assert not [
                o for o in orders if o.status in (OrderStatus.UNKNOWN, OrderStatus.PENDING_SUBMIT)
            ]
            at_venue = Counter(o.client_id for o in server.trading.book.orders if o.account == KEY)
            assert max(at_venue.values()) == 1  # nothing placed twice
            placed = {o.client_id for o in orders if o.status is not OrderStatus.REJECTED}
            assert placed == set(at_venue)  # the ledger knows exactly what the venue has
            assert report.clear and not report.balance_diffs, report.lines()
            assert ledger.check_invariants("paper") == []
