"""Funding rates: the replay's /fapi/v1/fundingRate and BinanceClient.fetch_funding_rates paging."""

from __future__ import annotations

import json

import httpx
import polars as pl
import pytest

from helpers import SAMPLE
from quantlab.errors import ConfigError, PermanentExchangeError, SchemaError
from quantlab.exchange import BinanceClient, ReplayServer
from quantlab.schema import FUNDING_RATES_SCHEMA

RECORDS = json.loads((SAMPLE / "api/fundingRate/BTCUSDT.json").read_text())
TIMES = [r["fundingTime"] for r in RECORDS]
FIRST, LAST = TIMES[0], TIMES[-1]  # 2022-11-03 08:00:00.016 and 2025-11-12 08:00:00.002


def no_sleep(seconds: float) -> None:
    pass


class Recorder(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.params: list[dict[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.params.append(dict(request.url.params))
        return super().handle_request(request)


def get(srv: ReplayServer, **params) -> httpx.Response:
    return httpx.get(srv.base_url + "/fapi/v1/fundingRate", params=params)


def test_all_3316_records_come_in_pages_of_1000(replay):
    transport = Recorder()
    with BinanceClient(replay.base_url, market="futures_um", transport=transport) as c:
        got = c.fetch_funding_rates("BTCUSDT", 0, 2**41)
    assert got.schema == pl.Schema(FUNDING_RATES_SCHEMA)
    assert got.height == 3316
    assert got["funding_time"].dt.epoch("ms").to_list() == TIMES
    assert got["funding_rate"].to_list() == [float(r["fundingRate"]) for r in RECORDS]
    assert got["mark_price"].null_count() == 3316  # this recording has no markPrice
    assert got["market"].unique().to_list() == ["futures_um"]
    # Each page starts 1 ms after the last record: fundingTime carries ms jitter.
    assert [int(p["startTime"]) for p in transport.params] == [
        0,
        TIMES[999] + 1,
        TIMES[1999] + 1,
        TIMES[2999] + 1,
    ]
    assert {p["limit"] for p in transport.params} == {"1000"}


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (FIRST, FIRST, TIMES[:1]),  # both bounds inclusive, to the ms
        (FIRST + 1, TIMES[2] - 1, TIMES[1:2]),
        (TIMES[999], TIMES[1000], TIMES[999:1001]),  # across a page boundary
        (FIRST - 10**9, FIRST - 1, []),
    ],
)
def test_window_bounds_are_inclusive(replay, start, end, expected):
    with BinanceClient(replay.base_url, market="futures_um") as client:
        got = client.fetch_funding_rates("BTCUSDT", start, end)
    assert got["funding_time"].dt.epoch("ms").to_list() == expected


def test_funding_on_a_spot_client_is_a_config_error(replay):
    with (
        BinanceClient(replay.base_url) as client,
        pytest.raises(ConfigError, match="market='futures_um'"),
    ):
        client.fetch_funding_rates("BTCUSDT", FIRST, LAST)


def test_mark_price_is_kept_and_an_empty_one_is_null():
    # The documentation's example response (which carries markPrice), then an empty markPrice.
    body = [
        {"symbol": "BTCUSDT", "fundingRate": "-0.03750000", "fundingTime": 1570608000000, "markPrice": "34287.54619963"},
        {"symbol": "BTCUSDT", "fundingRate": "0.00010000", "fundingTime": 1570636800000, "markPrice": ""},
    ]  # fmt: skip
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    with BinanceClient("http://binance.test", market="futures_um", transport=transport) as c:
        got = c.fetch_funding_rates("BTCUSDT", 1570608000000, 1570636800000)
    assert got["mark_price"].to_list() == [34287.54619963, None]
    assert got["funding_rate"].to_list() == [-0.0375, 0.0001]


def test_a_body_that_is_not_funding_records_is_a_schema_error():
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=[{"symbol": "BTCUSDT"}]))
    with (
        BinanceClient("http://binance.test", market="futures_um", transport=transport) as c,
        pytest.raises(SchemaError, match="fundingTime"),
    ):
        c.fetch_funding_rates("BTCUSDT", 0, 10)


def test_unknown_symbol_is_permanent(replay):
    with (
        BinanceClient(replay.base_url, market="futures_um", sleep=no_sleep) as client,
        pytest.raises(PermanentExchangeError) as err,
    ):
        client.fetch_funding_rates("NOPEUSDT", FIRST, LAST)
    assert (err.value.status, err.value.code) == (400, -1121)


def test_faults_lose_nothing():
    with (
        ReplayServer(SAMPLE, fail_rate=0.6, seed=8) as srv,
        BinanceClient(srv.base_url, market="futures_um", sleep=no_sleep, max_retries=12) as c,
    ):
        got = c.fetch_funding_rates("BTCUSDT", FIRST, LAST)
    assert got["funding_time"].dt.epoch("ms").to_list() == TIMES
    assert set(srv.faults_injected) == {"503", "reset", "truncated"}


def test_replay_follows_binance_semantics(replay):
    srv = replay
    assert get(srv, symbol="BTCUSDT", startTime=FIRST).json() == RECORDS[:100]  # default 100
    assert get(srv, symbol="BTCUSDT").json() == RECORDS[-200:]  # no times: the latest 200
    assert get(srv, symbol="BTCUSDT", limit=5).json() == RECORDS[-5:]
    assert len(get(srv, symbol="BTCUSDT", startTime=0, limit=5000).json()) == 1000  # capped
    assert get(srv, symbol="BTCUSDT", endTime=TIMES[10], limit=3).json() == RECORDS[8:11]
    between = get(srv, symbol="BTCUSDT", startTime=TIMES[5], endTime=TIMES[7]).json()
    assert between == RECORDS[5:8]
    bad = get(srv, symbol="NOPEUSDT")
    assert (bad.status_code, bad.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert get(srv, symbol="BTCUSDT", startTime="x").json()["code"] == -1100


def test_replay_hides_records_after_its_now():
    with ReplayServer(SAMPLE, now_ms=TIMES[2]) as srv:
        assert get(srv, symbol="BTCUSDT").json() == RECORDS[:3]


def test_funding_rate_costs_no_request_weight():
    with ReplayServer(SAMPLE, clock=lambda: 6_000_000.0) as srv:
        resp = get(srv, symbol="BTCUSDT", limit=1000)
        assert resp.headers["X-MBX-USED-WEIGHT-1M"] == "0"
