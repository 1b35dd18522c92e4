"""A local stand-in for Binance: its market-data REST API over a data.binance.vision folder.

`root` holds `data/{spot|futures/um}/{monthly|daily}/klines/{SYMBOL}/{interval}/*.zip`, exactly
as data.binance.vision lays it out, and optionally recorded responses under `api/` (funding
rates, exchangeInfo; see `_vision_store`). The server answers `/api/v3/{klines,time,ping,
exchangeInfo}` (spot) and `/fapi/v1/{klines,time,ping,exchangeInfo,fundingRate}` (USD-M
futures) with Binance's semantics (`_replay_routes`), serves the bulk files under `/data/...`,
counts request weight per minute and can inject faults. Stdlib and polars only, so it runs
anywhere quantlab does: in tests, in offline DAG runs, or as `quantlab replay-server`.
"""

from __future__ import annotations

import argparse
import math
import random
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
from quantlab.exchange import _replay_routes as routes
from quantlab.exchange._vision_store import KlineStore, RecordStore

# Wording of a real captured -1003 body (api/errors/error_responses_REAL_REPORTS.json).
_TOO_MUCH_WEIGHT = (
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use the websocket for live updates to avoid polling the API."
)
_FAULTS = ("503", "reset", "truncated")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    replay: ReplayServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive requests stall 40 ms.
    disable_nagle_algorithm = True
    server: _Server
    _api: str | None = None  # the API prefix of this request, whose weight the headers report

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
        self._api = None
        if fault == "503":
            msg = "Server is currently overloaded with other requests. Please try again in a few minutes."
            return self._send(503, routes.error(-1008, msg), truncate=False)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        prefix, _, endpoint = url.path.rpartition("/")
        self._api = prefix if prefix in routes.MARKETS else None
        if url.path.startswith("/data/"):
            return self._send_file(unquote(url.path), fault == "truncated")
        if not routes.exists(prefix, endpoint):
            return self._send(404, b"Not Found", fault == "truncated", "text/plain")
        retry_after = replay._charge(routes.weight(prefix, endpoint, query), prefix)
        if retry_after is not None:
            body = routes.error(-1003, _TOO_MUCH_WEIGHT.format(limit=replay.weight_limit_per_min))
            return self._send(429, body, fault == "truncated", headers={"Retry-After": retry_after})
        try:
            status, body = routes.answer(replay, prefix, endpoint, query)
        except (SchemaError, ValueError, OSError, zipfile.BadZipFile) as exc:
            # A broken file under root: say so, the way Binance reports its own failures.
            msg = f"An unknown error occurred while processing the request. (replay: {exc})"
            status, body = 500, routes.error(-1000, msg)
        kind = "application/json;charset=UTF-8" if body[:1] in (b"{", b"[") else "text/plain"
        self._send(status, body, fault == "truncated", kind)

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
        self.server.replay._count(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self._api is not None:  # the API's weight; data.binance.vision files carry none
            self.send_header("X-MBX-USED-WEIGHT-1M", str(self.server.replay.used_weight(self._api)))
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
        self.store = KlineStore(self.root)
        self.records = RecordStore(self.root)
        self._clock = clock
        self._now_ms = self.store.last_period_end_ms() if now_ms is None else now_ms
        self._rng = random.Random(seed)
        self.faults_injected: Counter[str] = Counter()
        self.responses: Counter[int] = Counter()  # HTTP status -> how many were sent
        self._lock = threading.Lock()
        self._weights: dict[str, tuple[int, int]] = {}  # API prefix -> (minute, weight used)
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

    def used_weight(self, api: str = "/api/v3") -> int:
        """Weight used this minute on `api` (spot and futures count apart, as on Binance)."""
        with self._lock:
            minute, used = self._weights.get(api, (-1, 0))
            return used if minute == int(self._clock() // 60) else 0

    def _charge(self, weight: int, api: str = "/api/v3") -> int | None:
        """Count `weight` in this minute; over the limit, return Retry-After seconds instead."""
        with self._lock:
            now = self._clock()
            minute, used = self._weights.get(api, (-1, 0))
            if int(now // 60) != minute:
                minute, used = int(now // 60), 0
            if used + weight > self.weight_limit_per_min:
                self._weights[api] = (minute, used)
                return max(1, math.ceil((minute + 1) * 60 - now))
            self._weights[api] = (minute, used + weight)
            return None

    def _draw_fault(self) -> str | None:
        with self._lock:
            if self.fail_rate and self._rng.random() < self.fail_rate:
                fault = self._rng.choice(_FAULTS)
                self.faults_injected[fault] += 1
                return fault
            return None

    def _count(self, status: int) -> None:
        with self._lock:
            self.responses[status] += 1


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
