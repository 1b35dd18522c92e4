"""BinanceVenue as a Broker against a fake Binance that verifies signatures: the unknown-outcome
lookups (never a second POST), queries with fills, cancels, snapshots and configuration."""

from __future__ import annotations

import httpx
import pytest

from binance_fake import API_KEY, SECRET, FakeBinance, Fault, error
from quantlab.config.paper import BinanceVenueConfig
from quantlab.errors import ConfigError
from quantlab.exchange.trading import SpotTradingClient
from quantlab.execution.binance_venue import BinanceVenue
from quantlab.portfolio.orders import (
    Ack,
    OrderIntent,
    OrderStatus,
    OrderType,
    Rejected,
    TimeInForce,
    Unknown,
    idempotency_key,
)
from quantlab.portfolio.types import Side

POST, LOOKUP = ("POST", "/api/v3/order"), ("GET", "/api/v3/order")
DAY_MS = 86_400_000


def intent(attempt: int = 0, kind: OrderType = OrderType.MARKET) -> OrderIntent:
    return OrderIntent(
        account="acct",
        key=idempotency_key("acct", "targets@v1", "BTCUSDT", 1704067200000, attempt),
        symbol="BTCUSDT",
        side=Side.BUY,
        type=kind,
        qty=0.002,
        price=42000.0 if kind is OrderType.LIMIT else None,
        tif=TimeInForce.GTC if kind is OrderType.LIMIT else None,
        decision_ms=1704067200000,
        target_weight=0.1,
        source="targets@v1",
        reference_price=42475.23,
    )


@pytest.fixture
def fake() -> FakeBinance:
    return FakeBinance()


def venue(fake: FakeBinance, retries: int = 3) -> BinanceVenue:
    client = SpotTradingClient(
        "http://127.0.0.1:9",
        API_KEY,
        SECRET,
        transport=fake.transport(),
        clock=fake.clock,
        sleep=fake.clock.sleep,
    )
    return BinanceVenue(client, query_retries=retries, query_backoff_s=0.5, sleep=fake.clock.sleep)


def test_unknown_then_found_after_two_not_found_answers_is_an_ack(fake):
    fake.fault("POST /api/v3/order", Fault(True, httpx.Response(503, text="busy")))
    fake.hidden_lookups[intent().client_id] = 2  # "Order does not exist." twice, as after a 5xx
    result = venue(fake).submit(intent())
    assert isinstance(result, Ack)
    assert result.report.status is OrderStatus.FILLED
    assert [t.client_id for t in result.report.trades] == [intent().client_id]
    assert len(fake.calls(*POST)) == 1
    assert len(fake.calls(*LOOKUP)) == 3
    assert fake.clock.sleeps[:3] == [0.5, 1.0, 2.0]  # backoff between lookups


def test_unknown_and_never_found_stays_unknown_after_every_lookup(fake):
    fake.fault("POST /api/v3/order", Fault(False, raise_=httpx.ReadTimeout("timed out")))
    result = venue(fake, retries=4).submit(intent())
    assert isinstance(result, Unknown)
    assert "ReadTimeout" in result.reason and "not found after 4 lookups" in result.reason
    assert len(fake.calls(*POST)) == 1
    assert len(fake.calls(*LOOKUP)) == 4
    assert fake.orders == {}


def test_a_lookup_that_fails_counts_and_is_reported(fake):
    fake.fault("POST /api/v3/order", Fault(True, error(503, -1007, "Timeout waiting.")))
    fake.fault("GET /api/v3/order", *[Fault(False, error(400, -1022, "Signature bad."))] * 2)
    result = venue(fake, retries=2).submit(intent())
    assert isinstance(result, Unknown) and "Signature bad." in result.reason
    assert len(fake.calls(*POST)) == 1


def test_a_rejection_is_final_without_lookups(fake):
    fake.fault("POST /api/v3/order", Fault(False, error(400, -1013, "Filter failure: NOTIONAL")))
    assert venue(fake).submit(intent()) == Rejected(-1013, "Filter failure: NOTIONAL")
    assert fake.calls(*LOOKUP) == []


def test_query_attaches_the_fills_of_an_order_that_traded(fake):
    v = venue(fake)
    v.submit(intent(kind=OrderType.LIMIT))
    cid = intent().client_id
    resting = v.query("BTCUSDT", cid)
    assert resting is not None and resting.trades == ()
    fake.fill(cid, 0.002, 42000.0)
    filled = v.query("BTCUSDT", cid)
    assert filled is not None and filled.status is OrderStatus.FILLED
    assert [(t.qty, t.price, t.client_id) for t in filled.trades] == [(0.002, 42000.0, cid)]
    assert v.query("BTCUSDT", "never-sent") is None


def test_cancel_of_an_order_that_filled_meanwhile_reports_it_filled_with_trades(fake):
    v = venue(fake)
    v.submit(intent(kind=OrderType.LIMIT))
    cid = intent().client_id
    fake.fill(cid, 0.002, 42000.0)
    report = v.cancel("BTCUSDT", cid)
    assert report is not None and report.status is OrderStatus.FILLED and len(report.trades) == 1
    v.submit(intent(attempt=1, kind=OrderType.LIMIT))
    cancelled = v.cancel("BTCUSDT", intent(attempt=1).client_id)
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELED


def test_snapshot_reads_orders_trades_and_balances_since(fake):
    v = venue(fake)
    v.submit(intent(attempt=0, kind=OrderType.LIMIT))  # rests, fills two days later
    fake.clock.sleep(2 * 86400)
    since = fake.now_ms() - 1000
    v.submit(intent(attempt=1))  # market: filled now
    v.submit(intent(attempt=2, kind=OrderType.LIMIT))  # rests
    fake.fill(intent(attempt=0).client_id, 0.002, 41900.0)
    snap = v.snapshot(["BTCUSDT"], since)
    assert snap.complete and snap.errors == ()
    assert [o.client_id for o in snap.open_orders] == [intent(attempt=2).client_id]
    assert {o.client_id for o in snap.recent_orders} == {intent(n).client_id for n in range(3)}
    # The old order's trade is labelled with its client id, found by an order-id lookup.
    assert sorted(t.client_id for t in snap.trades) == sorted(
        [intent(attempt=0).client_id, intent(attempt=1).client_id]
    )
    assert snap.balances["USDT"].free == 100_000.0 and snap.balances["BTC"].total == 0.5


def test_snapshot_is_incomplete_when_a_read_fails(fake):
    v = venue(fake)
    v.submit(intent(kind=OrderType.LIMIT))
    fake.fault("GET /api/v3/account", Fault(False, error(401, -2015, "Invalid API-key, IP, or permissions for action.")))  # fmt: skip
    snap = v.snapshot(["BTCUSDT"], fake.now_ms() - DAY_MS)
    assert not snap.complete and snap.balances == {}
    assert len(snap.errors) == 1 and snap.errors[0].startswith("account:")
    assert [o.client_id for o in snap.open_orders] == [intent().client_id]


def test_advance_sends_nothing(fake):
    v = venue(fake)
    v.advance(1_704_153_600_000)
    assert fake.requests == []


def test_from_config_reads_keys_from_the_environment(fake, monkeypatch):
    monkeypatch.setenv("QUANTLAB_TESTNET_API_KEY", API_KEY)
    monkeypatch.setenv("QUANTLAB_TESTNET_API_SECRET", SECRET)
    cfg = BinanceVenueConfig(base_url="http://127.0.0.1:9", credentials="testnet", query_retries=2)
    v = BinanceVenue.from_config(cfg, fake.transport(), clock=fake.clock, sleep=fake.clock.sleep)
    assert v.name == "binance" and v.query_retries == 2
    assert isinstance(v.submit(intent()), Ack)


def test_from_config_names_the_missing_variables(monkeypatch):
    for var in ("QUANTLAB_NOKEYS_API_KEY", "QUANTLAB_NOKEYS_API_SECRET", "AIRFLOW_CONN_NOKEYS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QUANTLAB_NOKEYS_API_KEY", API_KEY)
    with pytest.raises(ConfigError) as info:
        BinanceVenue.from_config(BinanceVenueConfig(credentials="nokeys"))
    message = str(info.value)
    for name in ("QUANTLAB_NOKEYS_API_KEY", "QUANTLAB_NOKEYS_API_SECRET", "AIRFLOW_CONN_NOKEYS"):
        assert name in message
    assert "lack API_SECRET" in message and API_KEY not in message


def test_from_config_refuses_mainnet_unless_allowed(monkeypatch):
    monkeypatch.setenv("QUANTLAB_BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("QUANTLAB_BINANCE_API_SECRET", SECRET)
    with pytest.raises(ConfigError, match="allow_mainnet"):
        BinanceVenue.from_config(BinanceVenueConfig(base_url="https://api.binance.com"))
    allowed = BinanceVenueConfig(base_url="https://api.binance.com", allow_mainnet=True)
    assert BinanceVenue.from_config(allowed).client.base_url == "https://api.binance.com"


def test_a_trade_whose_order_cannot_be_found_makes_the_snapshot_incomplete(fake):
    v = venue(fake)
    v.submit(intent())  # a market order, filled: one trade
    since = fake.now_ms() - 1000
    fake.orders.clear()  # Binance no longer finds the order the trade belongs to
    snap = v.snapshot(["BTCUSDT"], since)
    assert not snap.complete and "does not find the order" in snap.errors[0]
    assert [t.client_id for t in snap.trades] == [""]
