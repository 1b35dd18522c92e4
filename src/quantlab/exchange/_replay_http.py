"""The replay exchange's HTTP side: one handler for every request (market data, bulk files,
signed trading), Binance's error shapes, and the faults it injects into answers. The state it
answers from is the `ReplayServer` (`replay.py`)."""

from __future__ import annotations

import socket
import struct
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from quantlab.errors import SchemaError
from quantlab.exchange import _replay_routes as routes
from quantlab.exchange import _replay_trading as trading
from quantlab.exchange._replay_faults import OrderFault

if TYPE_CHECKING:
    from quantlab.exchange.replay import ReplayServer

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
