"""VisionSource: plans over monthly and daily files, verified reads, ms/µs/header files, HTTP."""

from __future__ import annotations

import calendar
import hashlib
import json
import shutil
import zipfile
from datetime import timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import FIXTURES, SAMPLE
from quantlab.errors import ChecksumMismatch, ConfigError, PermanentExchangeError, SchemaError
from quantlab.exchange import BinanceClient, ReplayServer, VisionSource
from quantlab.schema import KLINES_SCHEMA, klines_from_rows

SPOT = "data/spot/monthly/klines"
HOUR, DAY = 3_600_000, 86_400_000
NOV_2024, DEC_2024, JAN_2025 = 1730419200000, 1733011200000, 1735689600000
JUN_2025 = 1748736000000
MAR_2023, APR_2023 = 1677628800000, 1680307200000
AVAX = "data/futures/um/monthly/klines/AVAXUSDT/1m/AVAXUSDT-1m-2026-02.zip"


def no_sleep(seconds: float) -> None:
    pass


def write_zip(root: Path, rel: str, csv: str) -> Path:
    """A zip in the vision layout holding `csv`, with its `.CHECKSUM` beside it."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.name.replace(".zip", ".csv"), csv)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    return path


def copy_sample(root: Path, symbol: str, month: str) -> None:
    rel = f"{SPOT}/{symbol}/1h/{symbol}-1h-{month}.zip"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".CHECKSUM"):
        shutil.copy(SAMPLE / (rel + suffix), root / (rel + suffix))


def sample_lines(symbol: str, month: str) -> list[str]:
    with zipfile.ZipFile(SAMPLE / f"{SPOT}/{symbol}/1h/{symbol}-1h-{month}.zip") as zf:
        return zf.read(zf.namelist()[0]).decode().splitlines()


def write_days(root: Path, symbol: str, month: str, days: range) -> None:
    """Daily files cut from the real monthly file, one per day, as data.binance.vision has them."""
    lines = sample_lines(symbol, month)
    for day in days:
        start = calendar.timegm((int(month[:4]), int(month[5:7]), day, 0, 0, 0)) * 1000
        mine = [ln for ln in lines if start <= int(ln.split(",")[0]) < start + DAY]
        rel = f"data/spot/daily/klines/{symbol}/1h/{symbol}-1h-{month}-{day:02d}.zip"
        write_zip(root, rel, "\n".join(mine) + "\n")


def rows_of(lines: list[str], market: str, symbol: str, interval: str) -> pl.DataFrame:
    rows = []
    for line in lines:
        f = line.split(",")
        if f[0].isdigit():
            t = [int(v) // 1000 if int(v) > 10**14 else int(v) for v in (f[0], f[6])]
            rows.append([t[0], *f[1:6], t[1], f[7], int(f[8]), *f[9:12]])
    return klines_from_rows(rows, market, symbol, interval)


def plan_names(source: VisionSource, *args) -> list[tuple[str, str]]:
    return [(f.period, f.date) for f in source.plan(*args)]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """SOLUSDT: monthly 2024-11 and 2024-12, daily 2024-12-01..03 and 2025-01-01..02."""
    copy_sample(tmp_path, "SOLUSDT", "2024-11")
    copy_sample(tmp_path, "SOLUSDT", "2024-12")
    write_days(tmp_path, "SOLUSDT", "2024-12", range(1, 4))
    return tmp_path


def test_plan_takes_whole_months_monthly_and_the_rest_daily(tree):
    source = VisionSource(tree)
    end = DEC_2024 + 3 * DAY - HOUR  # 2024-12-03 23:00, the last bar of the third day
    assert plan_names(source, "spot", "SOLUSDT", "1h", NOV_2024, end) == [
        ("monthly", "2024-11"),
        ("daily", "2024-12-01"),
        ("daily", "2024-12-02"),
        ("daily", "2024-12-03"),
    ]
    # A month ending on its last bar is whole; one starting late is not.
    whole = plan_names(source, "spot", "SOLUSDT", "1h", NOV_2024, JAN_2025 - HOUR)
    assert whole == [("monthly", "2024-11"), ("monthly", "2024-12")]
    late = plan_names(source, "spot", "SOLUSDT", "1h", DEC_2024 + DAY + 5 * HOUR, end)
    assert late == [("daily", "2024-12-02"), ("daily", "2024-12-03")]


def test_plan_falls_back_to_the_monthly_file_where_days_are_missing(tree):
    source = VisionSource(tree)
    # 2024-11-10 onwards: no daily files for November, so its monthly file stands in.
    got = plan_names(source, "spot", "SOLUSDT", "1h", NOV_2024 + 9 * DAY, DEC_2024 + DAY)
    assert got == [("monthly", "2024-11"), ("daily", "2024-12-01"), ("daily", "2024-12-02")]


def test_plan_uses_daily_files_for_a_month_without_its_monthly_file(tmp_path):
    write_days(tmp_path, "SOLUSDT", "2024-12", range(1, 32))
    got = plan_names(VisionSource(tmp_path), "spot", "SOLUSDT", "1h", DEC_2024, JAN_2025 - HOUR)
    assert got == [("daily", f"2024-12-{d:02d}") for d in range(1, 32)]


def test_fetch_reads_the_window_and_says_where_rest_takes_over(tree):
    source = VisionSource(tree)
    start, end = NOV_2024 + 5 * HOUR, JAN_2025 + 10 * DAY
    bars, covered = source.fetch_klines("spot", "SOLUSDT", "1h", start, end)
    nov_dec = rows_of(
        sample_lines("SOLUSDT", "2024-11") + sample_lines("SOLUSDT", "2024-12"),
        "spot",
        "SOLUSDT",
        "1h",
    )
    assert_frame_equal(bars, nov_dec.slice(5))
    assert covered == JAN_2025 - HOUR  # the rest comes over REST, from covered + 1h
    inside, last = source.fetch_klines("spot", "SOLUSDT", "1h", start, start + 3 * HOUR + 59)
    assert_frame_equal(inside, nov_dec.slice(5, 4))
    assert last == start + 3 * HOUR


def test_bulk_then_rest_equals_rest_alone(replay):
    start, end = 1672531200000, JUN_2025 + 29 * DAY  # 2023-01-01 .. 2025-06-30 00:00
    bars, covered = VisionSource(SAMPLE).fetch_klines("spot", "BTCUSDT", "1h", start, end)
    assert covered == JAN_2025 - HOUR  # 2025-01 has no file: bulk stops there, never skips it
    with BinanceClient(replay.base_url) as client:
        rest = client.fetch_klines("BTCUSDT", "1h", covered + HOUR, end)
        everything = client.fetch_klines("BTCUSDT", "1h", start, end)
    assert_frame_equal(pl.concat([bars, rest]), everything)
    assert bars.height == 17_543
    assert rest.height == 29 * 24 + 1


def test_a_missing_first_period_leaves_everything_to_rest(tree):
    bars, covered = VisionSource(tree).fetch_klines(
        "spot", "SOLUSDT", "1h", NOV_2024 - DAY, JAN_2025
    )
    assert (bars.height, covered) == (0, None)
    assert bars.schema == pl.Schema(KLINES_SCHEMA)


def test_microsecond_file_reads_as_rest_returns_it(replay):
    source = VisionSource(SAMPLE)
    (file,) = source.plan("spot", "BTCUSDT", "1h", JUN_2025, JUN_2025 + 29 * DAY + 23 * HOUR)
    bars = source.read(file)
    with BinanceClient(replay.base_url) as client:
        rest = client.fetch_klines("BTCUSDT", "1h", JUN_2025, JUN_2025 + 30 * DAY)
    assert_frame_equal(bars, rest)
    assert bars.height == 720
    # Against the file's first line, independently: µs in the file, ms in the frame.
    head = (FIXTURES / "vision_spot_BTCUSDT-1h-2025-06_head.csv").read_text().splitlines()
    assert head[0].startswith("1748736000000000,104591.88000000,")
    first = bars.row(0, named=True)
    assert first["open_time"].timestamp() * 1000 == JUN_2025
    assert first["close_time"].timestamp() * 1000 == JUN_2025 + HOUR - 1
    assert (first["open"], first["trades"]) == (104591.88, 81426)


def test_millisecond_file_reads_as_a_recorded_rest_response():
    recorded = json.loads((FIXTURES / "rest_api_v3_klines_BTCUSDT-1h-2024-01-01.json").read_text())
    source = VisionSource(SAMPLE)
    (file,) = source.plan("spot", "BTCUSDT", "1h", recorded[0][0], recorded[-1][0])
    assert_frame_equal(source.read(file), klines_from_rows(recorded, "spot", "BTCUSDT", "1h"))


def test_futures_file_with_its_header_line():
    source = VisionSource(SAMPLE)
    (file,) = source.plan("futures_um", "AVAXUSDT", "1m", 1769904000000, 1772323199999)
    assert (file.period, file.rel) == ("monthly", AVAX)
    bars = source.read(file)
    head = (FIXTURES / "vision_futures_um_AVAXUSDT-1m-2026-02_head.csv").read_text().splitlines()
    assert head[0].startswith("open_time,open,high")
    assert_frame_equal(bars.head(len(head) - 1), rows_of(head, "futures_um", "AVAXUSDT", "1m"))
    assert bars.height == 40_320
    assert bars["open_time"].diff().drop_nulls().unique().to_list() == [timedelta(minutes=1)]


def test_a_corrupt_file_is_refused_naming_both_digests(tmp_path):
    copy_sample(tmp_path, "ETHUSDT", "2023-03")
    path = tmp_path / f"{SPOT}/ETHUSDT/1h/ETHUSDT-1h-2023-03.zip"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    source = VisionSource(tmp_path)
    (file,) = source.plan("spot", "ETHUSDT", "1h", 1677628800000, 1680307199999)
    with pytest.raises(ChecksumMismatch) as err:
        source.read(file)
    expected = (path.parent / (path.name + ".CHECKSUM")).read_text().split()[0]
    assert (err.value.expected, err.value.actual) == (expected, hashlib.sha256(blob).hexdigest())
    assert expected in str(err.value) and err.value.actual in str(err.value)
    assert "ETHUSDT-1h-2023-03.zip" in str(err.value)
    assert "download both again" in str(err.value)
    with pytest.raises(ChecksumMismatch):  # nor does fetch_klines fall back to anything
        source.fetch_klines("spot", "ETHUSDT", "1h", 1677628800000, 1680307199999)


def test_a_missing_checksum_is_refused_unless_verify_is_off(tmp_path):
    copy_sample(tmp_path, "ETHUSDT", "2023-03")
    (tmp_path / f"{SPOT}/ETHUSDT/1h/ETHUSDT-1h-2023-03.zip.CHECKSUM").unlink()
    source = VisionSource(tmp_path)
    (file,) = source.plan("spot", "ETHUSDT", "1h", 1677628800000, 1680307199999)
    with pytest.raises(ChecksumMismatch, match="verify=False"):
        source.read(file)
    assert source.read(file, verify=False).height == 743  # March 2023 less the halted hour


def test_bars_outside_the_file_s_period_are_refused(tmp_path):
    lines = sample_lines("ETHUSDT", "2023-03")
    write_zip(tmp_path, f"{SPOT}/ETHUSDT/1h/ETHUSDT-1h-2023-04.zip", "\n".join(lines) + "\n")
    source = VisionSource(tmp_path)
    (file,) = source.plan("spot", "ETHUSDT", "1h", 1680307200000, 1682899199999)
    with pytest.raises(SchemaError, match="outside its period 2023-04"):
        source.read(file)


def test_bad_arguments_are_config_errors():
    source = VisionSource(SAMPLE)
    with pytest.raises(ConfigError, match="interval '1M'"):
        source.plan("spot", "BTCUSDT", "1M", 0, 1)
    with pytest.raises(ConfigError, match="swap them"):
        source.plan("spot", "BTCUSDT", "1h", 2, 1)
    with pytest.raises(ConfigError, match="unknown market"):
        source.plan("coinm", "BTCUSDT", "1h", 1, 2)  # type: ignore[arg-type]
    # A symbol names a folder: one off Binance's pattern never reaches the file system.
    for bad in ("../../etc", "..", "btcusdt"):
        with pytest.raises(ConfigError, match="is not a Binance symbol"):
            source.plan("spot", bad, "1h", 1, 2)


def test_over_http_with_faults_the_data_is_the_same(tree):
    local = VisionSource(tree).fetch_klines("spot", "SOLUSDT", "1h", NOV_2024, DEC_2024 + 3 * DAY)
    with (
        ReplayServer(tree, fail_rate=0.5, seed=4) as srv,
        VisionSource(srv.base_url, sleep=no_sleep, max_retries=12) as remote,
    ):
        plan = remote.plan("spot", "SOLUSDT", "1h", NOV_2024, DEC_2024 + 3 * DAY)
        got = remote.fetch_klines("spot", "SOLUSDT", "1h", NOV_2024, DEC_2024 + 3 * DAY)
        assert plan[0].url == f"{srv.base_url}/{SPOT}/SOLUSDT/1h/SOLUSDT-1h-2024-11.zip"
    assert [(f.period, f.date) for f in plan] == plan_names(
        VisionSource(tree), "spot", "SOLUSDT", "1h", NOV_2024, DEC_2024 + 3 * DAY
    )
    assert_frame_equal(got[0], local[0])
    assert got[1] == local[1]
    # Truncated bodies arrived and were caught by the checksum, then fetched again.
    assert set(srv.faults_injected) == {"503", "reset", "truncated"}


def test_over_http_only_the_newest_months_without_a_monthly_file_are_searched_by_day(tree):
    """Each look-up is a request: October (before the listing, say) costs one, not 32."""
    for suffix in ("", ".CHECKSUM"):  # December not published as a month yet
        (tree / f"{SPOT}/SOLUSDT/1h/SOLUSDT-1h-2024-12.zip{suffix}").unlink()
    with ReplayServer(tree) as srv, VisionSource(srv.base_url) as remote:
        got = plan_names(remote, "spot", "SOLUSDT", "1h", NOV_2024 - 31 * DAY, JAN_2025 - HOUR)
        misses = srv.responses[404]
    assert got == [("monthly", "2024-11")] + [("daily", f"2024-12-0{d}") for d in (1, 2, 3)]
    assert misses == 2 + 28  # the two monthly files, December's 28 other days; no October day
    local = plan_names(
        VisionSource(tree), "spot", "SOLUSDT", "1h", NOV_2024 - 31 * DAY, JAN_2025 - HOUR
    )
    assert local == got


def test_over_http_a_corrupt_file_is_refused_after_fetching_it_again(tmp_path):
    copy_sample(tmp_path, "ETHUSDT", "2023-03")
    path = tmp_path / f"{SPOT}/ETHUSDT/1h/ETHUSDT-1h-2023-03.zip"
    path.write_bytes(path.read_bytes()[:-10])
    sleeps: list[float] = []
    with (
        ReplayServer(tmp_path) as srv,
        VisionSource(srv.base_url, sleep=sleeps.append, max_retries=2) as source,
    ):
        (file,) = source.plan("spot", "ETHUSDT", "1h", 1677628800000, 1680307199999)
        with pytest.raises(ChecksumMismatch, match="SHA-256"):
            source.read(file)
        zip_gets = srv.responses[200]
    assert len(sleeps) == 2  # three downloads, two waits between them
    assert zip_gets == 1 + 3 + 2  # the plan's checksum, three zips, two fresh checksums


def served_from(root: Path, first: list[httpx.Response]) -> tuple[httpx.MockTransport, list[str]]:
    """data.binance.vision over the folder `root`; the first requests get `first` instead."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path.rsplit("/", 1)[-1])
        if first:
            return first.pop(0)
        path = root / request.url.path.lstrip("/")
        return (
            httpx.Response(200, content=path.read_bytes())
            if path.is_file()
            else httpx.Response(404)
        )

    return httpx.MockTransport(handler), asked


def test_over_http_downloads_wait_out_429s_and_back_off_on_5xx_like_api_calls(tmp_path):
    copy_sample(tmp_path, "ETHUSDT", "2023-03")
    busy = [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(503)]
    transport, asked = served_from(tmp_path, busy)
    sleeps: list[float] = []
    with VisionSource("http://vision.test", transport=transport, sleep=sleeps.append) as source:
        (file,) = source.plan("spot", "ETHUSDT", "1h", MAR_2023, APR_2023 - 1)
        bars = source.read(file)
    checksum = "ETHUSDT-1h-2023-03.zip.CHECKSUM"
    assert asked == [checksum, checksum, checksum, "ETHUSDT-1h-2023-03.zip"]
    assert sleeps[0] == 7.0  # Retry-After, then the second backoff step: in [0.5, 1] s
    assert len(sleeps) == 2 and 0.5 <= sleeps[1] <= 1.0
    assert bars.height == 743  # March 2023 less the halted hour


def test_over_http_a_403_is_permanent_and_not_retried(tmp_path):
    copy_sample(tmp_path, "ETHUSDT", "2023-03")
    transport, asked = served_from(tmp_path, [httpx.Response(403, text="AccessDenied")])
    with (
        VisionSource("http://vision.test", transport=transport, sleep=no_sleep) as source,
        pytest.raises(PermanentExchangeError, match="check the bulk-data base URL") as err,
    ):
        source.plan("spot", "ETHUSDT", "1h", MAR_2023, APR_2023 - 1)
    assert err.value.status == 403
    assert len(asked) == 1
