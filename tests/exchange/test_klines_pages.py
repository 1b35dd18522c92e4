"""REST klines pages: parsed straight into columns, checked, and fetched again when cut short.

The pages are a real recorded `GET /api/v3/klines` response (BTCUSDT 1h, January 2024),
served by a mock transport with Binance's paging; `klines_from_rows` is the row-by-row
reference the columnar parser must match.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from polars.testing import assert_frame_equal

from helpers import FIXTURES
from quantlab.errors import SchemaError, TemporaryExchangeError
from quantlab.exchange import BinanceClient
from quantlab.schema import klines_from_rows

RECORDED: list[list] = json.loads(
    (FIXTURES / "rest_api_v3_klines_BTCUSDT-1h-2024-01-01.json").read_text()
)
HOUR = 3_600_000
FIRST, LAST = RECORDED[0][0], RECORDED[-1][0]
NOW = LAST + 2 * HOUR  # every recorded candle is closed


def shifted(rows: list[list], hours: int) -> list[list]:
    """The same candles `hours` later: a second month that pages on from the first."""
    ms = hours * HOUR
    return [[r[0] + ms, *r[1:6], r[6] + ms, *r[7:]] for r in rows]


TWO_MONTHS = RECORDED + shifted(RECORDED, len(RECORDED))  # 1488 candles: two spot pages


def binance_page(rows: list[list], params: httpx.QueryParams) -> list[list]:
    """Binance's answer: the first `limit` candles opening in [startTime, endTime]."""
    start, end = int(params["startTime"]), int(params["endTime"])
    return [r for r in rows if start <= r[0] <= end][: int(params["limit"])]


def client(
    klines: Callable[[httpx.QueryParams], httpx.Response], sleeps: list[float] | None = None
) -> tuple[BinanceClient, list[dict]]:
    asked: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": NOW + 1_000_000 * HOUR})
        asked.append(dict(request.url.params))
        return klines(request.url.params)

    sleep = (sleeps if sleeps is not None else []).append
    transport = httpx.MockTransport(handler)
    return BinanceClient("http://binance.test", transport=transport, sleep=sleep), asked


def answer(rows: list[list]) -> httpx.Response:
    return httpx.Response(200, content=json.dumps(rows, separators=(",", ":")).encode())


def test_pages_parse_to_exactly_the_row_by_row_frame():
    c, asked = client(lambda p: answer(binance_page(TWO_MONTHS, p)))
    with c:
        got = c.fetch_klines("BTCUSDT", "1h", FIRST, TWO_MONTHS[-1][0])
    assert [a["startTime"] for a in asked] == [str(FIRST), str(TWO_MONTHS[1000][0])]
    assert_frame_equal(got, klines_from_rows(TWO_MONTHS, "spot", "BTCUSDT", "1h"))


def test_overlapping_pages_keep_one_row_per_open_time_from_the_later_page():
    """A server that starts each page two candles early: the repeats are not doubled."""
    changed = [[*r[:4], "1.00000000", *r[5:]] for r in TWO_MONTHS]

    def sloppy(params: httpx.QueryParams) -> httpx.Response:
        start = int(params["startTime"])
        source = TWO_MONTHS if start == FIRST else changed
        early = {**dict(params), "startTime": str(start - 2 * HOUR)}
        return answer(binance_page(source, httpx.QueryParams(early)))

    c, asked = client(sloppy)
    with c:
        got = c.fetch_klines("BTCUSDT", "1h", FIRST, TWO_MONTHS[-1][0])
    assert len(asked) == 2
    assert got.height == len(TWO_MONTHS)
    assert got["open_time"].is_sorted() and got["open_time"].n_unique() == got.height
    # Candles 998 and 999 came twice; the second page's values won, as Binance's latest.
    assert got["close"].to_list()[997:1001] == [float(TWO_MONTHS[997][4]), 1.0, 1.0, 1.0]


def test_a_body_cut_short_is_fetched_again():
    bodies = [json.dumps(RECORDED).encode()[:5000], json.dumps(RECORDED).encode()]
    sleeps: list[float] = []
    c, asked = client(lambda p: httpx.Response(200, content=bodies.pop(0)), sleeps)
    with c:
        got = c.fetch_klines("BTCUSDT", "1h", FIRST, LAST)
    assert len(asked) == 2 and len(sleeps) == 1
    assert_frame_equal(got, klines_from_rows(RECORDED, "spot", "BTCUSDT", "1h"))


def test_bodies_cut_short_every_time_give_up_as_a_temporary_error():
    cut = json.dumps(RECORDED).encode()[:-1]
    c, asked = client(lambda p: httpx.Response(200, content=cut))
    with c, pytest.raises(TemporaryExchangeError, match=r"failed 6 times.*invalid JSON body"):
        c.fetch_klines("BTCUSDT", "1h", FIRST, LAST)
    assert len(asked) == 6


def test_a_kline_without_12_fields_is_a_schema_error_at_once():
    rows = [*RECORDED[:5], RECORDED[5][:11], *RECORDED[6:]]
    c, asked = client(lambda p: answer(rows))
    with c, pytest.raises(SchemaError, match="not Binance's 12-field array") as err:
        c.fetch_klines("BTCUSDT", "1h", FIRST, LAST)
    assert str(RECORDED[5][0]) in str(err.value) and "check base_url" in str(err.value)
    assert len(asked) == 1  # retrying would not change what the server sends


@pytest.mark.parametrize(
    ("field", "value"),
    [(0, None), (0, "soon"), (6, 1.5), (8, "many"), (2, "n/a"), (7, None)],
)
def test_a_value_that_is_not_a_number_is_a_schema_error(field, value):
    bad = list(RECORDED[3])
    bad[field] = value
    rows = [*RECORDED[:3], bad, *RECORDED[4:]]
    c, asked = client(lambda p: answer(rows))
    with c, pytest.raises(SchemaError, match="not a number"):
        c.fetch_klines("BTCUSDT", "1h", FIRST, LAST)
    assert len(asked) == 1


def test_numbers_sent_with_other_json_types_read_the_same():
    """Times and trade counts as text, decimals as JSON numbers: the same candles."""
    rows = [[str(r[0]), float(r[1]), *r[2:6], str(r[6]), r[7], str(r[8]), *r[9:]] for r in RECORDED]
    c, _ = client(lambda p: answer(rows))
    with c:
        got = c.fetch_klines("BTCUSDT", "1h", FIRST, LAST)
    assert_frame_equal(got, klines_from_rows(RECORDED, "spot", "BTCUSDT", "1h"))
