"""Where klines come from: the REST API, or data.binance.vision bulk files with REST for the rest.

A source answers one question, `fetch(market, symbol, interval, first, last)`: the closed
candles opening in `[first, last]`, and up to where it vouches for them (`covered_until`).
A candle missing before `covered_until` is missing on the exchange; one after it may simply
not be published yet, so it is never recorded as a known gap. A hole is asked about once
more with `recheck`: bulk files send that second ask to REST when a REST source is
configured, since a file that lacks a candle says nothing about the exchange.

Every REST call of one source goes through one `BinanceClient` per market, shared by every
thread, so concurrent symbols draw on one weight budget.
"""

from __future__ import annotations

import calendar
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import polars as pl

from quantlab.exchange.binance import BinanceClient
from quantlab.ingest._calendar import Range
from quantlab.vocab import INTERVAL_MS


@dataclass(frozen=True)
class Fetched:
    """Candles of one request window, the open time before which the source vouches for
    them, and which source answered ("rest", "vision", or "vision+rest" for both)."""

    klines: pl.DataFrame
    covered_until: int
    source: str


class KlineSource(Protocol):
    name: str

    def now_ms(self, market: str) -> int | None:
        """The exchange's clock, or None for a source without one (bulk files only)."""
        ...

    def fetch(self, market: str, symbol: str, interval: str, first: int, last: int) -> Fetched:
        """Closed candles with `first <= open_time <= last`."""
        ...

    def recheck(self, market: str, symbol: str, interval: str, first: int, last: int) -> Fetched:
        """`fetch` once more, for candles the first answer lacked, from the most direct source."""
        ...

    def usage(self) -> tuple[int, int]:
        """(requests sent, request weight the exchange counted) so far."""
        ...

    def close(self) -> None: ...


class Meter(httpx.BaseTransport):
    """Counts every HTTP request (retries included) and the weight the exchange reports.

    The weight is read from `X-MBX-USED-WEIGHT-1M`, the exchange's own count for this IP:
    the highest value seen in each minute of its clock (the `Date` header), summed.
    """

    def __init__(self, inner: httpx.BaseTransport | None = None):
        self._inner = inner or httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.requests = 0
        self._weight: dict[int, int] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests += 1
        response = self._inner.handle_request(request)
        used = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if used is not None and used.isdigit():
            minute = _minute(response.headers.get("Date"))
            with self._lock:
                self._weight[minute] = max(self._weight.get(minute, 0), int(used))
        return response

    @property
    def weight(self) -> int:
        with self._lock:
            return sum(self._weight.values())

    def close(self) -> None:
        self._inner.close()


def _minute(date_header: str | None) -> int:
    try:
        return int(parsedate_to_datetime(date_header).timestamp() // 60)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return int(time.time() // 60)


@dataclass
class RestSource:
    """Klines from the REST API at `base_url`; one client per market, shared by all threads.

    `client_options` go to every `BinanceClient` (timeout_s, max_retries, sleep,
    weight_limit_per_min); `transport` is the HTTP transport under the request meter. With
    `exchange_limits`, each client first reads the weight limit from the market's
    exchangeInfo `rateLimits` (one request, weight 20 on spot): worth it for long backfills.
    """

    base_url: str
    client_options: dict[str, Any] = field(default_factory=dict)
    transport: httpx.BaseTransport | None = None
    exchange_limits: bool = False
    name: str = "rest"

    def __post_init__(self) -> None:
        self.meter = Meter(self.transport)
        self._clients: dict[str, BinanceClient] = {}
        self._now: dict[str, int] = {}
        self._lock = threading.Lock()

    def client(self, market: str) -> BinanceClient:
        with self._lock:
            if market not in self._clients:
                client = BinanceClient(
                    self.base_url, market=market, transport=self.meter, **self.client_options
                )
                if self.exchange_limits:
                    client.apply_rate_limits(client.exchange_info())
                self._clients[market] = client
            return self._clients[market]

    def now_ms(self, market: str) -> int:
        """The exchange's clock, read once per market and source: every decision uses one "now"."""
        client = self.client(market)
        with self._lock:
            if market not in self._now:
                self._now[market] = client.server_time()
            return self._now[market]

    def fetch(self, market: str, symbol: str, interval: str, first: int, last: int) -> Fetched:
        step = INTERVAL_MS[interval]
        now = self.now_ms(market)
        klines = self.client(market).fetch_klines(symbol, interval, first, last)
        # Every candle that closed before `now` was served, or does not exist.
        closed_until = (now // step) * step
        return Fetched(klines, min(last + step, max(closed_until, first)), self.name)

    def recheck(self, market: str, symbol: str, interval: str, first: int, last: int) -> Fetched:
        return self.fetch(market, symbol, interval, first, last)

    def usage(self) -> tuple[int, int]:
        return self.meter.requests, self.meter.weight

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self.meter.close()


@dataclass
class BulkSource:
    """data.binance.vision files (monthly, then daily) at `location`, then `rest` for newer bars.

    `location` is a local folder in that layout or an HTTP base URL serving it. Checksums
    are verified by the reader: a mismatch raises `ChecksumMismatch`, nothing is ingested.
    Without `rest`, candles after the newest bulk file are left for a later run. A window
    is fetched a calendar month at a time, so each monthly file is read once. Candles a
    file lacks are asked of `rest` (`recheck`); without it, the file's word is final.
    """

    location: str | Path
    rest: RestSource | None = None
    transport: httpx.BaseTransport | None = None
    vision_options: dict[str, Any] = field(default_factory=dict)
    name: str = "vision"

    def __post_init__(self) -> None:
        from quantlab.exchange.vision import VisionSource

        self.meter = Meter(self.transport)
        remote = str(self.location).startswith(("http://", "https://"))
        self._vision = VisionSource(
            self.location, transport=self.meter if remote else None, **self.vision_options
        )

    def now_ms(self, market: str) -> int | None:
        return self.rest.now_ms(market) if self.rest is not None else None

    def split(self, rng: Range, step: int) -> list[Range]:
        """One piece per calendar month (UTC): the unit data.binance.vision files come in."""
        lo, hi = rng
        out = []
        while lo <= hi:
            t = time.gmtime(lo // 1000)
            y, m = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
            next_month = calendar.timegm((y, m, 1, 0, 0, 0)) * 1000
            end = min(hi, next_month - step)
            out.append((lo, end))
            lo = end + step
        return out

    def fetch(self, market: str, symbol: str, interval: str, first: int, last: int) -> Fetched:
        step = INTERVAL_MS[interval]
        bulk, covered = self._vision.fetch_klines(market, symbol, interval, first, last)
        covered_until = first if covered is None else min(max(covered + step, first), last + step)
        if self.rest is None or covered_until > last:
            return Fetched(bulk, covered_until, self.name)
        tail = self.rest.fetch(market, symbol, interval, covered_until, last)
        frames = [f for f in (bulk, tail.klines) if f.height]
        klines = pl.concat(frames) if len(frames) > 1 else (frames[0] if frames else bulk)
        return Fetched(klines, tail.covered_until, f"{self.name}+{self.rest.name}")

    def recheck(self, market: str, symbol: str, interval: str, first: int, last: int) -> Fetched:
        """Holes are asked of REST when there is one: the exchange, not the file, has the word."""
        if self.rest is not None:
            return self.rest.fetch(market, symbol, interval, first, last)
        return self.fetch(market, symbol, interval, first, last)

    def usage(self) -> tuple[int, int]:
        """Bulk files cost no request weight; only the REST part does."""
        requests, weight = self.rest.usage() if self.rest is not None else (0, 0)
        return requests + self.meter.requests, weight

    def close(self) -> None:
        if self.rest is not None:
            self.rest.close()
        self._vision.close()
        self.meter.close()
