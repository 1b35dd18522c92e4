"""A local stand-in for Binance: its market-data REST API over a data.binance.vision folder.

`root` holds `data/{spot|futures/um}/{monthly|daily}/klines/{SYMBOL}/{interval}/*.zip`, exactly
as data.binance.vision lays it out, and optionally recorded responses under `api/` (funding
rates, exchangeInfo; see `_vision_store`). The server answers `/api/v3/{klines,time,ping,
exchangeInfo}` (spot) and `/fapi/v1/{klines,time,ping,exchangeInfo,fundingRate}` (USD-M
futures) with Binance's semantics (`_replay_routes`; exchangeInfo without a recording is built
from the tree, `_replay_info`), serves the bulk files under `/data/...` and nothing outside
that folder, counts request weight per minute and can inject faults. Whatever a request holds,
it gets an answer (in Binance's JSON error shape), never a dropped connection. Stdlib and
polars only, so it runs anywhere quantlab does: in tests, in offline DAG runs, or as
`quantlab replay-server`.

With `accounts`, it also trades: Binance's SIGNED spot endpoints (/api/v3/order, order/test,
openOrders, allOrders, myTrades, account) over per-key balances, filled against the recorded
klines at the replay clock (`_replay_trading`, `_replay_orders`, `_replay_auth`). Request
timestamps are judged against the wall clock (`clock`), prices against the replay clock
(`now_ms`; move it with `set_now`). `server.order_faults` scripts order faults (`_replay_faults`).
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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from quantlab.errors import SchemaError
from quantlab.exchange import _replay_routes as routes
from quantlab.exchange import _replay_trading as trading
from quantlab.exchange._replay_accounts import Account, load_accounts, parse_account
from quantlab.exchange._replay_faults import OrderFault, OrderFaults, parse_fault
from quantlab.exchange._replay_info import build_exchange_info, weight_limit
from quantlab.exchange._vision_layout import MARKET_DIRS
from quantlab.exchange._vision_store import KlineStore, RecordStore, _Lazy

__all__ = [
    "Account",
    "OrderFaults",
    "ReplayServer",
    "load_accounts",
    "main",
    "parse_account",
    "parse_fault",
    "run_replay_server",
    "served_file",
]

# Wording of a real captured -1003 body (api/errors/error_responses_REAL_REPORTS.json).
_TOO_MUCH_WEIGHT = (
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use the websocket for live updates to avoid polling the API."
)
_FAULTS = ("503", "reset", "truncated")
_JSON = "application/json;charset=UTF-8"
_SERVES = (
    "it serves /api/v3/{klines,time,ping,exchangeInfo}, "
    "/fapi/v1/{klines,time,ping,exchangeInfo,fundingRate} and the bulk files under /data/"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    replay: ReplayServer


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: dict[str, Any] = field(default_factory=dict)
    whole: bool = False  # never cut short by the "truncated" fault
    fault: OrderFault | None = None  # an order fault to act out around sending it


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive requests stall 40 ms.
    disable_nagle_algorithm = True
    server: _Server
    _api: str | None = None  # the API prefix of this request, whose weight the headers report

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send a TCP RST, like a dropped connection.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _serve(self, method: str) -> None:
        replay = self.server.replay
        length = self.headers.get("Content-Length") or "0"
        body = self.rfile.read(int(length)) if length.isdigit() else b""
        if replay.latency_s:
            time.sleep(replay.latency_s)
        fault = replay._draw_fault()
        if fault == "reset":
            self._reset()
            return
        self._api = None
        try:
            reply = self._reply(fault, method, body.decode("utf-8", "replace"))
        except Exception as exc:  # a bug or a broken file: answered, never a dropped connection
            msg = f"An unknown error occurred while processing the request. (replay: {exc!r})"
            reply = _Reply(500, routes.error(-1000, msg))
        if reply.fault is not None and reply.fault.kind == "reset":
            self._reset()
            return
        if reply.fault is not None and reply.fault.kind == "accept_then_timeout":
            replay._stopping.wait(reply.fault.seconds)
            if reply.fault.drop:
                self._reset()
                return
        try:
            self._send(reply, fault == "truncated" and not reply.whole)
        except ConnectionError:  # the client left mid-answer: nobody to tell
            self.close_connection = True

    def _reply(self, fault: str | None, method: str = "GET", body: str = "") -> _Reply:
        replay = self.server.replay
        if fault == "503":
            msg = "Server is currently overloaded with other requests. Please try again in a few minutes."
            return _Reply(503, routes.error(-1008, msg), whole=True)
        url = urlsplit(self.path)
        try:
            path = unquote(url.path, errors="strict")
        except UnicodeDecodeError:
            return _Reply(400, routes.replay_error("Malformed path: not UTF-8 once decoded."))
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
            return _Reply(400, routes.replay_error("Malformed path: it holds a control character."))
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        prefix, _, endpoint = path.rpartition("/")
        self._api = prefix if prefix in routes.MARKETS else None
        if (name := trading.endpoint(path)) is not None:
            return self._trade(name, method, url.query, body)
        if method != "GET":
            return _Reply(
                404, routes.replay_error(f"Not Found: {method} {path} (replay: {_SERVES})")
            )
        if path.startswith("/data/"):
            return self._file(path)
        if not routes.exists(prefix, endpoint):
            return _Reply(404, routes.replay_error(f"Not Found: {path} (replay: {_SERVES})"))
        retry_after = replay._charge(routes.weight(prefix, endpoint, query), prefix)
        if retry_after is not None:
            limit = replay.weight_limit(prefix)
            body = routes.error(-1003, _TOO_MUCH_WEIGHT.format(limit=limit))
            return _Reply(429, body, headers={"Retry-After": retry_after})
        try:
            status, body = routes.answer(replay, prefix, endpoint, query)
        except (SchemaError, ValueError, OSError, zipfile.BadZipFile) as exc:
            # A broken file under root: say so, the way Binance reports its own failures.
            msg = f"An unknown error occurred while processing the request. (replay: {exc})"
            status, body = 500, routes.error(-1000, msg)
        return _Reply(status, body, _JSON if body[:1] in (b"{", b"[") else "text/plain")

    def _trade(self, name: str, method: str, query: str, body: str) -> _Reply:
        replay = self.server.replay
        self._api = "/api/v3"
        if not trading.allows(name, method):
            return _Reply(404, routes.replay_error(f"Not Found: {method} /api/v3/{name}"))
        retry_after = replay._charge(trading.weight(name, method, query, body))
        if retry_after is not None:
            body_ = routes.error(-1003, _TOO_MUCH_WEIGHT.format(limit=replay.weight_limit()))
            return _Reply(429, body_, headers={"Retry-After": retry_after})
        got = replay.trading.answer(name, method, query, body, self.headers)
        return _Reply(got.status, got.body, headers=got.headers, fault=got.fault)

    def _file(self, path: str) -> _Reply:
        target = served_file(self.server.replay.root / "data", path)
        if target is None:
            msg = f"Not Found: {path} (replay: no such bulk file under its data/ folder)"
            return _Reply(404, routes.replay_error(msg))
        kind = "application/zip" if target.suffix == ".zip" else "text/plain"
        return _Reply(200, target.read_bytes(), kind)

    def _send(self, reply: _Reply, truncate: bool) -> None:
        body = reply.body
        if truncate:  # a body cut short, with a length header that agrees with the cut
            body = body[: len(body) // 2]
        self.server.replay._count(reply.status)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        if self._api is not None:  # the API's weight; data.binance.vision files carry none
            self.send_header("X-MBX-USED-WEIGHT-1M", str(self.server.replay.used_weight(self._api)))
        for name, value in reply.headers.items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, an unknown method) as JSON
        in Binance's error shape, rather than its HTML page."""
        self.server.replay._count(code)
        text = message or self.responses.get(code, ("Error",))[0]
        body = routes.replay_error(f"{text} (HTTP {code})")
        self.send_response(code, message)
        self.send_header("Connection", "close")
        self.close_connection = True
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def served_file(data_root: Path, path: str) -> Path | None:
    """The bulk file under `data_root` that the decoded URL `path` (`/data/...`) names, or None.

    Only plain names are followed: no empty, `.` or `..` segment and no backslash. The file,
    with every symlink resolved, must lie under `data_root` (itself resolved: a data/ that is
    a link to the real tree is fine) and be a `.zip` or `.CHECKSUM`.
    """
    parts = path.split("/")[2:]  # "", "data", then the file's segments
    if not parts or any(p in ("", ".", "..") or "\\" in p for p in parts):
        return None
    if not parts[-1].endswith((".zip", ".CHECKSUM")):
        return None
    try:
        root = data_root.resolve(strict=True)
        target = root.joinpath(*parts).resolve(strict=True)
        inside = target.is_relative_to(root) and target.is_file()
    except (OSError, RuntimeError, ValueError):  # missing, name too long, a symlink loop
        return None
    return target if inside else None


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
        accounts: Sequence[Account] = (),
        order_faults: OrderFaults | None = None,
    ):
        self.root = Path(root)
        self.host, self.port = host, port
        self.fail_rate, self.latency_s = fail_rate, latency_s
        self.weight_limit_per_min = weight_limit_per_min
        self.store = KlineStore(self.root)
        self.records = RecordStore(self.root)
        self._built_info = _Lazy()
        self._clock = clock
        self._now_ms = self.store.last_period_end_ms() if now_ms is None else now_ms
        self._rng = random.Random(seed)
        self.faults_injected: Counter[str] = Counter()
        self.responses: Counter[int] = Counter()  # HTTP status -> how many were sent
        self._lock = threading.Lock()
        self._weights: dict[str, tuple[int, int]] = {}  # API prefix -> (minute, weight used)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # wakes replies held by an accept_then_timeout fault
        self.order_faults = order_faults or OrderFaults()
        self.trading = trading.Trading(self, list(accounts), seed)  # no accounts: -2015 to all

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ReplayServer is not running; call start() or use it in a with")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ReplayServer:
        self._stopping.clear()
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.replay = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
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

    def set_now(self, now_ms: int) -> None:
        """Move the replay clock; resting orders fill over the candles that closed by then."""
        self._now_ms = now_ms
        with self.trading.book.lock:
            self.trading.book.advance(now_ms)

    def exchange_info(self, market: str) -> dict[str, Any]:
        """`market`'s exchangeInfo: the recorded one under `api/` where there is one, else one
        built from the symbols in the tree (TRADING, Binance's rate limits and filters)."""
        recorded = self.records.exchange_info(market)
        if recorded is not None:
            return recorded
        built = self._built_info.get(
            market,
            lambda: build_exchange_info(
                market,
                self.store.symbols(MARKET_DIRS[market]),
                now_ms=None,
                weight_limit_per_min=self.weight_limit_per_min,
            ),
        )
        return {**built, "serverTime": self.now_ms()}

    def used_weight(self, api: str = "/api/v3") -> int:
        """Weight used this minute on `api` (spot and futures count apart, as on Binance)."""
        with self._lock:
            minute, used = self._weights.get(api, (-1, 0))
            return used if minute == int(self._clock() // 60) else 0

    def weight_limit(self, api: str = "/api/v3") -> int:
        """The weight per minute `api` allows: Binance's for its market (spot 6000, USD-M
        2400), or `weight_limit_per_min` where that is lower."""
        return weight_limit(routes.MARKETS[api][0], self.weight_limit_per_min)

    def _charge(self, weight: int, api: str = "/api/v3") -> int | None:
        """Count `weight` in this minute; over the limit, return Retry-After seconds instead."""
        with self._lock:
            now = self._clock()
            minute, used = self._weights.get(api, (-1, 0))
            if int(now // 60) != minute:
                minute, used = int(now // 60), 0
            if used + weight > self.weight_limit(api):
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
    **options: Any,
) -> None:
    """Serve `root` in the foreground until Ctrl-C (`options`: ReplayServer's keywords)."""
    server = ReplayServer(root, host, port, fail_rate=fail_rate, latency_s=latency_s, **options)
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
