"""exchangeInfo: filters parsed from real mainnet responses, the client call, the replay endpoint."""

from __future__ import annotations

import copy
import json

import httpx
import polars as pl
import pytest

from helpers import FIXTURES, ROOT, SAMPLE
from quantlab.errors import PermanentExchangeError, SchemaError
from quantlab.exchange import BinanceClient, ReplayServer, parse_exchange_info
from quantlab.schema import EXCHANGE_INFO_SCHEMA

SHARED_FULL_SPOT = (
    ROOT.parent
    / "shared/data/binance/api/exchangeInfo/spot_exchangeInfo_2023-09-08_MAINNET_full_verbatim.json"
)
COLUMNS = ["tick_size", "min_price", "max_price", "step_size", "min_qty", "max_qty", "min_notional"]


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


SPOT = load("exchangeInfo_spot_2023-09-08_MAINNET_subset_DERIVED.json")
FUTURES = load("exchangeInfo_futures_um_2024-10-02_MAINNET_full.json")


def row(df: pl.DataFrame, symbol: str) -> dict:
    return df.filter(pl.col("symbol") == symbol).row(0, named=True)


def test_spot_mainnet_filters_come_from_notional_lot_size_and_price_filter():
    df = parse_exchange_info(SPOT, "spot")
    assert df.schema == pl.Schema(EXCHANGE_INFO_SCHEMA)
    assert df.height == 9
    btc = row(df, "BTCUSDT")
    assert (btc["market"], btc["status"], btc["base_asset"], btc["quote_asset"]) == (
        "spot",
        "TRADING",
        "BTC",
        "USDT",
    )
    assert [btc[c] for c in COLUMNS] == [0.01, 0.01, 1000000.0, 0.00001, 0.00001, 9000.0, 5.0]
    assert row(df, "XRPUSDT")["step_size"] == 1.0
    assert row(df, "ETHBTC")["min_notional"] == 0.0001
    assert sorted(df.filter(pl.col("status") == "BREAK")["symbol"]) == ["BCCBTC", "HSRBTC"]


def test_futures_mainnet_min_notional_is_the_notional_field():
    df = parse_exchange_info(FUTURES, "futures_um")
    assert df.height == 347
    assert df["status"].value_counts(sort=True).rows() == [
        ("TRADING", 328),
        ("SETTLING", 18),
        ("PENDING_TRADING", 1),
    ]
    avax = row(df, "AVAXUSDT")
    assert [avax[c] for c in COLUMNS] == [0.001, 0.35, 2403.0, 1.0, 1.0, 100000.0, 5.0]
    assert row(df, "BTCUSDT")["min_notional"] == 100.0
    assert df.select(pl.col(COLUMNS).null_count()).row(0) == (0,) * len(COLUMNS)


@pytest.mark.parametrize(
    ("name", "market", "symbol", "min_notional"),
    [
        ("exchangeInfo_spot_2021-10-22_legacy_MIN_NOTIONAL.json", "spot", "BTCUSDT", 10.0),
        ("exchangeInfo_futures_um_2022-02-19_3symbols.json", "futures_um", "BTCUSDT_220325", 10.0),
    ],
)
def test_older_responses_with_the_legacy_min_notional(name, market, symbol, min_notional):
    assert row(parse_exchange_info(load(name), market), symbol)["min_notional"] == min_notional


@pytest.mark.skipif(not SHARED_FULL_SPOT.is_file(), reason="the full spot file is not shipped")
def test_the_full_spot_mainnet_response():
    df = parse_exchange_info(json.loads(SHARED_FULL_SPOT.read_text()), "spot")
    assert df.height == 2292
    assert df.filter(pl.col("status") == "BREAK").height == 952
    assert df["symbol"].n_unique() == 2292
    assert df.select(pl.col(COLUMNS).null_count()).row(0) == (0,) * len(COLUMNS)


def test_a_filter_the_symbol_lacks_leaves_its_columns_null():
    info = copy.deepcopy(SPOT)
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    btc["filters"] = [f for f in btc["filters"] if f["filterType"] not in ("LOT_SIZE", "NOTIONAL")]
    got = row(parse_exchange_info(info, "spot"), "BTCUSDT")
    assert [got[c] for c in COLUMNS] == [0.01, 0.01, 1000000.0, None, None, None, None]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"rateLimits": []}, "no 'symbols' list"),
        ({"symbols": [{"symbol": "BTCUSDT"}]}, r"symbols\[0\] lacks 'status'"),
        (
            {
                "symbols": [
                    {**SPOT["symbols"][0], "filters": [{"filterType": "LOT_SIZE", "stepSize": "x"}]}
                ]
            },
            "not a decimal number",
        ),
    ],
)
def test_malformed_bodies_are_schema_errors(raw, match):
    with pytest.raises(SchemaError, match=match):
        parse_exchange_info(raw, "spot")


class Recorder(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.responses: list[httpx.Response] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        resp = super().handle_request(request)
        self.responses.append(resp)
        return resp


@pytest.fixture
def server():
    with ReplayServer(SAMPLE, clock=lambda: 6_000_000.0) as srv:  # one weight minute throughout
        yield srv


def test_client_reads_spot_exchange_info_at_weight_20_and_takes_its_rate_limit(server):
    transport = Recorder()
    with BinanceClient(server.base_url, transport=transport, weight_limit_per_min=100) as c:
        info = c.exchange_info()
        assert info == json.loads((SAMPLE / "api/exchangeInfo/spot.json").read_text())
        assert c.apply_rate_limits(info) == 6000
        assert c.weights.limit == 6000
        some = c.exchange_info(["SOLUSDT", "BTCUSDT"])
    assert [s["symbol"] for s in some["symbols"]] == ["SOLUSDT", "BTCUSDT"]
    assert [r.headers["X-MBX-USED-WEIGHT-1M"] for r in transport.responses] == ["20", "40"]
    assert json.loads(transport.responses[1].request.url.params["symbols"]) == [
        "SOLUSDT",
        "BTCUSDT",
    ]


def test_client_reads_futures_exchange_info_at_weight_1_and_filters_it_itself(server):
    with BinanceClient(server.base_url, market="futures_um") as client:
        info = client.exchange_info(["AVAXUSDT"])
        assert [s["symbol"] for s in info["symbols"]] == ["AVAXUSDT"]
        assert client.weights.used == 1
        assert client.apply_rate_limits(client.exchange_info()) == 2400
        with pytest.raises(PermanentExchangeError, match=r"does not list \['NOPEUSDT'\]") as err:
            client.exchange_info(["AVAXUSDT", "NOPEUSDT"])
    assert err.value.code == -1121


def test_unknown_spot_symbol_is_the_exchange_s_invalid_symbol(server):
    with BinanceClient(server.base_url) as client, pytest.raises(PermanentExchangeError) as err:
        client.exchange_info(["BTCUSDT", "NOPEUSDT"])
    assert (err.value.status, err.value.code) == (400, -1121)


def test_rate_limits_without_a_request_weight_minute_are_refused(server):
    with (
        BinanceClient(server.base_url) as client,
        pytest.raises(SchemaError, match="REQUEST_WEIGHT"),
    ):
        client.apply_rate_limits(
            {
                "rateLimits": [
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "SECOND",
                        "intervalNum": 10,
                        "limit": 50,
                    }
                ]
            }
        )


def test_replay_exchange_info_parameters(server):
    url = server.base_url + "/api/v3/exchangeInfo"
    one = httpx.get(url, params={"symbol": "ETHUSDT"}).json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    assert one["rateLimits"] == SPOT["rateLimits"]
    both = httpx.get(url, params={"symbol": "ETHUSDT", "symbols": '["BTCUSDT"]'})
    assert both.json() == {"code": -1128, "msg": "Combination of optional parameters invalid."}
    bad = httpx.get(url, params={"symbols": "BTCUSDT,ETHUSDT"})
    assert (bad.status_code, bad.json()["code"]) == (400, -1100)
    futures = httpx.get(server.base_url + "/fapi/v1/exchangeInfo", params={"symbol": "BTCUSDT"})
    assert len(futures.json()["symbols"]) == 347  # the futures endpoint takes no parameters
    assert futures.headers["X-MBX-USED-WEIGHT-1M"] == "1"
