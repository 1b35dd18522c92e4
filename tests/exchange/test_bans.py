"""Bans and budgets: a 418 stops every thread and process until it ends, a 429 pauses every
thread, and each market gets its own weight budget."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import httpx
import pytest

from helpers import FIXTURES, FakeClock
from quantlab.errors import ExchangeBanned, ExchangeError, TemporaryExchangeError
from quantlab.exchange import BinanceClient
from quantlab.exchange._bans import BanBook, ban_file
from quantlab.ingest.sources import RestSource

BANNED = json.loads((FIXTURES / "error_418_ip_banned.json").read_text())
NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def server(first: list[httpx.Response]) -> tuple[httpx.MockTransport, list[str]]:
    """Answers `first` in turn, then the server time; records every path asked."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return first.pop(0) if first else httpx.Response(200, json={"serverTime": 123})

    return httpx.MockTransport(handler), asked


def test_a_418_is_recorded_and_every_client_sharing_the_file_refuses_until_it_ends(tmp_path):
    bans = ban_file(tmp_path)
    transport, asked = server([httpx.Response(418, json=BANNED, headers={"Retry-After": "120"})])
    clock = FakeClock(NOW)
    opts = {"transport": transport, "clock": clock, "sleep": lambda s: None, "ban_file": bans}
    with BinanceClient("https://api.binance.test", **opts) as client:
        with pytest.raises(ExchangeBanned, match="until 2023-11-14 22:15:20 UTC"):
            client.server_time()
        with pytest.raises(ExchangeBanned, match=r"until 2023-11-14 22:15:20 UTC.*was not sent"):
            client.server_time()  # the same client: refused unsent
    assert asked == ["/api/v3/time"]
    assert json.loads(bans.read_text())["https://api.binance.test"]["until"] == NOW + 120

    # Another process (an Airflow retry, a sibling mapped task) has only the file to go by.
    with BinanceClient("https://api.binance.test", **opts) as other:
        with pytest.raises(ExchangeBanned) as err:
            other.server_time()
        assert err.value.until == datetime(2023, 11, 14, 22, 15, 20, tzinfo=UTC)
        assert asked == ["/api/v3/time"]
        clock.t += 121  # the ban is over
        assert other.server_time() == 123
    assert asked == ["/api/v3/time"] * 2


def test_a_ban_applies_to_its_host_only(tmp_path):
    BanBook(ban_file(tmp_path), FakeClock(NOW)).record("https://fapi.binance.test", NOW + 60, "418")
    transport, asked = server([])
    opts = {"transport": transport, "clock": FakeClock(NOW), "ban_file": ban_file(tmp_path)}
    with BinanceClient("https://api.binance.test", **opts) as spot:
        assert spot.server_time() == 123
    with (
        BinanceClient("https://fapi.binance.test", market="futures_um", **opts) as um,
        pytest.raises(ExchangeBanned, match=r"fapi\.binance\.test banned this IP until"),
    ):
        um.server_time()
    assert asked == ["/api/v3/time"]


def test_a_ban_of_unknown_length_is_held_for_binance_s_shortest(tmp_path):
    body = {"code": -1003, "msg": "Way too many requests; IP banned."}
    transport, asked = server([httpx.Response(418, json=body)])
    opts = {"transport": transport, "clock": FakeClock(NOW), "ban_file": ban_file(tmp_path)}
    with (
        BinanceClient("https://api.binance.test", **opts) as client,
        pytest.raises(ExchangeBanned, match="for at least 2 min") as err,
    ):
        client.server_time()
    assert asked == ["/api/v3/time"]
    assert err.value.until == datetime(2023, 11, 14, 22, 15, 20, tzinfo=UTC)
    assert not isinstance(err.value, TemporaryExchangeError)


def test_a_429_pauses_every_thread_of_the_client_not_only_the_one_that_got_it():
    """While the thread that got the 429 waits out Retry-After, another thread sends nothing."""
    transport, asked = server([httpx.Response(429, headers={"Retry-After": "7"})])
    during_pause: list[list[str]] = []
    other_blocked: list[bool] = []
    client: BinanceClient

    def sleep(seconds: float) -> None:
        other = threading.Thread(target=client.server_time)
        other.start()
        other.join(timeout=1.0)  # the other thread must still be waiting for the pause
        other_blocked.append(other.is_alive())
        during_pause.append(list(asked))
        sleeps.append(seconds)
        threads.append(other)

    sleeps: list[float] = []
    threads: list[threading.Thread] = []
    with BinanceClient("https://api.binance.test", transport=transport, sleep=sleep) as client:
        assert client.server_time() == 123
        for t in threads:
            t.join()
    assert sleeps == [7.0]
    assert other_blocked == [True]
    assert during_pause == [["/api/v3/time"]]  # only the request that got the 429
    assert len(asked) == 3  # the retry and the other thread's request, after the pause


def test_each_market_gets_its_own_budget_and_exchange_info_replaces_it():
    assert BinanceClient("http://127.0.0.1:1").weights.limit == 6000
    assert BinanceClient("http://127.0.0.1:1", market="futures_um").weights.limit == 2400
    # The stages build their clients through RestSource.
    source = RestSource("http://127.0.0.1:1")
    assert source.client("futures_um").weights.limit == 2400
    assert source.client("spot").weights.limit == 6000
    source.close()

    info = {
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}
        ],
        "symbols": [{"symbol": "BTCUSDT"}],
    }  # fmt: skip
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=info))
    with BinanceClient("http://x.test", market="futures_um", transport=transport) as client:
        client.exchange_info()
        assert client.weights.limit == 1200


def test_a_ban_record_that_is_not_json_stops_calls_rather_than_being_ignored(tmp_path):
    path = ban_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    transport, asked = server([])
    with (
        BinanceClient("https://api.binance.test", transport=transport, ban_file=path) as client,
        pytest.raises(ExchangeError, match="not valid JSON"),
    ):
        client.server_time()
    assert asked == []
