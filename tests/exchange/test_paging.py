"""REST paging edges of BinanceClient.fetch_klines against the replay exchange (real sample data)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import httpx
import pytest
from polars.testing import assert_frame_equal

from helpers import SAMPLE
from quantlab.exchange import BinanceClient, ReplayServer
from quantlab.exchange._weights import klines_weight
from quantlab.schema import klines_from_rows

HOUR, MINUTE = 3_600_000, 60_000
JUN_2023 = 1685577600000  # 2023-06-01 00:00 UTC: no halt in the 2,000 hours after it
JAN_2023 = 1672531200000
AVAX_FEB = 1769904000000  # 2026-02-01 00:00 UTC
AVAX_ROWS = 40_320


class Recorder(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)

    def klines_params(self) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests if r.url.path.endswith("/klines")]


def zip_rows(path: Path) -> list[list]:
    """A bulk file's rows typed the way REST returns them (header skipped, µs to ms)."""
    with zipfile.ZipFile(path) as zf:
        lines = zf.read(zf.namelist()[0]).decode().splitlines()
    rows = []
    for line in lines:
        f = line.split(",")
        if not f[0].isdigit():
            continue
        times = [int(v) // 1000 if int(v) > 10**14 else int(v) for v in (f[0], f[6])]
        rows.append([times[0], *f[1:6], times[1], f[7], int(f[8]), *f[9:12]])
    return rows


def spot_rows(symbol: str, months: list[str]) -> list[list]:
    folder = SAMPLE / "data/spot/monthly/klines" / symbol / "1h"
    return [r for m in months for r in zip_rows(folder / f"{symbol}-1h-{m}.zip")]


def fetch(server: ReplayServer, *args, market: str = "spot") -> tuple:
    transport = Recorder()
    with BinanceClient(server.base_url, market=market, transport=transport) as client:
        got = client.fetch_klines(*args)
    return got, transport.klines_params()


JUN_TO_SEP = spot_rows("ETHUSDT", ["2023-06", "2023-07", "2023-08", "2023-09"])


@pytest.mark.parametrize("bars", [1000, 2000])
def test_a_window_of_exact_pages_asks_no_empty_extra_page(replay, bars):
    got, pages = fetch(replay, "ETHUSDT", "1h", JUN_2023, JUN_2023 + (bars - 1) * HOUR)
    assert_frame_equal(got, klines_from_rows(JUN_TO_SEP[:bars], "spot", "ETHUSDT", "1h"))
    assert [int(p["startTime"]) for p in pages] == [
        JUN_2023 + k * 1000 * HOUR for k in range(bars // 1000)
    ]
    assert {p["limit"] for p in pages} == {"1000"}


def test_one_bar_more_than_a_page_takes_a_second_page_of_one(replay):
    got, pages = fetch(replay, "ETHUSDT", "1h", JUN_2023, JUN_2023 + 1000 * HOUR)
    assert got.height == 1001
    assert [int(p["startTime"]) for p in pages] == [JUN_2023, JUN_2023 + 1000 * HOUR]


def test_a_page_short_by_the_halt_ends_the_paging(replay):
    """1,000 calendar hours over 2023-03-24 hold 999 bars: the short page is the last."""
    start = 1679616000000 - 500 * HOUR
    got, pages = fetch(replay, "BTCUSDT", "1h", start, start + 999 * HOUR)
    assert got.height == 999
    assert len(pages) == 1


def test_a_window_inside_one_page(replay):
    start = JUN_2023 + 100 * HOUR
    got, pages = fetch(replay, "ETHUSDT", "1h", start, start + 9 * HOUR)
    assert_frame_equal(got, klines_from_rows(JUN_TO_SEP[100:110], "spot", "ETHUSDT", "1h"))
    assert len(pages) == 1
    assert pages[0]["endTime"] == str(start + 9 * HOUR)


@pytest.mark.parametrize(("end_offset", "rows"), [(0, 3), (-1, 2), (HOUR - 1, 3)])
def test_end_time_is_inclusive_of_a_bar_opening_exactly_then(replay, end_offset, rows):
    end = JUN_2023 + 2 * HOUR + end_offset
    got, _ = fetch(replay, "ETHUSDT", "1h", JUN_2023, end)
    assert_frame_equal(got, klines_from_rows(JUN_TO_SEP[:rows], "spot", "ETHUSDT", "1h"))


def test_futures_month_of_1m_pages_by_the_weight_table():
    """40,320 bars: 81 pages of up to 499 (weight 2 each) beat 27 of 1500 (weight 10)."""
    path = SAMPLE / "data/futures/um/monthly/klines/AVAXUSDT/1m/AVAXUSDT-1m-2026-02.zip"
    expected = klines_from_rows(zip_rows(path), "futures_um", "AVAXUSDT", "1m")
    assert expected.height == AVAX_ROWS
    with ReplayServer(SAMPLE, clock=lambda: 6_000_000.0) as srv:  # one weight minute throughout
        end = AVAX_FEB + (AVAX_ROWS - 1) * MINUTE
        got, pages = fetch(srv, "AVAXUSDT", "1m", AVAX_FEB, end, market="futures_um")
        used = srv.used_weight("/fapi/v1")
    assert_frame_equal(got, expected)
    limits = [int(p["limit"]) for p in pages]
    assert len(pages) == 81
    assert limits[:80] == [499] * 80
    assert limits[80] == AVAX_ROWS - 80 * 499
    assert sum(klines_weight("futures_um", n) for n in limits) == 162
    assert used == 162 + 1  # and the server charged exactly that, plus /fapi/v1/time


def test_spot_pages_ask_for_the_largest_page_and_start_after_the_last_bar(replay):
    got, pages = fetch(replay, "BTCUSDT", "1h", JAN_2023, JAN_2023 + 2500 * HOUR)
    # The halt hides 13:00 on 2023-03-24, so the third page starts one hour past the grid.
    assert [int(p["startTime"]) for p in pages] == [
        JAN_2023,
        JAN_2023 + 1000 * HOUR,
        JAN_2023 + 2001 * HOUR,
    ]
    assert {p["limit"] for p in pages} == {"1000"}
    assert got.height == 2500
