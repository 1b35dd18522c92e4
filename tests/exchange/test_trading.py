"""The signed spot client against a fake Binance that verifies every signature.

Every way a POST /api/v3/order can end is classified (Ack, Rejected, Unknown) with exactly one
POST sent; reads retry and honour bans; the clock resyncs on -1021; mainnet is refused; keys
never leak.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from binance_fake import API_KEY, FILL_PRICE, INFO, SECRET, FakeBinance, Fault, error
from quantlab.errors import ConfigError, ExchangeBanned, PermanentExchangeError
from quantlab.exchange._trading_wire import format_decimal
from quantlab.exchange.trading import SpotTradingClient
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

POST = ("POST", "/api/v3/order")


def intent(qty: float = 0.001, kind: OrderType = OrderType.MARKET, attempt: int = 0, **kw):
    price = kw.pop("price", 42000.0 if kind is OrderType.LIMIT else None)
    return OrderIntent(
        account="acct",
        key=idempotency_key("acct", "targets@v1", "BTCUSDT", 1704067200000, attempt),
        symbol=kw.pop("symbol", "BTCUSDT"),
        side=kw.pop("side", Side.BUY),
        type=kind,
        qty=qty,
        price=price,
        tif=TimeInForce.GTC if kind is OrderType.LIMIT else None,
        decision_ms=1704067200000,
        target_weight=0.1,
        source="targets@v1",
        reference_price=42475.23,
    )


def client(fake: FakeBinance, **kw) -> SpotTradingClient:
    return SpotTradingClient(
        kw.pop("base_url", "http://127.0.0.1:8765"),
        kw.pop("api_key", API_KEY),
        kw.pop("secret", SECRET),
        transport=fake.transport(),
        clock=fake.clock,
        sleep=fake.clock.sleep,
        **kw,
    )


def pem(key: Ed25519PrivateKey) -> str:
    fmt = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8)
    return key.private_bytes(*fmt, serialization.NoEncryption()).decode()


@pytest.fixture
def fake() -> FakeBinance:
    return FakeBinance()


def test_market_order_is_acked_with_its_full_fills(fake):
    result = client(fake).new_order(intent(qty=1e-05))
    assert isinstance(result, Ack)
    report = result.report
    cid = intent().client_id
    assert (report.client_id, report.status, report.executed_qty) == (
        cid,
        OrderStatus.FILLED,
        1e-05,
    )
    assert [(t.qty, t.price, t.fee_asset, t.client_id) for t in report.trades] == [
        (1e-05, float(FILL_PRICE), "BTC", cid)
    ]
    (sent,) = fake.calls(*POST)
    assert sent["quantity"] == "0.00001"  # never "1e-05"
    assert (sent["newClientOrderId"], sent["newOrderRespType"]) == (cid, "FULL")
    assert "price" not in sent and "timeInForce" not in sent


def test_limit_order_rests_with_price_on_the_tick(fake):
    order = intent(qty=0.30000000000000004, kind=OrderType.LIMIT, price=42000.010000000002)
    result = client(fake).new_order(order)
    assert isinstance(result, Ack) and result.report.status is OrderStatus.NEW
    assert result.report.price == 42000.01 and result.report.trades == ()
    (sent,) = fake.calls(*POST)
    assert (sent["quantity"], sent["price"], sent["timeInForce"]) == ("0.3", "42000.01", "GTC")


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(False, error(400, -1013, "Filter failure: LOT_SIZE")),
         Rejected(-1013, "Filter failure: LOT_SIZE")),
        (Fault(False, error(400, -2010, "Account has insufficient balance for requested action.")),
         Rejected(-2010, "Account has insufficient balance for requested action.")),
        (Fault(False, error(429, -1015, "Too many new orders.", {"Retry-After": "3"})),
         Rejected(-1015, "Too many new orders.")),
        (Fault(False, httpx.Response(403, text="<html>WAF</html>")),
         Rejected(None, "HTTP 403: <html>WAF</html>")),
        (Fault(True, httpx.Response(503, text="Service Unavailable")),
         Unknown("HTTP 503, code None: Service Unavailable")),
        (Fault(False, httpx.Response(502, text="Bad Gateway")),
         Unknown("HTTP 502, code None: Bad Gateway")),
        (Fault(True, error(400, -1006, "An unexpected response was received from the message bus.")),
         Unknown("HTTP 400, code -1006: An unexpected response was received from the message bus.")),
        (Fault(True, error(408, -1007, "Timeout waiting for response from backend server.")),
         Unknown("HTTP 408, code -1007: Timeout waiting for response from backend server.")),
        (Fault(True, raise_=httpx.ReadTimeout("timed out")),
         Unknown("ReadTimeout after sending POST /api/v3/order: timed out")),
        (Fault(True, raise_=httpx.RemoteProtocolError("peer closed connection")),
         Unknown("RemoteProtocolError after sending POST /api/v3/order: peer closed connection")),
        (Fault(True, httpx.Response(200, text="{\"symbol\": \"BTC")),
         "unknown"),
    ],
    ids=["filter", "balance", "order_rate_429", "waf_403", "5xx_placed", "5xx_not_placed",
         "-1006", "-1007", "timeout", "reset_after_send", "2xx_unreadable"],
)  # fmt: skip
def test_every_submit_outcome_is_classified_after_exactly_one_post(fake, fault, expected):
    fake.fault("POST /api/v3/order", fault)
    result = client(fake).new_order(intent())
    if expected == "unknown":
        assert isinstance(result, Unknown) and "unreadable order answer" in result.reason
    else:
        assert result == expected
    assert len(fake.calls(*POST)) == 1


def test_connection_refused_is_a_definitive_not_sent(fake):
    fake.fault("POST /api/v3/order", Fault(False, raise_=httpx.ConnectError("refused")))
    result = client(fake).new_order(intent())
    assert isinstance(result, Rejected) and result.code is None
    assert result.message.startswith("not sent:") and "nothing was sent" in result.message
    assert fake.orders == {}


def test_a_418_bans_the_host_and_the_next_order_is_not_sent(fake):
    fake.fault("POST /api/v3/order", Fault(False, error(418, -1003, "Way too much request weight used; IP banned until 1704067320000.", {"Retry-After": "120"})))  # fmt: skip
    c = client(fake)
    first = c.new_order(intent())
    assert isinstance(first, Rejected) and first.code == -1003 and "IP banned" in first.message
    second = c.new_order(intent(attempt=1))
    assert isinstance(second, Rejected) and second.message.startswith("not sent:")
    assert len(fake.calls(*POST)) == 1
    with pytest.raises(ExchangeBanned):
        c.open_orders("BTCUSDT")


def test_a_418_on_a_read_bans_the_host_for_orders_too(fake):
    fake.fault("GET /api/v3/account", Fault(False, error(418, -1003, "IP banned.", {"Retry-After": "60"})))  # fmt: skip
    c = client(fake)
    with pytest.raises(ExchangeBanned):
        c.account()
    result = c.new_order(intent())
    assert isinstance(result, Rejected) and result.message.startswith("not sent:")
    assert fake.calls(*POST) == [] and len(fake.calls("GET", "/api/v3/account")) == 1


@pytest.mark.parametrize("qty", [0.0, -0.5, float("nan")])
def test_an_order_without_a_positive_quantity_is_not_sent(fake, qty):
    result = client(fake).new_order(intent(qty=qty))
    assert isinstance(result, Rejected) and result.message.startswith("not sent:")
    assert fake.calls(*POST) == []


def test_minus_1021_resyncs_the_clock_and_resends_once(fake):
    c = client(fake)
    c.sync_clock()
    # The server's clock jumps: the client's timestamps fall out of recvWindow.
    fake.skew_ms = 30_000
    result = c.new_order(intent())
    assert isinstance(result, Ack)
    posts = fake.calls(*POST)
    assert len(posts) == 2 and len(fake.orders) == 1
    assert int(posts[1]["timestamp"]) - int(posts[0]["timestamp"]) == 30_000
    assert len(fake.calls("GET", "/api/v3/time")) == 2


def test_minus_1021_twice_is_rejected(fake):
    fake.fault("POST /api/v3/order", *[Fault(False, error(400, -1021, "Timestamp for this request is outside of the recvWindow."))] * 2)  # fmt: skip
    result = client(fake).new_order(intent())
    assert isinstance(result, Rejected) and result.code == -1021
    assert len(fake.calls(*POST)) == 2 and fake.orders == {}


@pytest.mark.parametrize("host", ["api.binance.com", "API3.binance.com", "api.binance.us"])
def test_mainnet_is_refused_unless_allowed(fake, host):
    with pytest.raises(ConfigError, match="allow_mainnet: true"):
        client(fake, base_url=f"https://{host}")
    allowed = client(fake, base_url=f"https://{host}", allow_mainnet=True)
    assert allowed.base_url == f"https://{host}"
    assert fake.requests == []


def test_get_order_minus_2013_is_none_and_a_known_order_is_reported(fake):
    c = client(fake)
    assert c.get_order("BTCUSDT", "nope") is None
    c.new_order(intent(kind=OrderType.LIMIT))
    report = c.get_order("BTCUSDT", intent().client_id)
    assert report is not None and report.status is OrderStatus.NEW and report.price == 42000.0


def test_cancel_open_filled_and_missing_orders(fake):
    c = client(fake)
    c.new_order(intent(kind=OrderType.LIMIT))
    cid = intent().client_id
    cancelled = c.cancel_order("BTCUSDT", cid)
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELED
    assert cancelled.client_id == cid  # origClientOrderId, not the cancel's own id
    c.new_order(intent(attempt=1))  # a market order: filled at once
    filled = c.cancel_order("BTCUSDT", intent(attempt=1).client_id)  # -2011, then a query
    assert filled is not None and filled.status is OrderStatus.FILLED
    assert c.cancel_order("BTCUSDT", "never-sent") is None
    assert len(fake.calls("DELETE", "/api/v3/order")) == 3


def test_signed_reads_retry_5xx_and_honour_429_retry_after(fake):
    fake.fault(
        "GET /api/v3/openOrders",
        Fault(False, httpx.Response(503, text="busy")),
        Fault(False, raise_=httpx.ReadTimeout("slow")),
        Fault(False, error(429, -1003, "Too much request weight used.", {"Retry-After": "7"})),
    )
    c = client(fake)
    assert c.open_orders("BTCUSDT") == []
    assert len(fake.calls("GET", "/api/v3/openOrders")) == 4
    assert 7 in fake.clock.sleeps
    stamps = [int(p["timestamp"]) for p in fake.calls("GET", "/api/v3/openOrders")]
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]  # each attempt signed afresh


def test_a_read_is_refused_for_a_wrong_secret_with_a_hint(fake):
    with pytest.raises(PermanentExchangeError, match="check the API secret") as info:
        client(fake, secret=SECRET[::-1]).account()
    assert info.value.code == -1022 and SECRET[::-1] not in str(info.value)


def test_exchange_info_sets_weight_and_order_limits_and_paces_orders(fake):
    limits = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 2},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 3},
    ]
    fake.info = {**INFO, "rateLimits": limits}
    c = client(fake)
    c.exchange_info(["BTCUSDT"])
    assert c.weights.limit == 1200
    assert c.pacer.limits == {"10S": (10, 2), "1D": (86400, 3)}
    results = [c.new_order(intent(attempt=n)) for n in range(4)]
    assert [type(r).__name__ for r in results] == ["Ack", "Ack", "Ack", "Rejected"]
    assert any(0 < s <= 10 for s in fake.clock.sleeps)  # the third waited for the next 10 s
    assert "order rate limit" in results[3].message and len(fake.calls(*POST)) == 3


def test_ed25519_keys_sign_orders_the_server_verifies():
    private = Ed25519PrivateKey.generate()
    fake = FakeBinance(public_key=private.public_key())
    assert isinstance(
        client(fake, secret=pem(private), key_type="ed25519").new_order(intent()), Ack
    )
    other = pem(Ed25519PrivateKey.generate())
    assert client(fake, secret=other, key_type="ed25519").new_order(intent(attempt=1)) == (
        Rejected(-1022, "Signature for this request is not valid.")
    )


def test_all_orders_reads_24_hour_windows(fake):
    c = client(fake)
    for n in range(3):
        c.new_order(intent(attempt=n))
        fake.clock.sleep(30 * 3600)  # orders 30 h apart
    start = int(fake.clock.t * 1000) - 4 * 86_400_000 + 1  # exactly four days to now
    assert [r.client_id for r in c.all_orders("BTCUSDT", start)] == [
        intent(attempt=n).client_id for n in range(3)
    ]
    assert len(fake.calls("GET", "/api/v3/allOrders")) == 4  # the fake refuses wider windows
    assert len(c.my_trades("BTCUSDT", start)) == 3


def test_keys_never_reach_logs_reprs_or_errors(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.fault("POST /api/v3/order", Fault(True, httpx.Response(503, text="busy")))
    c = client(fake)
    texts = [repr(c), str(c), repr(c.new_order(intent())), repr(c.new_order(intent(attempt=1)))]
    for call in (lambda: client(fake, secret="x" + SECRET).account(),
                 lambda: client(fake, api_key="y" + API_KEY).open_orders("BTCUSDT"),
                 lambda: client(fake, secret=SECRET, key_type="ed25519")):  # fmt: skip
        with pytest.raises(Exception) as info:
            call()
        texts += [str(info.value), repr(info.value)]
    texts.append(caplog.text)
    assert caplog.records, "the client should have logged something to check"
    for secret in (API_KEY, SECRET):
        assert not [t for t in texts if secret in t]


@pytest.mark.parametrize(
    ("value", "increment", "text"),
    [
        (1e-05, None, "0.00001"),
        (0.30000000000000004, "0.00010000", "0.3"),
        (100.0, "1.00000000", "100"),
        (1.2e21, None, "1200000000000000000000"),
        (0.00015, "0.00010000", "0.00015"),  # off the grid: sent as is, Binance refuses it
        (42000.010000000002, "0.01000000", "42000.01"),
    ],
)
def test_format_decimal_never_writes_an_exponent(value, increment, text):
    assert format_decimal(value, increment) == text


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_format_decimal_refuses_non_positive_or_non_finite(value):
    with pytest.raises(ValueError):
        format_decimal(value)
