"""BinanceClient against the replay exchange (real sample data) and real recorded error bodies."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import FIXTURES, SAMPLE, FakeClock
from quantlab.errors import (
    ConfigError,
    ExchangeBanned,
    PermanentExchangeError,
    TemporaryExchangeError,
)
from quantlab.exchange import BinanceClient, ReplayServer
from quantlab.exchange._weights import choose_klines_limit, klines_weight
from quantlab.schema import KLINES_SCHEMA, klines_from_rows

SPOT_1H = SAMPLE / "data" / "spot" / "monthly" / "klines"
HOUR = 3_600_000
JAN_2023 = 1672531200000
MAY_2023 = 1682899200000
MAR_24_2023 = 1679616000000
LAST_OPEN = 1735686000000  # 2024-12-31 23:00 UTC, the last stored candle
MONTHS = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13)]


def csv_rows(symbol: str, months: list[str]) -> list[list]:
    """Rows of the shipped monthly zips, as REST would type them."""
    rows = []
    for month in months:
        with zipfile.ZipFile(SPOT_1H / symbol / "1h" / f"{symbol}-1h-{month}.zip") as zf:
            text = zf.read(zf.namelist()[0]).decode()
        for line in text.splitlines():
            f = line.split(",")
            rows.append([int(f[0]), *f[1:6], int(f[6]), f[7], int(f[8]), *f[9:12]])
    return rows


def expected(symbol: str, months: list[str]) -> pl.DataFrame:
    return klines_from_rows(csv_rows(symbol, months), "spot", symbol, "1h")


class Recorder(httpx.HTTPTransport):
    """A real transport that remembers what was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)

    def klines_params(self) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests if r.url.path.endswith("/klines")]


def no_sleep(seconds: float) -> None:
    pass


def mock(handler: Callable[[httpx.Request], httpx.Response], **kwargs) -> BinanceClient:
    kwargs.setdefault("sleep", no_sleep)
    return BinanceClient("http://binance.test", transport=httpx.MockTransport(handler), **kwargs)


def fixture_body(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_paging_across_month_files_returns_exactly_the_csv_rows(replay):
    transport = Recorder()
    with BinanceClient(replay.base_url, transport=transport) as client:
        got = client.fetch_klines("BTCUSDT", "1h", JAN_2023, MAY_2023 - HOUR)
    assert got.schema == pl.Schema(KLINES_SCHEMA)
    assert_frame_equal(got, expected("BTCUSDT", MONTHS[:4]))
    pages = transport.klines_params()
    assert [p["limit"] for p in pages] == ["1000", "1000", "1000"]
    # Page 2 spans the halt, so page 3 starts one hour later than the calendar says.
    starts = [JAN_2023, JAN_2023 + 1000 * HOUR, JAN_2023 + 2001 * HOUR]
    assert [int(p["startTime"]) for p in pages] == starts
    assert all(int(p["endTime"]) == MAY_2023 - HOUR for p in pages)


def test_whole_sample_for_every_symbol(replay):
    with BinanceClient(replay.base_url) as client:
        for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
            got = client.fetch_klines(symbol, "1h", JAN_2023, LAST_OPEN)
            assert got.height == 17_543  # the calendar's 17,544 hours less the halt
            assert_frame_equal(got, expected(symbol, MONTHS))


def test_halt_candle_kept_missing_hour_not_invented(replay):
    with BinanceClient(replay.base_url) as client:
        day = client.fetch_klines("BTCUSDT", "1h", MAR_24_2023, MAR_24_2023 + 23 * HOUR)
    hours = day["open_time"].dt.hour().to_list()
    assert len(hours) == 23
    assert 13 not in hours
    halted = day.filter(pl.col("open_time").dt.hour() == 12).row(0, named=True)
    assert halted["volume"] == 0.0
    assert halted["trades"] == 0
    assert halted["close_time"].timestamp() * 1000 == 1679661581646
    march = csv_rows("BTCUSDT", ["2023-03"])
    assert_frame_equal(
        day,
        klines_from_rows(
            [r for r in march if r[0] // 86_400_000 == 19440], "spot", "BTCUSDT", "1h"
        ),
    )


def test_range_is_inclusive_and_start_need_not_be_aligned(replay):
    with BinanceClient(replay.base_url) as client:
        exact = client.fetch_klines("ETHUSDT", "1h", JAN_2023, JAN_2023 + 2 * HOUR)
        unaligned = client.fetch_klines("ETHUSDT", "1h", JAN_2023 + 1, JAN_2023 + 2 * HOUR + 1)
        single = client.fetch_klines("ETHUSDT", "1h", JAN_2023, JAN_2023)
    assert_frame_equal(exact, expected("ETHUSDT", ["2023-01"]).head(3))
    assert_frame_equal(unaligned, exact.tail(2))
    assert single.height == 1


def test_still_forming_candle_is_dropped():
    with (
        ReplayServer(SAMPLE, now_ms=LAST_OPEN + 30 * 60_000) as srv,
        BinanceClient(srv.base_url) as client,
    ):
        got = client.fetch_klines("SOLUSDT", "1h", LAST_OPEN - 5 * HOUR, LAST_OPEN + HOUR)
    # The server does hand out the 23:00 candle (open, not closed), as Binance does.
    assert_frame_equal(got, expected("SOLUSDT", ["2024-12"]).tail(6).head(5))


def test_candle_counts_as_closed_once_now_passes_its_close_time():
    with (
        ReplayServer(SAMPLE, now_ms=LAST_OPEN + HOUR) as srv,
        BinanceClient(srv.base_url) as client,
    ):
        got = client.fetch_klines("SOLUSDT", "1h", LAST_OPEN - HOUR, LAST_OPEN)
    assert got.height == 2


def test_429_retry_after_is_slept_then_the_fetch_completes():
    """The replay answers 429 once its minute is spent; the client sleeps Retry-After."""
    clock = FakeClock(1_000_000 * 60 + 15)
    with (
        ReplayServer(SAMPLE, weight_limit_per_min=5, clock=clock) as srv,
        BinanceClient(srv.base_url, sleep=clock.sleep, clock=clock) as client,
    ):
        # /time (1) + two pages (2 each) fill the minute; the third page gets a 429.
        got = client.fetch_klines("BTCUSDT", "1h", JAN_2023, MAY_2023 - HOUR)
    assert clock.sleeps == [45.0]
    assert_frame_equal(got, expected("BTCUSDT", MONTHS[:4]))


def test_429_with_the_real_body_honours_retry_after():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if len(seen) == 2:
            body = fixture_body("error_429_too_much_weight.json")
            return httpx.Response(429, json=body, headers={"Retry-After": "7"})
        if request.url.path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": JAN_2023 + 10 * HOUR})
        return httpx.Response(200, json=csv_rows("BTCUSDT", ["2023-01"])[:3])

    sleeps: list[float] = []
    with mock(handler, sleep=sleeps.append) as client:
        got = client.fetch_klines("BTCUSDT", "1h", JAN_2023, JAN_2023 + 2 * HOUR)
    assert sleeps == [7.0]
    assert seen == ["/api/v3/time", "/api/v3/klines", "/api/v3/klines"]
    assert_frame_equal(got, expected("BTCUSDT", ["2023-01"]).head(3))


def test_429_forever_gives_up_with_a_temporary_error():
    body = fixture_body("error_429_too_much_weight.json")
    with (
        mock(lambda r: httpx.Response(429, json=body, headers={"Retry-After": "3"})) as c,
        pytest.raises(TemporaryExchangeError) as err,
    ):
        c.server_time()
    assert not isinstance(err.value, ExchangeBanned)
    assert (err.value.status, err.value.code, err.value.retry_after) == (429, -1003, 3.0)
    assert "Too much request weight used" in str(err.value)


def test_418_raises_ip_banned_at_once_naming_the_ban():
    body = fixture_body("error_418_ip_banned.json")
    calls, sleeps = [], []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(418, json=body, headers={"Retry-After": "259200"})

    now = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    with (
        mock(handler, sleep=sleeps.append, clock=lambda: now) as client,
        pytest.raises(ExchangeBanned) as err,
    ):
        client.fetch_klines("BTCUSDT", "1h", JAN_2023, MAY_2023)
    assert len(calls) == 1
    assert sleeps == []
    assert err.value.until == datetime(2023, 11, 17, 22, 13, 20, tzinfo=UTC)
    assert (err.value.status, err.value.code) == (418, -1003)
    assert "banned this IP for 3 d, until 2023-11-17 22:13:20 UTC" in str(err.value)
    assert "IP banned until 1660090423228" in str(err.value)
    assert not isinstance(err.value, TemporaryExchangeError)  # Airflow must not retry it


def test_418_without_retry_after_names_the_end_of_the_ban():
    body = fixture_body("error_418_ip_banned.json")
    with (
        mock(lambda r: httpx.Response(418, json=body)) as client,
        pytest.raises(ExchangeBanned, match=r"until 2022-08-10 00:13:43 UTC") as err,
    ):
        client.server_time()
    assert err.value.until == datetime(2022, 8, 10, 0, 13, 43, 228000, tzinfo=UTC)


def test_faults_at_30_percent_still_return_the_exact_data():
    with (
        ReplayServer(SAMPLE, fail_rate=0.3, seed=3) as srv,
        BinanceClient(srv.base_url, sleep=no_sleep, max_retries=10) as client,
    ):
        for symbol in ("ETHUSDT", "SOLUSDT"):
            got = client.fetch_klines(symbol, "1h", JAN_2023, LAST_OPEN)
            assert_frame_equal(got, expected(symbol, MONTHS))
    # Every kind of fault really happened, and was survived.
    assert set(srv.faults_injected) == {"503", "reset", "truncated"}


def test_invalid_symbol_is_permanent_and_not_retried(replay):
    transport = Recorder()
    with (
        BinanceClient(replay.base_url, transport=transport, sleep=no_sleep) as client,
        pytest.raises(PermanentExchangeError) as err,
    ):
        client.fetch_klines("NOPEUSDT", "1h", JAN_2023, MAY_2023)
    assert (err.value.status, err.value.code) == (400, -1121)
    assert "Invalid symbol." in str(err.value)
    assert "check the symbol" in str(err.value)
    assert len(transport.klines_params()) == 1


def test_retries_exhausted_raise_temporary_error_after_backoff():
    sleeps: list[float] = []
    with (
        ReplayServer(SAMPLE, fail_rate=1.0, seed=1) as srv,
        BinanceClient(srv.base_url, sleep=sleeps.append, max_retries=4) as client,
        pytest.raises(TemporaryExchangeError, match="failed 5 times in a row"),
    ):
        client.fetch_klines("BTCUSDT", "1h", JAN_2023, MAY_2023)
    assert sum(srv.faults_injected.values()) == 5  # one first try and four retries, all failed
    # Capped exponential backoff with jitter: each wait in [d/2, d] for d = 0.5, 1, 2, 4.
    assert len(sleeps) == 4
    for attempt, slept in enumerate(sleeps):
        assert 0.25 * 2**attempt <= slept <= 0.5 * 2**attempt


def test_timeouts_and_bad_json_are_retried():
    answers = iter(
        [
            httpx.ReadTimeout("slow"),
            httpx.Response(200, content=b'{"serverTi'),
            httpx.Response(502, text="Bad Gateway"),
            httpx.Response(200, json={"serverTime": 123}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with mock(handler) as client:
        assert client.server_time() == 123


def test_client_waits_for_the_next_minute_instead_of_earning_a_429():
    clock = FakeClock(1_000_000 * 60 + 10)
    with (
        ReplayServer(SAMPLE, clock=clock) as srv,
        BinanceClient(
            srv.base_url, sleep=clock.sleep, clock=clock, weight_limit_per_min=5
        ) as client,
    ):
        got = client.fetch_klines("BTCUSDT", "1h", JAN_2023, MAY_2023 - HOUR)
    # time (1) + page (2) + page (2) = 5: the third page waits out the minute's 50 s.
    assert clock.sleeps == [50.0]
    assert got.height == expected("BTCUSDT", MONTHS[:4]).height


def test_futures_weights_and_limits_follow_the_documented_table():
    assert [klines_weight("futures_um", n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == [
        1, 1, 2, 2, 5, 5, 10, 10,
    ]  # fmt: skip
    assert klines_weight("spot", 1000) == 2
    assert choose_klines_limit("spot", 5) == 1000
    assert choose_klines_limit("futures_um", 60) == 60  # one page at weight 1
    assert choose_klines_limit("futures_um", 1000) == 1000  # one page at 5 beats 3 at 2
    assert choose_klines_limit("futures_um", 10_000) == 499  # 21 x 2 beats 10 x 5


def test_futures_client_uses_fapi(tmp_path):
    src = (FIXTURES / "vision_futures_um_AVAXUSDT-1m-2026-02_head.csv").read_text()
    dest = tmp_path / "data/futures/um/monthly/klines/AVAXUSDT/1m/AVAXUSDT-1m-2026-02.zip"
    dest.parent.mkdir(parents=True)
    with zipfile.ZipFile(dest, "w") as zf:
        zf.writestr("AVAXUSDT-1m-2026-02.csv", src)
    transport = Recorder()
    start = 1769904000000
    with (
        ReplayServer(tmp_path) as srv,
        BinanceClient(srv.base_url, market="futures_um", transport=transport) as client,
    ):
        got = client.fetch_klines("AVAXUSDT", "1m", start, start + 59 * 60_000)
    assert [r.url.path for r in transport.requests] == ["/fapi/v1/time", "/fapi/v1/klines"]
    assert transport.klines_params()[0]["limit"] == "60"
    assert got.height == 10
    assert got["market"].unique().to_list() == ["futures_um"]
    assert got["open"][0] == 10.113
    assert got["volume"][0] == 38521.0


def test_a_symbol_off_binance_s_pattern_is_refused_before_any_request():
    asked: list[httpx.Request] = []
    with mock(lambda r: asked.append(r) or httpx.Response(500)) as client:
        for call in (
            lambda: client.fetch_klines("btc usdt", "1h", JAN_2023, MAY_2023),
            lambda: client.exchange_info(["BTCUSDT", "eth/usdt"]),
        ):
            with pytest.raises(ConfigError, match="is not a Binance symbol"):
                call()
    assert asked == []


def test_caller_mistakes_are_config_errors(replay):
    with (
        BinanceClient(replay.base_url) as client,
        pytest.raises(ConfigError, match="interval '1M' is not supported"),
    ):
        client.fetch_klines("BTCUSDT", "1M", JAN_2023, MAY_2023)
        with pytest.raises(ConfigError, match="swap them"):
            client.fetch_klines("BTCUSDT", "1h", MAY_2023, JAN_2023)
