"""exchangeInfo and funding on a replay root with no recorded `api/` responses.

exchangeInfo is then built from the symbols in the tree: TRADING, Binance's published rate
limits, filters from the recorded mainnet responses where they list the symbol and the
documented defaults otherwise. A recorded response, where there is one, still wins.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import polars as pl
import pytest

from helpers import FIXTURES, SAMPLE
from quantlab.errors import PermanentExchangeError
from quantlab.exchange import BinanceClient, ReplayServer, parse_exchange_info

SPOT_RECORDED = json.loads(
    (FIXTURES / "exchangeInfo_spot_2023-09-08_MAINNET_subset_DERIVED.json").read_text()
)
FUTURES_RECORDED = json.loads(
    (FIXTURES / "exchangeInfo_futures_um_2024-10-02_MAINNET_full.json").read_text()
)
# As Binance publishes them today (spot: rest-api.md; USD-M: the 2024-10-02 mainnet answer).
SPOT_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
]
FUTURES_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]
SPOT_DIR = "data/spot/monthly/klines"
FUTURES_DIR = "data/futures/um/monthly/klines"


def listed(body: dict, symbol: str) -> dict:
    (entry,) = [s for s in body["symbols"] if s["symbol"] == symbol]
    return entry


def add_series(root: Path, folder: str, symbol: str, interval: str, month: str = "") -> None:
    """A symbol's folder in the tree, with one real monthly file of the sample when given."""
    dest = root / folder / symbol / interval
    dest.mkdir(parents=True, exist_ok=True)
    if month:
        shutil.copy(SAMPLE / folder / symbol / interval / f"{symbol}-{interval}-{month}.zip", dest)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    add_series(tmp_path, SPOT_DIR, "ETHUSDT", "1h", "2023-01")
    add_series(tmp_path, SPOT_DIR, "BTCUSDT", "1h", "2023-03")
    add_series(tmp_path, FUTURES_DIR, "AVAXUSDT", "1m", "2026-02")
    # Listed on Binance in 2025, after both recordings: no recorded filters to borrow.
    add_series(tmp_path, SPOT_DIR, "TRUMPUSDT", "1h")
    add_series(tmp_path, FUTURES_DIR, "TRUMPUSDT", "1h")
    return tmp_path


def test_spot_info_lists_the_tree_s_symbols_trading_with_the_real_rate_limits(tree):
    with ReplayServer(tree) as srv:
        resp = httpx.get(srv.base_url + "/api/v3/exchangeInfo")
        now = srv.now_ms()
    assert resp.status_code == 200
    assert resp.headers["X-MBX-USED-WEIGHT-1M"] == "20"
    body = resp.json()
    assert (body["timezone"], body["serverTime"], body["exchangeFilters"]) == ("UTC", now, [])
    assert body["rateLimits"] == SPOT_LIMITS
    assert [s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHUSDT", "TRUMPUSDT"]
    assert {s["status"] for s in body["symbols"]} == {"TRADING"}
    # Listed in the recorded 2023-09-08 mainnet answer: its filters and assets, verbatim.
    for symbol in ("BTCUSDT", "ETHUSDT"):
        recorded = listed(SPOT_RECORDED, symbol)
        entry = listed(body, symbol)
        assert entry["filters"] == recorded["filters"]
        assert (entry["baseAsset"], entry["quoteAsset"]) == (symbol[:3], "USDT")
        assert entry == {**recorded, "status": "TRADING"}


def test_a_symbol_the_recordings_lack_gets_the_documented_default_filters(tree):
    with ReplayServer(tree) as srv:
        spot = httpx.get(srv.base_url + "/api/v3/exchangeInfo", params={"symbol": "TRUMPUSDT"})
        futures = httpx.get(srv.base_url + "/fapi/v1/exchangeInfo").json()
    (trump,) = spot.json()["symbols"]
    assert (trump["symbol"], trump["status"]) == ("TRUMPUSDT", "TRADING")
    assert (trump["baseAsset"], trump["quoteAsset"]) == ("TRUMP", "USDT")
    filters = {f["filterType"]: f for f in trump["filters"]}
    assert filters["PRICE_FILTER"] == {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.00000000",
        "maxPrice": "0.00000000",
        "tickSize": "0.00000001",
    }
    lot = {"minQty": "0.00100000", "maxQty": "100000.00000000", "stepSize": "0.00100000"}
    assert filters["LOT_SIZE"] == {"filterType": "LOT_SIZE", **lot}
    assert filters["MARKET_LOT_SIZE"] == {"filterType": "MARKET_LOT_SIZE", **lot}
    assert filters["NOTIONAL"]["minNotional"] == "10.00000000"
    fut = {f["filterType"]: f for f in listed(futures, "TRUMPUSDT")["filters"]}
    assert fut["MIN_NOTIONAL"] == {"filterType": "MIN_NOTIONAL", "notional": "5.0"}
    assert fut["LOT_SIZE"] == {"filterType": "LOT_SIZE", **lot}
    assert listed(futures, "TRUMPUSDT")["contractType"] == "PERPETUAL"
    # The columns the exchange_info dataset keeps are all filled, and pass its gate's rules.
    df = parse_exchange_info(spot.json(), "spot")
    assert df.row(0, named=True) == {
        "market": "spot",
        "symbol": "TRUMPUSDT",
        "status": "TRADING",
        "base_asset": "TRUMP",
        "quote_asset": "USDT",
        "tick_size": 1e-8,
        "min_price": 0.0,
        "max_price": 0.0,
        "step_size": 0.001,
        "min_qty": 0.001,
        "max_qty": 100000.0,
        "min_notional": 10.0,
    }


def test_futures_info_has_the_usd_m_limits_and_the_recorded_contract(tree):
    with ReplayServer(tree) as srv:
        resp = httpx.get(srv.base_url + "/fapi/v1/exchangeInfo")
    assert resp.status_code == 200
    assert resp.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    body = resp.json()
    assert body["rateLimits"] == FUTURES_LIMITS
    assert [s["symbol"] for s in body["symbols"]] == ["AVAXUSDT", "TRUMPUSDT"]
    assert listed(body, "AVAXUSDT") == {**listed(FUTURES_RECORDED, "AVAXUSDT"), "status": "TRADING"}
    df = parse_exchange_info(body, "futures_um")
    assert df.filter(pl.col("symbol") == "AVAXUSDT")["min_notional"].item() == 5.0


def test_the_client_reads_its_weight_limits_from_it(tree):
    with ReplayServer(tree) as srv:
        with BinanceClient(srv.base_url) as spot:
            assert spot.apply_rate_limits(spot.exchange_info(["ETHUSDT"])) == 6000
            with pytest.raises(PermanentExchangeError) as err:
                spot.exchange_info(["NOPEUSDT"])
            assert (err.value.status, err.value.code) == (400, -1121)
        with BinanceClient(srv.base_url, market="futures_um") as futures:
            assert futures.apply_rate_limits(futures.exchange_info(["AVAXUSDT"])) == 2400


def test_a_lower_replay_weight_limit_is_the_one_announced(tree):
    """A client that obeys the answer must never meet the replay's own 429."""
    with ReplayServer(tree, weight_limit_per_min=3000) as srv:
        spot = httpx.get(srv.base_url + "/api/v3/exchangeInfo").json()["rateLimits"]
        futures = httpx.get(srv.base_url + "/fapi/v1/exchangeInfo").json()["rateLimits"]
    assert spot[0] == {**SPOT_LIMITS[0], "limit": 3000}
    assert spot[1:] == SPOT_LIMITS[1:]
    assert futures == FUTURES_LIMITS


def test_an_empty_tree_lists_no_symbols(tmp_path):
    (tmp_path / "data").mkdir()
    with ReplayServer(tmp_path) as srv:
        resp = httpx.get(srv.base_url + "/api/v3/exchangeInfo")
    assert resp.status_code == 200
    assert resp.json()["symbols"] == []


def test_a_recorded_response_still_wins(tree):
    shutil.copytree(SAMPLE / "api" / "exchangeInfo", tree / "api" / "exchangeInfo")
    with ReplayServer(tree) as srv:
        spot = httpx.get(srv.base_url + "/api/v3/exchangeInfo").json()
        futures = httpx.get(srv.base_url + "/fapi/v1/exchangeInfo").json()
    assert spot == SPOT_RECORDED  # its own rate limits, statuses and symbols, not the tree's
    assert futures == FUTURES_RECORDED


def test_a_perpetual_without_recorded_funding_is_told_so(tree):
    with ReplayServer(tree) as srv:
        resp = httpx.get(srv.base_url + "/fapi/v1/fundingRate", params={"symbol": "AVAXUSDT"})
        unknown = httpx.get(srv.base_url + "/fapi/v1/fundingRate", params={"symbol": "NOPEUSDT"})
        with (
            BinanceClient(srv.base_url, market="futures_um") as client,
            pytest.raises(PermanentExchangeError) as err,
        ):
            client.fetch_funding_rates("AVAXUSDT", 0, 10**13)
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["code"] != -1121
    assert "no funding rates recorded for AVAXUSDT" in body["msg"]
    assert "api/fundingRate/AVAXUSDT.json" in body["msg"]
    assert "no funding rates recorded for AVAXUSDT" in str(err.value)
    assert err.value.code != -1121
    # A symbol the replay knows nothing of is still Binance's invalid symbol.
    assert (unknown.status_code, unknown.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})


def test_a_tree_symbol_the_recorded_info_lacks_is_still_told_it_has_no_funding(tree):
    shutil.copytree(SAMPLE / "api" / "exchangeInfo", tree / "api" / "exchangeInfo")
    with ReplayServer(tree) as srv:
        resp = httpx.get(srv.base_url + "/fapi/v1/fundingRate", params={"symbol": "TRUMPUSDT"})
    assert resp.status_code == 404
    assert "no funding rates recorded for TRUMPUSDT" in resp.json()["msg"]
