"""ingest_klines against the replay exchange over the real sample: exact, incremental, gaps."""

from __future__ import annotations

import json
import shutil

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ingest.support import (
    APR_2023,
    FEB_2026,
    HALT_OPEN,
    HOUR,
    JAN_2023,
    JAN_2025,
    MAR_2026,
    MINUTE,
    SAMPLE,
    no_sleep,
    sort,
    source_klines,
    stored,
)
from quantlab.errors import ChecksumMismatch, IPBannedError, PermanentExchangeError
from quantlab.exchange.replay import ReplayServer
from quantlab.ingest import BulkSource, RestSource, ingest_klines

JUL_2023 = 1688169600000
JUN_2025, JUL_2025 = 1748736000000, 1751328000000
SPOT = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
YEARS = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))


def spot(catalog, source, symbols=SPOT, start=JAN_2023, end=JAN_2025, **kw):
    return ingest_klines(
        catalog,
        source,
        market="spot",
        interval="1h",
        symbols=symbols,
        start_ms=start,
        end_ms=end,
        **kw,
    )


def futures(catalog, source, **kw):
    return ingest_klines(
        catalog,
        source,
        market="futures_um",
        interval="1m",
        symbols=["AVAXUSDT"],
        start_ms=FEB_2026,
        end_ms=MAR_2026,
        **kw,
    )


def expected_spot(symbols=SPOT) -> pl.DataFrame:
    """2023 and 2024 of the shipped spot files (a later BTCUSDT month is tested on its own)."""
    frames = [source_klines("spot", s, "1h", months=YEARS) for s in symbols]
    return sort(pl.concat(frames))


def gaps(catalog) -> list[tuple]:
    df = catalog.load("klines_gaps").sort("symbol")
    return [
        (r["symbol"], r["gap_start"], r["gap_end"], r["bars_missing"])
        for r in df.with_columns(
            pl.col("gap_start").dt.epoch("ms"), pl.col("gap_end").dt.epoch("ms")
        ).iter_rows(named=True)
    ]


def test_spot_rest_backfill_equals_the_source_files_and_a_rerun_adds_nothing(catalog, rest):
    first = spot(catalog, rest, batch_rows=20_000)
    assert first.ok
    assert_frame_equal(stored(catalog), expected_spot())
    assert first.rows_added == 3 * (2 * 8760 + 24 - 1)  # 2023 + leap 2024, minus the halt hour
    # The real 2023-03-24 halt: asked for twice, then recorded once per symbol.
    assert gaps(catalog) == [(s, HALT_OPEN, HALT_OPEN, 1) for s in SPOT]
    assert first.known_gaps == first.gaps_recorded == 3
    assert first.requests > 0 and first.weight_used > 0
    version, gaps_version = catalog.latest("klines"), catalog.latest("klines_gaps")

    before = rest.usage()[0]
    again = spot(catalog, rest)
    assert again.rows_added == 0 and again.gaps_recorded == 0 and again.known_gaps == 3
    assert catalog.latest("klines") == version  # nothing written at all
    assert catalog.latest("klines_gaps") == gaps_version
    assert rest.usage()[0] == before  # and nothing asked for: the halt is known


def test_futures_rest_backfill_equals_the_source_file(catalog, rest):
    result = futures(catalog, rest)
    assert result.ok and result.rows_added == 40_320
    assert_frame_equal(stored(catalog), source_klines("futures_um", "AVAXUSDT", "1m"))
    assert futures(catalog, rest).rows_added == 0


@pytest.mark.parametrize("remote", [False, True], ids=["folder", "http"])
def test_bulk_backfill_spot_and_futures_equals_the_source_files(catalog, replay, remote):
    location = replay.base_url if remote else SAMPLE
    source = BulkSource(location, vision_options={"sleep": no_sleep})
    try:
        assert spot(catalog, source, symbols=["BTCUSDT", "ETHUSDT"]).ok
        assert futures(catalog, source).ok
        assert source.usage()[0] > 0 if remote else source.usage() == (0, 0)
        again = spot(catalog, source, symbols=["BTCUSDT", "ETHUSDT"])
    finally:
        source.close()
    assert_frame_equal(stored(catalog, "spot"), expected_spot(["BTCUSDT", "ETHUSDT"]))
    assert_frame_equal(stored(catalog, "futures_um"), source_klines("futures_um", "AVAXUSDT", "1m"))
    assert again.rows_added == 0
    assert [g[0] for g in gaps(catalog)] == ["BTCUSDT", "ETHUSDT"]  # the halt, from the files


def test_bulk_files_first_then_rest_for_the_newest_months(catalog, tmp_path, rest):
    """Bulk files stop at 2023-06; REST brings the rest; the table is the whole source."""
    part = tmp_path / "vision"
    src = SAMPLE / "data" / "spot" / "monthly" / "klines" / "BTCUSDT" / "1h"
    dst = part / "data" / "spot" / "monthly" / "klines" / "BTCUSDT" / "1h"
    dst.mkdir(parents=True)
    for month in range(1, 7):
        for suffix in (".zip", ".zip.CHECKSUM"):
            name = f"BTCUSDT-1h-2023-{month:02d}{suffix}"
            shutil.copy(src / name, dst / name)
    source = BulkSource(part, rest=rest)
    result = spot(catalog, source, symbols=["BTCUSDT"])
    assert result.ok
    assert_frame_equal(stored(catalog), expected_spot(["BTCUSDT"]))
    # Only the months after the bulk files went to REST: 18 months of 1h in pages of 1000.
    klines_requests = result.requests
    assert 0 < klines_requests < 60

    # Without REST, what the files do not hold is pending, not a gap.
    catalog2 = type(catalog)(tmp_path / "catalog2")
    bulk_only = BulkSource(part)
    alone = spot(catalog2, bulk_only, symbols=["BTCUSDT"])
    assert alone.series[0].pending_bars == (JAN_2025 - JUL_2023) // HOUR
    assert gaps(catalog2) == [("BTCUSDT", HALT_OPEN, HALT_OPEN, 1)]


def test_a_rerun_continues_after_the_last_stored_candle(catalog, rest):
    spot(catalog, rest, symbols=["ETHUSDT"], end=APR_2023)
    before = rest.usage()[0]
    second = spot(catalog, rest, symbols=["ETHUSDT"])
    first_quarter = (APR_2023 - JAN_2023) // HOUR - 1  # minus the halt hour
    assert second.rows_added == 17_543 - first_quarter
    assert second.series[0].bars_requested == (JAN_2025 - APR_2023) // HOUR
    assert_frame_equal(stored(catalog), expected_spot(["ETHUSDT"]))
    assert rest.usage()[0] - before <= 1 + 1 + 15  # time, per-fetch time, 15 pages


def test_refresh_rewrites_the_same_rows(catalog, rest):
    spot(catalog, rest, symbols=["SOLUSDT"], start=APR_2023 - 24 * HOUR, end=APR_2023)
    table = stored(catalog)
    again = spot(
        catalog, rest, symbols=["SOLUSDT"], start=APR_2023 - 24 * HOUR, end=APR_2023, refresh=True
    )
    assert again.rows_added == 0 and again.series[0].bars_requested == 24
    assert catalog.latest("klines").version == 1  # rewritten...
    assert_frame_equal(stored(catalog), table)  # ...with the same rows


def test_only_closed_candles_land(catalog):
    # The exchange's clock is 30 minutes into the 10:00 candle of 2023-02-01.
    now = 1675245600000 + 30 * MINUTE
    with ReplayServer(SAMPLE, now_ms=now) as server:
        source = RestSource(server.base_url)
        result = spot(catalog, source, symbols=["BTCUSDT"], start=JAN_2023, end=APR_2023)
        source.close()
    table = stored(catalog)
    assert table["open_time"].max().timestamp() * 1000 == now - 30 * MINUTE - HOUR
    assert result.series[0].pending_bars > 0 and result.gaps_recorded == 0
    with ReplayServer(SAMPLE) as server:
        source = RestSource(server.base_url)
        spot(catalog, source, symbols=["BTCUSDT"], start=JAN_2023, end=APR_2023)
        source.close()
    assert_frame_equal(
        stored(catalog),
        source_klines("spot", "BTCUSDT", "1h", months=("2023-01", "2023-02", "2023-03")),
    )


def test_fault_injection_ends_with_the_same_table(catalog, tmp_path):
    with ReplayServer(SAMPLE, fail_rate=0.3, seed=7) as server:
        source = RestSource(server.base_url, {"sleep": no_sleep, "max_retries": 10})
        result = spot(catalog, source, symbols=["BTCUSDT", "ETHUSDT"], workers=3)
        source.close()
        assert set(server.faults_injected) == {"503", "reset", "truncated"}
    assert result.ok
    assert_frame_equal(stored(catalog), expected_spot(["BTCUSDT", "ETHUSDT"]))
    assert result.requests > sum(server.faults_injected.values())


def test_a_corrupt_bulk_file_is_refused_and_nothing_of_it_lands(catalog, tmp_path):
    root = tmp_path / "vision"
    folder = root / "data" / "spot" / "monthly" / "klines" / "BTCUSDT" / "1h"
    shutil.copytree(SAMPLE / "data" / "spot" / "monthly" / "klines" / "BTCUSDT" / "1h", folder)
    blob = bytearray((folder / "BTCUSDT-1h-2023-02.zip").read_bytes())
    blob[100] ^= 0xFF
    (folder / "BTCUSDT-1h-2023-02.zip").write_bytes(bytes(blob))
    source = BulkSource(root)
    result = spot(catalog, source, symbols=["BTCUSDT"], end=APR_2023)
    assert isinstance(result.errors["spot BTCUSDT 1h"], ChecksumMismatch)
    with pytest.raises(ChecksumMismatch):
        result.raise_for_errors()
    months = stored(catalog)["open_time"].dt.month().unique().to_list()
    assert 2 not in months  # January may have landed; February never


def test_an_invalid_symbol_fails_alone(catalog, rest):
    result = spot(catalog, rest, symbols=["BTCUSDT", "NOPEUSDT"], end=APR_2023)
    assert list(result.errors) == ["spot NOPEUSDT 1h"]
    assert isinstance(result.errors["spot NOPEUSDT 1h"], PermanentExchangeError)
    assert stored(catalog)["symbol"].unique().to_list() == ["BTCUSDT"]
    with pytest.raises(PermanentExchangeError, match="Invalid symbol"):
        result.raise_for_errors()


def test_an_ip_ban_stops_the_run_at_once(catalog):
    banned = json.dumps(
        {"code": -1003, "msg": "Way too much request weight used; IP banned until 1700000000000."}
    )
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/time"):
            return httpx.Response(200, json={"serverTime": JAN_2025})
        return httpx.Response(418, text=banned, headers={"Retry-After": "120"})

    source = RestSource("http://exchange.test", transport=httpx.MockTransport(handler))
    result = spot(catalog, source, symbols=[f"S{i}USDT" for i in range(8)], workers=2)
    assert all(isinstance(e, IPBannedError) for e in result.errors.values())
    assert len(result.errors) == 8
    assert sum(p.endswith("/klines") for p in calls) <= 2  # no request after the ban
    with pytest.raises(IPBannedError, match="2 min"):
        result.raise_for_errors()


def test_the_weight_budget_can_come_from_exchange_info(replay):
    source = RestSource(replay.base_url, {"weight_limit_per_min": 50}, exchange_limits=True)
    try:
        assert source.client("spot").weights.limit == 6000  # the recorded mainnet rateLimits
    finally:
        source.close()


@pytest.mark.parametrize("kind", ["rest", "bulk"])
def test_a_microsecond_spot_file_lands_in_milliseconds(catalog, rest, kind):
    """BTCUSDT 2025-06: spot bulk files store µs from 2025; REST and bulk agree with the file."""
    source = rest if kind == "rest" else BulkSource(SAMPLE)
    result = spot(catalog, source, symbols=["BTCUSDT"], start=JUN_2025, end=JUL_2025)
    assert result.ok and result.rows_added == 720
    assert_frame_equal(stored(catalog), source_klines("spot", "BTCUSDT", "1h", months=("2025-06",)))


def test_requests_and_weight_are_what_the_exchange_counted(catalog):
    """March 2023 of one symbol: the clock, one page, then the halt hour asked for again."""
    with ReplayServer(SAMPLE) as server:  # its own: the weight header counts the whole IP
        source = RestSource(server.base_url)
        result = spot(catalog, source, symbols=["BTCUSDT"], start=1677628800000, end=APR_2023)
        source.close()
    # time (the run's clock), time + klines (the month), time + klines (the halt hour)
    assert result.requests == 5
    assert result.weight_used == 1 + (1 + 2) + (1 + 2)  # GET /api/v3/klines weighs 2
