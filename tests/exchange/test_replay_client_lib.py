"""A real Binance client library (python-binance), unchanged but for its base URL, trades on the
replay exchange: place, query and cancel an order, read balances and trades."""

from __future__ import annotations

import pytest

from helpers import SAMPLE
from quantlab.exchange.replay import Account, ReplayServer

binance = pytest.importorskip("binance")

JAN_2024 = 1704067200000  # 2024-01-01 00:00 UTC: BTCUSDT's candle opens at 42283.58 (sample)
KEY, SECRET = "libKey", "libSecret"


@pytest.fixture
def client():
    account = Account(KEY, SECRET, {"USDT": "10000", "BTC": "0"})
    with ReplayServer(SAMPLE, now_ms=JAN_2024, accounts=[account]) as srv:
        lib = binance.Client(KEY, SECRET, ping=False)
        lib.API_URL = srv.base_url + "/api"  # the one change: where it sends requests
        yield lib
        lib.close_connection()


def test_python_binance_places_queries_cancels_and_reads_balances_and_trades(client):
    bought = client.order_market_buy(symbol="BTCUSDT", quantity="0.01")
    assert bought["status"] == "FILLED"
    assert bought["fills"][0]["price"] == "42283.58000000"

    resting = client.order_limit_buy(
        symbol="BTCUSDT", quantity="0.01", price="30000.00", newClientOrderId="lib-1"
    )
    assert resting["status"] == "NEW"
    queried = client.get_order(symbol="BTCUSDT", origClientOrderId="lib-1")
    assert (queried["orderId"], queried["status"]) == (resting["orderId"], "NEW")
    assert [o["clientOrderId"] for o in client.get_open_orders(symbol="BTCUSDT")] == ["lib-1"]

    canceled = client.cancel_order(symbol="BTCUSDT", orderId=resting["orderId"])
    assert canceled["status"] == "CANCELED"
    assert client.get_open_orders(symbol="BTCUSDT") == []

    balances = {b["asset"]: b for b in client.get_account()["balances"]}
    assert balances["BTC"]["free"] == "0.00999000"  # 0.01 less the 0.1% fee, in BTC
    assert balances["USDT"] == {"asset": "USDT", "free": "9577.16420000", "locked": "0.00000000"}
    trades = client.get_my_trades(symbol="BTCUSDT")
    assert [(t["orderId"], t["qty"], t["commissionAsset"]) for t in trades] == [
        (bought["orderId"], "0.01000000", "BTC")
    ]


def test_python_binance_raises_the_replay_error_codes(client):
    with pytest.raises(binance.exceptions.BinanceAPIException) as missing:
        client.get_order(symbol="BTCUSDT", origClientOrderId="never-sent")
    assert missing.value.code == -2013
    with pytest.raises(binance.exceptions.BinanceAPIException) as poor:
        client.order_market_buy(symbol="BTCUSDT", quantity="1")  # 42,283 USDT > 10,000
    assert (poor.value.code, poor.value.message) == (
        -2010,
        "Account has insufficient balance for requested action.",
    )
