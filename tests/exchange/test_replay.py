"""ReplayServer speaks Binance's klines API over the shipped data.binance.vision sample."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import FIXTURES, SAMPLE, FakeClock
from quantlab.exchange.replay import ReplayServer, main

SPOT_1H = SAMPLE / "data" / "spot" / "monthly" / "klines"
HOUR = 3_600_000
MAR_24_2023 = 1679616000000  # 2023-03-24 00:00 UTC
JUN_2025 = 1748736000000  # 2025-06-01 00:00 UTC, the µs spot sample file
MAR_2026 = 1772323200000  # 2026-03-01 00:00 UTC, just after the last stored candle (futures)


def binance_rows(symbol: str, month: str) -> list[list]:
    """A month of the shipped CSV, typed the way REST returns it."""
    path = SPOT_1H / symbol / "1h" / f"{symbol}-1h-{month}.zip"
    with zipfile.ZipFile(path) as zf:
        text = zf.read(zf.namelist()[0]).decode()
    rows = []
    for line in text.splitlines():
        f = line.split(",")
        rows.append([int(f[0]), *f[1:6], int(f[6]), f[7], int(f[8]), *f[9:12]])
    return rows


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def get(http: httpx.Client, srv: ReplayServer, path: str, **params) -> httpx.Response:
    return http.get(srv.base_url + path, params=params)


def test_klines_equal_a_recorded_binance_response(replay, http):
    recorded = json.loads((FIXTURES / "rest_api_v3_klines_BTCUSDT-1h-2024-01-01.json").read_text())
    resp = get(
        http,
        replay,
        "/api/v3/klines",
        symbol="BTCUSDT",
        interval="1h",
        startTime=recorded[0][0],
        limit=744,
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == recorded  # same ints, same decimal strings, same order


def test_start_time_returns_first_limit_rows_from_start(replay, http):
    march = binance_rows("ETHUSDT", "2023-03")
    # Not aligned to the hour: the first candle is the next one that opens at or after it.
    body = get(
        http,
        replay,
        "/api/v3/klines",
        symbol="ETHUSDT",
        interval="1h",
        startTime=march[0][0] + 1,
        limit=3,
    ).json()
    assert body == march[1:4]


def test_start_and_end_time_are_inclusive(replay, http):
    march = binance_rows("BTCUSDT", "2023-03")
    body = get(
        http,
        replay,
        "/api/v3/klines",
        symbol="BTCUSDT",
        interval="1h",
        startTime=march[10][0],
        endTime=march[14][0],
    ).json()
    assert body == march[10:15]


def test_end_time_only_returns_last_limit_rows_up_to_it(replay, http):
    march = binance_rows("SOLUSDT", "2023-03")
    body = get(
        http,
        replay,
        "/api/v3/klines",
        symbol="SOLUSDT",
        interval="1h",
        endTime=march[20][0],
        limit=5,
    ).json()
    assert body == march[16:21]


def test_no_times_returns_the_latest_500_and_limit_is_capped_at_1000(replay, http):
    dec = binance_rows("ETHUSDT", "2024-12")
    latest = get(http, replay, "/api/v3/klines", symbol="ETHUSDT", interval="1h").json()
    assert len(latest) == 500
    assert latest == dec[-500:]
    capped = get(
        http, replay, "/api/v3/klines", symbol="ETHUSDT", interval="1h", startTime=0, limit=5000
    ).json()
    assert len(capped) == 1000
    assert capped[:3] == binance_rows("ETHUSDT", "2023-01")[:3]


def test_the_microsecond_file_is_served_in_ms_after_the_gap(replay, http):
    """BTCUSDT's sample ends 2024-12, then holds 2025-06 from a µs file: REST pages over the gap."""
    after_2024 = get(
        http,
        replay,
        "/api/v3/klines",
        symbol="BTCUSDT",
        interval="1h",
        startTime=1735686000000,
        limit=1000,
    ).json()
    assert len(after_2024) == 1 + 720
    assert after_2024[1][0] == JUN_2025
    assert after_2024[-1][6] == JUN_2025 + 720 * HOUR - 1


def test_halt_candle_is_served_as_stored_and_the_missing_hour_stays_missing(replay, http):
    body = get(
        http,
        replay,
        "/api/v3/klines",
        symbol="BTCUSDT",
        interval="1h",
        startTime=MAR_24_2023 + 10 * HOUR,
        endTime=MAR_24_2023 + 15 * HOUR,
    ).json()
    opens = [(row[0] - MAR_24_2023) // HOUR for row in body]
    assert opens == [10, 11, 12, 14, 15]
    halted = body[2]
    assert halted[5] == "0.00000000"  # zero volume
    assert halted[6] == 1679661581646  # close_time cut short by the halt
    assert halted[8] == 0


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"symbol": "NOPEUSDT", "interval": "1h"}, -1121, "Invalid symbol."),
        ({"symbol": "BTCUSDT", "interval": "7h"}, -1120, "Invalid interval."),
        (
            {"interval": "1h"},
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        ),
        (
            {"symbol": "BTCUSDT", "interval": "1h", "startTime": "yesterday"},
            -1100,
            "Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'.",
        ),
    ],
)
def test_bad_requests_get_binance_error_bodies(replay, params, code, msg, http):
    resp = get(http, replay, "/api/v3/klines", **params)
    assert resp.status_code == 400
    assert resp.json() == {"code": code, "msg": msg}


def test_invalid_symbol_body_is_the_real_one(replay, http):
    real = json.loads((FIXTURES / "error_400_invalid_symbol.json").read_text())
    assert get(http, replay, "/api/v3/klines", symbol="XYZ", interval="1h").json() == real


def test_time_defaults_to_just_after_the_last_stored_candle(replay, http):
    assert get(http, replay, "/api/v3/time").json() == {"serverTime": MAR_2026}
    assert get(http, replay, "/fapi/v1/time").json() == {"serverTime": MAR_2026}
    assert get(http, replay, "/api/v3/ping").json() == {}
    assert get(http, replay, "/fapi/v1/ping").json() == {}
    assert get(http, replay, "/api/v3/fundingRate").status_code == 404  # futures only
    assert get(http, replay, "/api/v3/depth").status_code == 404


def test_now_ms_hides_candles_that_have_not_opened_yet(http):
    now = MAR_24_2023 + 10 * HOUR + 1
    with ReplayServer(SAMPLE, now_ms=now) as srv:
        assert get(http, srv, "/api/v3/time").json() == {"serverTime": now}
        body = get(http, srv, "/api/v3/klines", symbol="BTCUSDT", interval="1h", limit=3).json()
    # The 10:00 candle is still forming but exists, as on Binance; 11:00 does not yet.
    assert [row[0] for row in body] == [MAR_24_2023 + h * HOUR for h in (8, 9, 10)]


def test_weight_is_counted_per_minute_and_the_limit_answers_429(http):
    clock = FakeClock(1_000_000 * 60 + 15)
    with ReplayServer(SAMPLE, weight_limit_per_min=5, clock=clock) as srv:
        assert get(http, srv, "/api/v3/time").headers["X-MBX-USED-WEIGHT-1M"] == "1"
        params = {"symbol": "BTCUSDT", "interval": "1h", "limit": 1}
        assert get(http, srv, "/api/v3/klines", **params).headers["X-MBX-USED-WEIGHT-1M"] == "3"
        assert get(http, srv, "/api/v3/klines", **params).headers["X-MBX-USED-WEIGHT-1M"] == "5"
        refused = get(http, srv, "/api/v3/klines", **params)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "45"  # seconds left in this minute
        assert refused.json() == {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 5 request weight per 1 MINUTE. "
            "Please use the websocket for live updates to avoid polling the API.",
        }
        clock.t += 45
        again = get(http, srv, "/api/v3/klines", **params)
        assert again.status_code == 200
        assert again.headers["X-MBX-USED-WEIGHT-1M"] == "2"


def test_real_429_wording_matches_the_server_template(http):
    real = json.loads((FIXTURES / "error_429_too_much_weight.json").read_text())
    clock = FakeClock(60.0)
    with ReplayServer(SAMPLE, weight_limit_per_min=1200, clock=clock) as srv:
        srv._charge(1200)
        assert get(http, srv, "/api/v3/ping").json() == real


def test_bulk_files_are_served_with_their_checksums(replay, http):
    rel = "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2023-03.zip"
    blob = get(http, replay, "/" + rel)
    assert blob.status_code == 200
    assert blob.content == (SAMPLE / rel).read_bytes()
    checksum = get(http, replay, f"/{rel}.CHECKSUM").text
    assert checksum.split() == [hashlib.sha256(blob.content).hexdigest(), Path(rel).name]
    assert get(http, replay, "/data/spot/monthly/klines/BTCUSDT/1h/nope.zip").status_code == 404
    # Encoded dot segments must not escape the root (../../pyproject.toml exists).
    escape = http.get(replay.base_url + "/data/%2e%2e/%2e%2e/pyproject.toml")
    assert escape.status_code == 404


def test_faults_are_seeded_and_of_every_kind(http):
    outcomes = []
    with ReplayServer(SAMPLE, fail_rate=1.0, seed=7) as srv:
        for _ in range(30):
            try:
                resp = http.get(srv.base_url + "/api/v3/time")
            except httpx.TransportError:
                outcomes.append("reset")
                continue
            if resp.status_code == 503:
                assert resp.json()["code"] == -1008
                outcomes.append("503")
            else:
                with pytest.raises(ValueError):
                    resp.json()
                outcomes.append("truncated")
        counts = dict(srv.faults_injected)
    assert set(outcomes) == {"503", "reset", "truncated"}
    assert counts == {kind: outcomes.count(kind) for kind in set(outcomes)}
    with ReplayServer(SAMPLE, fail_rate=1.0, seed=7) as again:
        for _ in range(30):
            with contextlib.suppress(httpx.TransportError):
                http.get(again.base_url + "/api/v3/time")
        assert dict(again.faults_injected) == counts


def _zip_csv(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w") as zf:
        zf.writestr(dest.with_suffix(".csv").name, src.read_text())


def test_futures_header_line_and_microsecond_spot_files(tmp_path, http):
    fut_csv = FIXTURES / "vision_futures_um_AVAXUSDT-1m-2026-02_head.csv"
    spot_csv = FIXTURES / "vision_spot_BTCUSDT-1h-2025-06_head.csv"
    _zip_csv(
        fut_csv,
        tmp_path / "data/futures/um/monthly/klines/AVAXUSDT/1m/AVAXUSDT-1m-2026-02.zip",
    )
    _zip_csv(spot_csv, tmp_path / "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2025-06.zip")
    with ReplayServer(tmp_path) as srv:
        fut = get(
            http, srv, "/fapi/v1/klines", symbol="AVAXUSDT", interval="1m", startTime=0
        ).json()
        spot = get(http, srv, "/api/v3/klines", symbol="BTCUSDT", interval="1h", startTime=0).json()
        assert get(http, srv, "/api/v3/klines", symbol="AVAXUSDT", interval="1m").status_code == 400
        assert get(http, srv, "/fapi/v1/time").json() == {"serverTime": 1772323200000}  # 2026-03-01
    first = fut_csv.read_text().splitlines()[1].split(",")
    assert len(fut) == 10
    assert fut[0] == [1769904000000, *first[1:6], 1769904059999, first[7], 1077, *first[9:12]]
    assert fut[0][1] == "10.1130"  # the contract's tick size, verbatim
    assert len(spot) == 10
    assert spot[0][0] == 1748736000000  # µs in the file, ms on the wire
    assert spot[0][6] == 1748739599999
    assert spot[0][1] == "104591.88000000"


def test_daily_files_extend_monthly_ones(tmp_path, http):
    src = SPOT_1H / "SOLUSDT" / "1h"
    dest = tmp_path / "data/spot/monthly/klines/SOLUSDT/1h"
    dest.mkdir(parents=True)
    shutil.copy(src / "SOLUSDT-1h-2024-11.zip", dest)
    dec = binance_rows("SOLUSDT", "2024-12")
    daily = tmp_path / "data/spot/daily/klines/SOLUSDT/1h/SOLUSDT-1h-2024-12-01.zip"
    daily.parent.mkdir(parents=True)
    with zipfile.ZipFile(daily, "w") as zf:
        zf.writestr("SOLUSDT-1h-2024-12-01.csv", "".join(_csv_line(r) for r in dec[:24]))
    with ReplayServer(tmp_path) as srv:
        assert get(http, srv, "/api/v3/time").json() == {"serverTime": 1733097600000}  # 12-02
        body = get(http, srv, "/api/v3/klines", symbol="SOLUSDT", interval="1h", limit=30).json()
    assert body == binance_rows("SOLUSDT", "2024-11")[-6:] + dec[:24]


def _csv_line(row: list) -> str:
    return ",".join(str(v) for v in row) + "\n"


def test_main_rejects_a_root_without_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--root", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "data.binance.vision layout" in capsys.readouterr().err


def test_a_broken_bulk_file_is_a_500_that_names_it(tmp_path, http):
    folder = tmp_path / "data/spot/monthly/klines/BTCUSDT/1h"
    folder.mkdir(parents=True)
    good = binance_rows("BTCUSDT", "2023-01")[0]
    with zipfile.ZipFile(folder / "BTCUSDT-1h-2023-01.zip", "w") as zf:
        zf.writestr("BTCUSDT-1h-2023-01.csv", _csv_line(good) + "1672534800000,oops\n")
    with ReplayServer(tmp_path) as srv:
        resp = get(http, srv, "/api/v3/klines", symbol="BTCUSDT", interval="1h")
    assert resp.status_code == 500
    assert resp.json()["code"] == -1000
    assert "BTCUSDT-1h-2023-01.zip:2 is not a row of 12 plain numbers" in resp.json()["msg"]


def raw_get(srv: ReplayServer, target: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request with `target` sent byte for byte (no client quoting), on its own connection."""
    host, port = srv.base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    assert data, f"the server dropped the connection on {target!r} without an answer"
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.fixture
def escapable(tmp_path: Path) -> Path:
    """A root whose data/ sits beside files it must never serve, with symlinks pointing out."""
    root = tmp_path / "root"
    folder = root / "data/spot/monthly/klines/BTCUSDT/1h"
    folder.mkdir(parents=True)
    shutil.copy(SPOT_1H / "BTCUSDT" / "1h" / "BTCUSDT-1h-2023-03.zip", folder)
    (root / "secret.zip").write_bytes(b"SECRET above data/")
    (root / "api").mkdir()
    (root / "api" / "keys.zip.CHECKSUM").write_bytes(b"SECRET in api/")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.zip").write_bytes(b"SECRET outside the root")
    (root / "data/spot/link.zip").symlink_to(root / "secret.zip")
    (root / "data/spot/monthly/klines/EVIL").symlink_to(outside, target_is_directory=True)
    return root


def test_no_file_outside_the_data_folder_is_ever_served(escapable, capfd):
    outside = escapable.parent / "outside" / "x.zip"
    targets = [
        b"/data/../secret.zip",
        b"/data/%2e%2e/secret.zip",
        b"/data/%2E%2E/api/keys.zip.CHECKSUM",
        b"/data/spot/..%2f..%2fsecret.zip",
        b"/data/spot/%2e%2e%2f%2e%2e%2fsecret.zip",
        b"/data/spot/link.zip",
        b"/data/spot/monthly/klines/EVIL/x.zip",
        b"/data/" + str(outside).encode(),
        b"/data/%2F" + str(outside).lstrip("/").replace("/", "%2F").encode(),
        b"/data" + str(outside).encode(),
        b"/data/%5c..%5csecret.zip",
        b"/../secret.zip",
        b"/" + str(escapable / "secret.zip").encode(),
    ]
    with ReplayServer(escapable) as srv:
        for target in targets:
            status, headers, body = raw_get(srv, target)
            assert b"SECRET" not in body, target
            assert status in (400, 404), (target, status)
            assert headers["content-type"].startswith("application/json"), target
            assert json.loads(body)["msg"], target
        good = "/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2023-03.zip"
        status, _, body = raw_get(srv, good.encode())
    assert status == 200
    assert body == (escapable / good.lstrip("/")).read_bytes()
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "target",
    [
        b"/data/%00",
        b"/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2023-03.zip%00.zip",
        b"/data/\x00.zip",
        b"/api/v3/kl%00ines",
        b"/api/v3/klines?symbol=BTC%00USDT&interval=1h",
        b"/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=%C2%B2",
        b"/fapi/v1/klines?symbol=AVAXUSDT&interval=1m&limit=%D9%A1%D9%A2",
        b"/data/" + b"a" * 5000 + b".zip",
        b"/data/%ff%fe.zip",
        b"/api/v3/klines?%zz=1&symbol=BTCUSDT&interval=1h&startTime=%00",
    ],
)
def test_a_malformed_path_gets_a_clean_json_answer_and_no_traceback(replay, capfd, target):
    status, headers, body = raw_get(replay, target)
    assert status in (400, 404)
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["msg"]
    assert "Traceback" not in capfd.readouterr().err
    # The server is still up and answering.
    assert raw_get(replay, b"/api/v3/ping")[0] == 200


def test_a_malformed_request_line_gets_a_json_error(replay, capfd):
    host, port = replay.base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") or head.startswith(b"HTTP/1.0 400")
    assert b"application/json" in head
    assert json.loads(body)["msg"]
    assert "Traceback" not in capfd.readouterr().err


def test_the_cli_refuses_a_root_without_data(tmp_path, capsys, monkeypatch):
    def serve(*args: object) -> None:
        raise AssertionError("served a root without data/")

    monkeypatch.setattr("quantlab.exchange.replay.run_replay_server", serve)
    from quantlab.cli import main as cli

    assert cli(["replay-server", "--root", str(tmp_path)]) == 2
    assert "data.binance.vision layout" in capsys.readouterr().err


def test_each_api_enforces_its_own_weight_limit(http):
    """USD-M allows 2400 a minute and spot 6000, counted apart, as Binance does."""
    clock = FakeClock(60.0)
    with ReplayServer(SAMPLE, clock=clock) as srv:
        srv._charge(2400, "/fapi/v1")
        refused = get(http, srv, "/fapi/v1/time")
        assert refused.status_code == 429
        assert "current limit is 2400 request weight" in refused.json()["msg"]
        assert get(http, srv, "/api/v3/time").status_code == 200  # spot's own budget
        srv._charge(5998, "/api/v3")
        assert get(http, srv, "/api/v3/time").status_code == 200  # the 6000th
        assert get(http, srv, "/api/v3/time").status_code == 429
