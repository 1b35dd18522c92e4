"""A local stand-in for Binance: its REST klines API over a data.binance.vision folder.

`root` holds `data/{spot|futures/um}/{monthly|daily}/klines/{SYMBOL}/{interval}/*.zip`, exactly
as data.binance.vision lays it out. The server answers `/api/v3/{klines,time,ping}` (spot) and
`/fapi/v1/{klines,time,ping}` (USD-M futures) with Binance's semantics, serves the bulk files
under `/data/...`, counts request weight per minute and can inject faults. Stdlib only, so it
runs anywhere quantlab does: in tests, in offline DAG runs, or as `quantlab replay-server`.
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import json
import math
import random
import re
import socket
import struct
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from quantlab.errors import SchemaError
from quantlab.exchange._weights import (
    FUTURES_KLINES_MAX_LIMIT,
    SPOT_KLINES_MAX_LIMIT,
    TIME_WEIGHT,
    klines_weight,
)
from quantlab.schema import INTERVAL_MS

# API prefix -> (market, folder under root, max klines limit)
_MARKETS = {
    "/api/v3": ("spot", "data/spot", SPOT_KLINES_MAX_LIMIT),
    "/fapi/v1": ("futures_um", "data/futures/um", FUTURES_KLINES_MAX_LIMIT),
}
_INTERVALS = frozenset({*INTERVAL_MS, "1s", "3d", "1w", "1M"})
_DEFAULT_LIMIT = 500
# Bulk files switched to µs on 2025-01-01 (spot); REST always answers in ms.
_US_THRESHOLD = 10**15
_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
_ROW = re.compile(rf"{_NUMBER}(?:,{_NUMBER}){{11}}")
_PERIOD = re.compile(r"-(\d{4})-(\d{2})(?:-(\d{2}))?\.zip$")
# Wording of a real captured -1003 body (api/errors/error_responses_REAL_REPORTS.json).
_TOO_MUCH_WEIGHT = (
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use the websocket for live updates to avoid polling the API."
)
_FAULTS = ("503", "reset", "truncated")


def _error(code: int, msg: str) -> bytes:
    return json.dumps({"code": code, "msg": msg}, separators=(",", ":")).encode()


class _KlineStore:
    """Bulk kline files, parsed lazily per (market, symbol, interval) into ready JSON rows."""

    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[tuple[str, str, str], tuple[list[int], list[str]]] = {}
        self._lock = threading.Lock()

    def _folders(self, base: str, symbol: str, interval: str = "*") -> list[Path]:
        # Monthly first so that daily files, where both exist, have the last word.
        return [
            folder
            for period in ("monthly", "daily")
            for folder in sorted(
                (self.root / base / period / "klines").glob(f"{symbol}/{interval}")
            )
            if folder.is_dir()
        ]

    def has_symbol(self, base: str, symbol: str) -> bool:
        return bool(self._folders(base, symbol))

    def rows(self, base: str, symbol: str, interval: str) -> tuple[list[int], list[str]]:
        """Sorted open times (ms) and the matching kline rows as JSON array text."""
        key = (base, symbol, interval)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._load(base, symbol, interval)
            return self._cache[key]

    def _load(self, base: str, symbol: str, interval: str) -> tuple[list[int], list[str]]:
        by_open: dict[int, str] = {}
        for folder in self._folders(base, symbol, interval):
            for path in sorted(folder.glob("*.zip")):
                for open_ms, row in _read_zip(path):
                    by_open[open_ms] = row
        opens = sorted(by_open)
        return opens, [by_open[t] for t in opens]

    def last_period_end_ms(self) -> int | None:
        """End of the latest month or day any bulk file covers: after every stored candle."""
        ends = []
        for path in self.root.glob("data/**/klines/*/*/*.zip"):
            if m := _PERIOD.search(path.name):
                year, month, day = int(m[1]), int(m[2]), int(m[3]) if m[3] else None
                if day is None:
                    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
                    ends.append(calendar.timegm((year, month, 1, 0, 0, 0)) * 1000)
                else:
                    ends.append((calendar.timegm((year, month, day, 0, 0, 0)) + 86400) * 1000)
        return max(ends, default=None)


def _read_zip(path: Path) -> list[tuple[int, str]]:
    """Rows of the one CSV in a bulk zip; decimals stay the file's exact text, times become ms."""
    with zipfile.ZipFile(path) as zf:
        text = zf.read(zf.namelist()[0]).decode()
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not _ROW.fullmatch(line):
            if n == 1 or not line:  # futures files start with a header line
                continue
            raise SchemaError(f"{path}:{n} is not a row of 12 plain numbers: {line[:80]!r}")
        f = line.split(",")
        open_ms, close_ms = (
            int(v) // 1000 if int(v) >= _US_THRESHOLD else int(v) for v in f[0:7:6]
        )
        # Times and trade count as ints, decimals as the file's exact text, as Binance sends them.
        quoted = [f'"{v}"' for v in f]
        row = [str(open_ms), *quoted[1:6], str(close_ms), quoted[7], str(int(f[8])), *quoted[9:12]]
        out.append((open_ms, "[" + ",".join(row) + "]"))
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    replay: ReplayServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive requests stall 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        replay = self.server.replay
        if replay.latency_s:
            time.sleep(replay.latency_s)
        fault = replay._draw_fault()
        if fault == "reset":
            # SO_LINGER 0 makes close() send a TCP RST, like a dropped connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault == "503":
            msg = "Server is currently overloaded with other requests. Please try again in a few minutes."
            return self._send(503, _error(-1008, msg), truncate=False)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        prefix, _, endpoint = url.path.rpartition("/")
        if url.path.startswith("/data/"):
            return self._send_file(unquote(url.path), fault == "truncated")
        if prefix not in _MARKETS or endpoint not in ("klines", "time", "ping"):
            return self._send(404, b"Not Found", fault == "truncated", "text/plain")
        weight = TIME_WEIGHT
        if endpoint == "klines":
            limit = query.get("limit", "")
            weight = klines_weight(
                _MARKETS[prefix][0], int(limit) if limit.isdigit() else _DEFAULT_LIMIT
            )
        retry_after = replay._charge(weight)
        if retry_after is not None:
            body = _error(-1003, _TOO_MUCH_WEIGHT.format(limit=replay.weight_limit_per_min))
            return self._send(429, body, fault == "truncated", headers={"Retry-After": retry_after})
        if endpoint == "klines":
            try:
                status, body = replay._klines(prefix, query)
            except (SchemaError, ValueError, OSError, zipfile.BadZipFile) as exc:
                # A broken file under root: say so, the way Binance reports its own failures.
                msg = f"An unknown error occurred while processing the request. (replay: {exc})"
                status, body = 500, _error(-1000, msg)
        elif endpoint == "time":
            status, body = 200, json.dumps({"serverTime": replay.now_ms()}).encode()
        else:
            status, body = 200, b"{}"
        self._send(status, body, fault == "truncated")

    def _send_file(self, rel: str, truncate: bool) -> None:
        root = self.server.replay.root.resolve()
        target = (root / rel.lstrip("/")).resolve()
        ok = target.is_relative_to(root) and target.is_file()
        if not ok or not target.name.endswith((".zip", ".CHECKSUM")):
            return self._send(404, b"Not Found", truncate, "text/plain")
        kind = "application/zip" if target.suffix == ".zip" else "text/plain"
        self._send(200, target.read_bytes(), truncate, kind)

    def _send(
        self,
        status: int,
        body: bytes,
        truncate: bool,
        content_type: str = "application/json;charset=UTF-8",
        headers: dict[str, Any] | None = None,
    ) -> None:
        if truncate:  # a body cut short, with a length header that agrees with the cut
            body = body[: len(body) // 2]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-MBX-USED-WEIGHT-1M", str(self.server.replay.used_weight()))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(body)


class ReplayServer:
    """Binance's market-data REST API over stored bulk files, on a background thread.

    `now_ms` fixes the exchange clock; None puts it just after the last stored candle (so
    every stored candle is closed), "wall" uses `clock`. Candles that open after "now" are
    not served. `clock` also drives the per-minute weight window, so a test can share one
    fake clock between this server and the client's `sleep`.
    """

    def __init__(
        self,
        root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        fail_rate: float = 0.0,
        latency_s: float = 0.0,
        weight_limit_per_min: int = 6000,
        seed: int = 0,
        now_ms: int | Literal["wall"] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.root = Path(root)
        self.host, self.port = host, port
        self.fail_rate, self.latency_s = fail_rate, latency_s
        self.weight_limit_per_min = weight_limit_per_min
        self.store = _KlineStore(self.root)
        self._clock = clock
        self._now_ms = self.store.last_period_end_ms() if now_ms is None else now_ms
        self._rng = random.Random(seed)
        self.faults_injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._minute, self._used = -1, 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ReplayServer is not running; call start() or use it in a with")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ReplayServer:
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.replay = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def now_ms(self) -> int:
        if isinstance(self._now_ms, int):
            return self._now_ms
        return int(self._clock() * 1000)

    def used_weight(self) -> int:
        with self._lock:
            return self._used if self._minute == int(self._clock() // 60) else 0

    def _charge(self, weight: int) -> int | None:
        """Count `weight` in this minute; over the limit, return Retry-After seconds instead."""
        with self._lock:
            now = self._clock()
            if int(now // 60) != self._minute:
                self._minute, self._used = int(now // 60), 0
            if self._used + weight > self.weight_limit_per_min:
                return max(1, math.ceil((self._minute + 1) * 60 - now))
            self._used += weight
            return None

    def _draw_fault(self) -> str | None:
        with self._lock:
            if self.fail_rate and self._rng.random() < self.fail_rate:
                fault = self._rng.choice(_FAULTS)
                self.faults_injected[fault] += 1
                return fault
            return None

    def _klines(self, prefix: str, query: dict[str, str]) -> tuple[int, bytes]:
        _, base, max_limit = _MARKETS[prefix]
        for name in ("symbol", "interval"):
            if not query.get(name):
                msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                return 400, _error(-1102, msg)
        for name in ("startTime", "endTime", "limit"):
            if name in query and not re.fullmatch(r"[0-9]{1,20}", query[name]):
                msg = f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
                return 400, _error(-1100, msg)
        if not re.fullmatch(r"[A-Z0-9\-_.]{1,20}", query["symbol"]):
            msg = "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
            return 400, _error(-1100, msg)
        # No dots: a symbol names a folder, and "." or ".." must not walk the tree.
        if "." in query["symbol"] or not self.store.has_symbol(base, query["symbol"]):
            return 400, _error(-1121, "Invalid symbol.")
        if query["interval"] not in _INTERVALS:
            return 400, _error(-1120, "Invalid interval.")
        opens, rows = self.store.rows(base, query["symbol"], query["interval"])
        limit = min(max(int(query.get("limit", _DEFAULT_LIMIT)), 1), max_limit)
        # Only candles that have opened by the exchange's "now" exist yet.
        hi = bisect.bisect_right(opens, self.now_ms())
        if "endTime" in query:
            hi = min(hi, bisect.bisect_right(opens, int(query["endTime"])))
        if "startTime" in query:
            lo = bisect.bisect_left(opens, int(query["startTime"]))
            picked = rows[lo : min(hi, lo + limit)]
        else:
            picked = rows[max(hi - limit, 0) : hi]
        return 200, ("[" + ",".join(picked) + "]").encode()


def run_replay_server(
    root: Path | str,
    host: str = "127.0.0.1",
    port: int = 8765,
    fail_rate: float = 0.0,
    latency_s: float = 0.0,
) -> None:
    """Serve `root` in the foreground until Ctrl-C."""
    server = ReplayServer(root, host, port, fail_rate=fail_rate, latency_s=latency_s)
    server.start()
    print(f"replaying {server.root} on {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """`quantlab replay-server --root DIR [--host H] [--port N] [--fail-rate X] [--latency S]`."""
    parser = argparse.ArgumentParser(
        prog="quantlab replay-server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--root", type=Path, default=Path("data/sample"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each reply")
    args = parser.parse_args(argv)
    if not (args.root / "data").is_dir():
        parser.error(f"{args.root} has no data/ folder in the data.binance.vision layout")
    run_replay_server(args.root, args.host, args.port, args.fail_rate, args.latency)
    return 0
