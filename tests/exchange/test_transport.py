"""One transport: the same faults, met by an API call and by a bulk download, are handled alike."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from helpers import SAMPLE
from quantlab.errors import ExchangeBanned
from quantlab.exchange import BinanceClient, VisionSource
from quantlab.exchange._bans import ban_file

ZIP = "data/spot/monthly/klines/ETHUSDT/1h/ETHUSDT-1h-2023-03.zip"
MAR_2023, APR_2023 = 1677628800000, 1680307200000
NOW = 1_700_000_000.0

FAULTS: dict[str, Callable[[bytes], httpx.Response]] = {
    "503": lambda good: httpx.Response(503, text="Service Unavailable"),
    "429": lambda good: httpx.Response(429, headers={"Retry-After": "7"}),
    "timeout": lambda good: _raise(httpx.ReadTimeout("slow")),
    "reset": lambda good: _raise(httpx.RemoteProtocolError("peer closed connection")),
    "truncated": lambda good: httpx.Response(200, content=good[: len(good) // 2]),
    "418": lambda good: httpx.Response(418, json={"code": -1003, "msg": "IP banned."}),
}


def _raise(exc: Exception) -> httpx.Response:
    raise exc


class Faulty:
    """One of the two ways quantlab reads Binance, with a fault injected into its payload."""

    def __init__(self, kind: str, root: Path, fault: str):
        self.kind, self.root, self.fault = kind, root, fault
        self.payload_requests = 0
        self.sleeps: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self.kind == "api":
            payload, good = path == "/api/v3/time", b'{"serverTime": 123}'
        else:
            payload = path.endswith(".zip")
            file = self.root / path.lstrip("/")
            if not file.is_file():
                return httpx.Response(404)
            good = file.read_bytes()
        if payload:
            self.payload_requests += 1
            if self.payload_requests == 1:
                return FAULTS[self.fault](good)
        return httpx.Response(200, content=good)

    def call(self) -> object:
        opts = {
            "transport": httpx.MockTransport(self.handler),
            "sleep": self.sleeps.append,
            "clock": lambda: NOW,
            "ban_file": ban_file(self.root / "state"),
        }
        if self.kind == "api":
            with BinanceClient("https://api.binance.test", **opts) as client:
                return client.server_time()
        with VisionSource("https://vision.binance.test", **opts) as source:
            (file,) = source.plan("spot", "ETHUSDT", "1h", MAR_2023, APR_2023 - 1)
            return source.read(file).height


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for suffix in ("", ".CHECKSUM"):
        (tmp_path / ZIP).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE / (ZIP + suffix), tmp_path / (ZIP + suffix))
    return tmp_path


@pytest.mark.parametrize("kind", ["api", "vision"])
@pytest.mark.parametrize("fault", ["503", "timeout", "reset", "truncated"])
def test_a_passing_fault_is_retried_after_one_backoff(kind, fault, root):
    path = Faulty(kind, root, fault)
    assert path.call() == (123 if kind == "api" else 743)  # March 2023 less the halted hour
    assert path.payload_requests == 2
    assert len(path.sleeps) == 1 and 0.25 <= path.sleeps[0] <= 0.5


@pytest.mark.parametrize("kind", ["api", "vision"])
def test_a_429_waits_retry_after_then_succeeds(kind, root):
    path = Faulty(kind, root, "429")
    assert path.call() == (123 if kind == "api" else 743)
    assert (path.payload_requests, path.sleeps) == (2, [7.0])


@pytest.mark.parametrize("kind", ["api", "vision"])
def test_a_418_is_not_retried_and_later_calls_are_refused_unsent(kind, root):
    path = Faulty(kind, root, "418")
    with pytest.raises(ExchangeBanned, match="until 2023-11-14 22:15:20 UTC"):
        path.call()
    assert (path.payload_requests, path.sleeps) == (1, [])
    with pytest.raises(ExchangeBanned, match="was not sent"):
        path.call()
    assert path.payload_requests == 1
