"""Orders on the replay exchange: Binance's bodies, filters, balances, fees, matching against the
shipped BTCUSDT klines, the ORDERS rate limit, and every scripted order fault."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from urllib.parse import urlencode

import httpx
import pytest

from helpers import SAMPLE, FakeClock
from quantlab.exchange.replay import Account, ReplayServer, parse_fault

JAN_2024 = 1704067200000  # 2024-01-01 00:00 UTC, a BTCUSDT candle in the sample
DAY = 86_400_000
KEY, SECRET = "alice", "alice-secret"


class Signed:
    """A minimal signed client (the replay's own test helper, not the production adapter)."""

    def __init__(self, srv: ReplayServer, clock: FakeClock, timeout: float = 5):
        self.srv, self.clock, self.timeout = srv, clock, timeout

    def __call__(self, method: str, path: str, **params) -> httpx.Response:
        params["timestamp"] = int(self.clock() * 1000)
        body = urlencode(params)
        body += "&signature=" + hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        url, headers = self.srv.base_url + path, {"X-MBX-APIKEY": KEY}
        if method == "GET":
            return httpx.get(f"{url}?{body}", headers=headers, timeout=self.timeout)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return httpx.request(method, url, content=body, headers=headers, timeout=self.timeout)

    def order(self, **params) -> httpx.Response:
        return self("POST", "/api/v3/order", symbol="BTCUSDT", **params)

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        rows = self("GET", "/api/v3/account").json()["balances"]
        return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in rows}


@pytest.fixture
def srv():
    clock = FakeClock(1_700_000_000.0)
    account = Account(KEY, SECRET, {"USDT": "100000", "BTC": "0.5"})
    with ReplayServer(SAMPLE, now_ms=JAN_2024, accounts=[account], clock=clock) as server:
        yield server


@pytest.fixture
def api(srv):
    return Signed(srv, srv._clock)


def candle(srv: ReplayServer, start_ms: int, limit: int = 1) -> list[list]:
    params = {"symbol": "BTCUSDT", "interval": "1h", "startTime": start_ms, "limit": limit}
    return httpx.get(srv.base_url + "/api/v3/klines", params=params).json()


def test_market_buy_fills_at_the_candle_open_with_the_fee_in_base(srv, api):
    open_price = Decimal(candle(srv, JAN_2024)[0][1])
    resp = api.order(side="BUY", type="MARKET", quantity="0.01", newClientOrderId="m1")
    body = resp.json()
    assert resp.status_code == 200
    assert (body["status"], body["executedQty"], body["clientOrderId"]) == (
        "FILLED",
        "0.01000000",
        "m1",
    )
    (fill,) = body["fills"]
    assert Decimal(fill["price"]) == open_price
    assert (fill["commission"], fill["commissionAsset"]) == ("0.00001000", "BTC")
    assert resp.headers["X-MBX-ORDER-COUNT-10S"] == "0"  # the first fill gives the count back
    balances = api.balances()
    assert balances["BTC"] == (Decimal("0.5") + Decimal("0.00999"), 0)
    assert balances["USDT"] == (Decimal(100000) - open_price * Decimal("0.01"), 0)


def test_market_sell_pays_the_fee_in_quote_and_quote_order_qty_buys_on_the_step(srv, api):
    price = Decimal(candle(srv, JAN_2024)[0][1])
    sold = api.order(side="SELL", type="MARKET", quantity="0.1").json()
    assert sold["fills"][0]["commissionAsset"] == "USDT"
    assert Decimal(sold["fills"][0]["commission"]) == (
        price * Decimal("0.1") * Decimal("0.001")
    ).quantize(Decimal("1e-8"))
    bought = api.order(side="BUY", type="MARKET", quoteOrderQty="1000").json()
    assert Decimal(bought["executedQty"]) == (Decimal(1000) / price).quantize(
        Decimal("0.00001"), "ROUND_DOWN"
    )


@pytest.mark.parametrize("resp_type", ["ACK", "RESULT", "FULL"])
def test_new_order_resp_types(api, resp_type):
    body = api.order(side="BUY", type="MARKET", quantity="0.001", newOrderRespType=resp_type).json()
    assert ("status" in body, "fills" in body) == (resp_type != "ACK", resp_type == "FULL")
    assert {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"} <= set(body)


def test_a_resting_limit_locks_funds_then_cancel_releases_them(api):
    placed = api.order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.1",
        price="30000",
        newClientOrderId="r1",
    )
    assert placed.json()["status"] == "NEW" and placed.json()["fills"] == []
    assert placed.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert api.balances()["USDT"] == (Decimal(97000), Decimal(3000))
    assert (
        api("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="r1").json()["status"]
        == "NEW"
    )
    assert [o["clientOrderId"] for o in api("GET", "/api/v3/openOrders").json()] == ["r1"]
    canceled = api("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="r1").json()
    assert (canceled["status"], canceled["origClientOrderId"]) == ("CANCELED", "r1")
    assert api.balances()["USDT"] == (Decimal(100000), 0)
    again = api("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="r1")
    assert again.json() == {"code": -2011, "msg": "Unknown order sent."}
    missing = api("GET", "/api/v3/order", symbol="BTCUSDT", orderId=999)
    assert missing.json() == {"code": -2013, "msg": "Order does not exist."}


def test_a_resting_limit_fills_as_the_clock_moves_over_the_recorded_candles(srv, api):
    api.order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price="42000",
        newClientOrderId="l1",
    )
    srv.set_now(JAN_2024)  # a fixed clock: it rests
    assert (
        api("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="l1").json()["status"]
        == "NEW"
    )
    srv.set_now(JAN_2024 + 10 * DAY)
    bars = candle(srv, JAN_2024, limit=240)  # what the clock has now moved over
    first = next(b for b in bars if Decimal(b[3]) < 42000)  # the first candle trading through
    order = api("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="l1").json()
    (trade,) = api("GET", "/api/v3/myTrades", symbol="BTCUSDT").json()
    assert order["status"] == "FILLED"
    assert (trade["isMaker"], trade["time"]) == (True, first[0] + 3_600_000)
    assert Decimal(trade["price"]) == min(Decimal(first[1]), Decimal(42000))
    assert api.balances()["USDT"][1] == 0  # nothing left locked


def test_ioc_and_fok_that_do_not_cross_expire_and_a_crossing_limit_takes(api):
    for tif in ("IOC", "FOK"):
        body = api.order(
            side="BUY", type="LIMIT", timeInForce=tif, quantity="0.01", price="30000"
        ).json()
        assert (body["status"], body["executedQty"]) == ("EXPIRED", "0.00000000")
    taken = api.order(
        side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="50000"
    ).json()
    assert taken["status"] == "FILLED" and Decimal(taken["fills"][0]["price"]) < 50000
    maker = api.order(side="BUY", type="LIMIT_MAKER", quantity="0.01", price="50000").json()
    assert maker == {"code": -2010, "msg": "Order would immediately match and take."}


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        (
            {"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "40000.001"},
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        (
            {"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.000015", "price": "40000"},
            -1013,
            "Filter failure: LOT_SIZE",
        ),
        (
            {"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.0001", "price": "40000"},
            -1013,
            "Filter failure: NOTIONAL",
        ),
        ({"type": "MARKET", "quantity": "200"}, -1013, "Filter failure: MARKET_LOT_SIZE"),
        (
            {"type": "MARKET", "quantity": "1e-3"},
            -1100,
            "Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        ),
        (
            {"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01"},
            -1102,
            "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
        ),
        (
            {"type": "MARKET", "quantity": "5"},
            -2010,
            "Account has insufficient balance for requested action.",
        ),
    ],
)
def test_refusals_carry_binances_codes_and_bodies(api, params, code, msg):
    resp = api.order(side="BUY", **params)
    assert (resp.status_code, resp.json()) == (400, {"code": code, "msg": msg})
    assert api("GET", "/api/v3/allOrders", symbol="BTCUSDT").json() == []


def test_a_client_id_is_unique_among_open_orders_only(api):
    limit = {"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "30000"}
    assert api.order(side="BUY", newClientOrderId="dup", **limit).status_code == 200
    dup = api.order(side="BUY", newClientOrderId="dup", **limit)
    assert dup.json() == {"code": -2010, "msg": "Duplicate order sent."}
    api.order(side="BUY", type="MARKET", quantity="0.001", newClientOrderId="done")
    assert (
        api.order(side="BUY", type="MARKET", quantity="0.001", newClientOrderId="done").status_code
        == 200
    )
    ids = [o["clientOrderId"] for o in api("GET", "/api/v3/allOrders", symbol="BTCUSDT").json()]
    assert ids == ["dup", "done", "done"]
    assert len(api("GET", "/api/v3/myTrades", symbol="BTCUSDT").json()) == 2


def test_cancel_all_open_orders_on_a_symbol(api):
    for i in range(3):
        api.order(
            side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.01", price=str(60000 + i)
        )
    assert api.balances()["BTC"] == (Decimal("0.47"), Decimal("0.03"))
    canceled = api("DELETE", "/api/v3/openOrders", symbol="BTCUSDT").json()
    assert [o["status"] for o in canceled] == ["CANCELED"] * 3
    assert api.balances()["BTC"] == (Decimal("0.5"), 0)


def test_the_orders_rate_limit_of_exchange_info_is_enforced(srv, api):
    (ten_s,) = [
        r
        for r in srv.exchange_info("spot")["rateLimits"]
        if r["rateLimitType"] == "ORDERS" and r["interval"] == "SECOND"
    ]
    limit = {"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "30000"}
    for _ in range(ten_s["limit"]):
        assert api.order(side="BUY", **limit).status_code == 200
    over = api.order(side="BUY", **limit)
    assert over.status_code == 429 and over.json()["code"] == -1015
    srv._clock.t += 10  # the next 10-second window
    assert api.order(side="BUY", **limit).headers["X-MBX-ORDER-COUNT-10S"] == "1"


def test_open_orders_weight_depends_on_the_symbol(srv, api):
    before = srv.used_weight()
    api("GET", "/api/v3/openOrders", symbol="BTCUSDT")
    middle = srv.used_weight()
    api("GET", "/api/v3/openOrders")
    assert (middle - before, srv.used_weight() - middle) == (6, 80)


def orders_of(api) -> list[dict]:
    return api("GET", "/api/v3/allOrders", symbol="BTCUSDT").json()


def test_accept_then_503_places_the_order(srv, api):
    srv.order_faults.add("accept_then_503")
    resp = api.order(side="BUY", type="MARKET", quantity="0.001", newClientOrderId="f1")
    assert resp.status_code == 503 and resp.json()["code"] == -1006
    assert [o["clientOrderId"] for o in orders_of(api)] == ["f1"]
    assert srv.order_faults.injected["accept_then_503"] == 1


@pytest.mark.parametrize("drop", [False, True])
def test_accept_then_timeout_places_the_order(srv, api, drop):
    srv.order_faults.add("accept_then_timeout", seconds=2, drop=drop)
    impatient = Signed(srv, srv._clock, timeout=0.3)
    with pytest.raises(httpx.TransportError):
        impatient.order(side="BUY", type="MARKET", quantity="0.001", newClientOrderId="t1")
    assert [o["clientOrderId"] for o in orders_of(api)] == ["t1"]


def test_missing_for_hides_a_new_order_from_n_queries(srv, api):
    srv.order_faults.add("missing_for", n=2)
    assert (
        api.order(side="BUY", type="MARKET", quantity="0.001", newClientOrderId="h1").status_code
        == 200
    )
    codes = [
        api("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="h1").json().get("code")
        for _ in range(3)
    ]
    assert codes == [-2013, -2013, None]


@pytest.mark.parametrize("placed", [True, False])
def test_reset_with_or_without_placing(srv, api, placed):
    srv.order_faults.add("reset", placed=placed)
    with pytest.raises(httpx.TransportError):
        api.order(side="BUY", type="MARKET", quantity="0.001", newClientOrderId="x1")
    assert len(orders_of(api)) == (1 if placed else 0)


def test_a_fault_storm_never_places_an_order_twice_or_loses_one(srv, api):
    srv.order_faults.storm(rate=0.6, seed=3, timeout_s=0.01)
    outcomes = {}
    for i in range(30):
        try:
            outcomes[f"s{i}"] = api.order(
                side="BUY", type="MARKET", quantity="0.001", newClientOrderId=f"s{i}"
            ).status_code
        except httpx.TransportError:
            outcomes[f"s{i}"] = "transport"
    injected = srv.order_faults.injected
    placed = [o["clientOrderId"] for o in orders_of(api)]
    assert sum(injected.values()) > 0 and len(placed) == 30 - injected["reset_unplaced"]
    assert len(set(placed)) == len(placed)
    never_placed = [c for c in outcomes if c not in placed]
    assert all(outcomes[c] == "transport" for c in never_placed)  # only a reset drops one
    btc_bought = sum(Decimal(o["executedQty"]) for o in orders_of(api))
    assert api.balances()["BTC"][0] == Decimal("0.5") + btc_bought * Decimal("0.999")


def test_fault_specs_of_the_cli():
    assert parse_fault("accept_then_timeout:2:15+drop") == (
        "accept_then_timeout",
        2,
        {"seconds": 15.0, "drop": True},
    )
    assert parse_fault("missing_for:1:3") == ("missing_for", 1, {"n": 3})
    assert parse_fault("reset::unplaced") == ("reset", 1, {"placed": False})
    with pytest.raises(ValueError, match="unknown order fault"):
        parse_fault("explode")


def test_the_cli_passes_accounts_faults_and_the_clock_to_the_server(tmp_path, monkeypatch):
    seen = {}

    def serve(root, host, port, fail_rate, latency, **options):
        seen.update(options)

    monkeypatch.setattr("quantlab.exchange.replay.run_replay_server", serve)
    from quantlab.cli import main as cli

    accounts_file = tmp_path / "accounts.json"
    accounts_file.write_text('[{"api_key": "bob", "secret": "b", "balances": {"ETH": 2}}]')
    args = ["replay-server", "--root", str(SAMPLE), "--now", str(JAN_2024)]
    args += ["--account", "alice:a:USDT=100000,BTC=0.5", "--accounts-file", str(accounts_file)]
    args += ["--order-fault", "missing_for:2:3", "--order-fail-rate", "0.5"]
    assert cli(args) == 0
    assert [(a.api_key, dict(a.balances)) for a in seen["accounts"]] == [
        ("alice", {"USDT": 100000, "BTC": Decimal("0.5")}),
        ("bob", {"ETH": 2}),
    ]
    assert (seen["now_ms"], seen["order_faults"].pending()) == (JAN_2024, 2)
    assert cli(["replay-server", "--root", str(SAMPLE), "--account", "no-secret"]) == 2
