"""GETs under quantlab's retry policy: the one place quantlab retries an HTTP request, for
API calls (`binance.py`) and bulk downloads (`vision.py`) alike.

- 418: record the ban (`BanBook`) and raise `ExchangeBanned` at once; a ban lasts minutes to
  days, never sleep through it. Until it ends, every request to that host is refused unsent.
- 429: pause every thread of the client for `Retry-After` (or a backoff without one), then
  retry: the pause lives in the shared `WeightTracker`, not in the thread that got the 429.
- 5xx, timeouts, dropped connections, and a body its reader rejects (`BadBody`: cut short,
  not JSON, a zip whose SHA-256 is wrong): capped exponential backoff with jitter. Every
  call here is a read, so an unknown 5xx outcome is safe to repeat.
- any other status goes to the caller's reader: `get_json` makes a 4xx a
  `PermanentExchangeError` with the exchange's code and message; `read_file` makes a 404
  "no such file".

`Requester` is safe to share between threads: its shared state is the (locked) weight
tracker and ban book.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

from quantlab.errors import ExchangeBanned, PermanentExchangeError, TemporaryExchangeError
from quantlab.exchange._bans import BanBook, format_utc, utc
from quantlab.exchange._weights import WeightTracker

T = TypeVar("T")

_RETRYABLE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# A 418 without Retry-After or an end in its message: assume Binance's shortest ban.
_UNKNOWN_BAN_S = 120.0

_HINTS = {
    -1121: "check the symbol is spelled like BTCUSDT and is listed on this market",
    -1120: "use a Binance interval such as 1m, 5m, 15m, 1h, 4h or 1d",
    -1100: "send parameters in the format Binance documents",
    -1102: "send every mandatory parameter",
}


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed `attempt` (0-based): in [d/2, d], d doubling to the cap."""
        d = min(self.backoff_cap_s, self.backoff_base_s * 2**attempt)
        return d / 2 + rng.uniform(0, d / 2)


class BadBody(Exception):
    """Raised by a reader: the body is not what was asked for, so the GET is tried again.

    `final` is raised in place of the usual `TemporaryExchangeError` when this was the last
    attempt: a zip that never matches its checksum is a `ChecksumMismatch`.
    """

    def __init__(self, reason: str, final: Exception | None = None):
        super().__init__(reason)
        self.reason = reason
        self.final = final


class Requester:
    """Sends GETs through `http`, charging `tracker`, retrying by `policy`, refusing bans.

    Without a `tracker` requests cost no weight (bulk files), but a 429 still pauses every
    thread through an unlimited one. `bans` defaults to one kept in memory only.
    """

    def __init__(
        self,
        http: httpx.Client,
        policy: RetryPolicy,
        tracker: WeightTracker | None,
        sleep: Callable[[float], None],
        rng: random.Random | None = None,
        *,
        bans: BanBook | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._http = http
        self._policy = policy
        self._tracker = tracker or WeightTracker(sys.maxsize, sleep, clock)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self.bans = bans or BanBook(None, clock)

    @classmethod
    def open(
        cls,
        base_url: str,
        *,
        timeout_s: float,
        max_retries: int,
        transport: httpx.BaseTransport | None,
        tracker: WeightTracker | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        ban_file: Path | None,
    ) -> Requester:
        """The one transport of API calls and bulk downloads: an HTTP client (redirects
        followed, as data.binance.vision's CDN needs) under this retry policy; `close()` it."""
        http = httpx.Client(
            base_url=base_url, timeout=timeout_s, transport=transport, follow_redirects=True
        )
        policy = RetryPolicy(max_retries=max_retries)
        return cls(http, policy, tracker, sleep, bans=BanBook(ban_file, clock), clock=clock)

    def close(self) -> None:
        self._http.close()

    def get(
        self,
        url: str,
        read: Callable[[httpx.Response], T],
        *,
        params: dict[str, Any] | None = None,
        weight: int = 0,
        counter: WeightTracker | None = None,
    ) -> T:
        """GET `url`, retrying by the policy, and return what `read` makes of the first
        answer that is not a 418, 429 or 5xx.

        `read` raises `BadBody` to have the answer fetched again, or any other error to stop.
        `counter`, if given, is an extra limit that counts each attempt as 1: an endpoint
        with its own request-count limit, like fundingRate's 500 per 5 minutes.
        """
        host = _host(self._http.build_request("GET", url).url)
        attempts = self._policy.max_retries + 1
        last, status, code, retry_after = "no attempt made", None, None, None
        final: Exception | None = None
        for attempt in range(attempts):
            self.bans.check(host, f"GET {url}")
            final, pauses = None, self._tracker.pauses
            resp = self._send(url, params, weight, counter)
            if isinstance(resp, str):
                last, status, code = resp, None, None
            elif (status := resp.status_code) in (418, 429) or status >= 500:
                code, msg = _error_body(resp)
                if status == 418:
                    raise self._banned(resp, host, url, code, msg)
                if status == 429:
                    retry_after = _retry_after(resp)
                    last = f"HTTP 429, code {code}: {msg}"
                    if attempt < attempts - 1:  # every thread waits, not only this one
                        wait = retry_after
                        if wait is None:
                            wait = self._policy.delay(attempt, self._rng)
                        self._tracker.pause(wait, pauses)
                    continue
                last = f"HTTP {status}: {resp.text[:200]!r}"
            else:
                try:
                    return read(resp)
                except BadBody as bad:
                    last, code, final = bad.reason, None, bad.final
            if attempt < attempts - 1:
                self._sleep(self._policy.delay(attempt, self._rng))
        if final is not None:
            raise final
        raise TemporaryExchangeError(
            f"GET {url} failed {attempts} times in a row; last failure: {last}. "
            "The server or the network is having trouble: run again later, it is safe "
            "to retry, or raise max_retries.",
            status=status,
            code=code,
            retry_after=retry_after,
        )

    def get_json(
        self,
        path: str,
        params: dict[str, Any],
        weight: int,
        expect: type,
        counter: WeightTracker | None = None,
    ) -> Any:
        """GET `path` from Binance and return its JSON body, which must be an `expect`."""
        return self.get_parsed(path, params, weight, partial(parse_json, expect=expect), counter)

    def get_parsed(
        self,
        path: str,
        params: dict[str, Any],
        weight: int,
        parse: Callable[[bytes], T],
        counter: WeightTracker | None = None,
    ) -> T:
        """GET `path` from Binance and return `parse(body)`. `parse` raises `BadBody` to have
        a body it cannot read fetched again; a 4xx is a `PermanentExchangeError`."""

        def read(resp: httpx.Response) -> T:
            if resp.status_code >= 400:
                raise _permanent(resp, path, *_error_body(resp))
            return parse(resp.content)

        return self.get(path, read, params=params, weight=weight, counter=counter)

    def _send(
        self,
        url: str,
        params: dict[str, Any] | None,
        weight: int,
        counter: WeightTracker | None,
    ) -> httpx.Response | str:
        """One GET under the weight budget: the response, or why none came."""
        if counter is not None:
            counter.reserve(1)
        window = self._tracker.reserve(weight)
        try:
            resp = self._http.get(url, params=params)
        except _RETRYABLE as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            self._tracker.release(weight)
            if counter is not None:
                counter.release(1)
        self._tracker.observe(resp.headers.get("X-MBX-USED-WEIGHT-1M"), window)
        return resp

    def _banned(
        self, resp: httpx.Response, host: str, path: str, code: int | None, msg: str
    ) -> ExchangeBanned:
        """Record the ban a 418 announces, and the error that names its end."""
        now = self._clock()
        retry_after = _retry_after(resp)
        if retry_after is not None:
            until, duration = now + retry_after, f"for {format_duration(retry_after)}"
        elif stamp := re.search(r"banned until (\d{12,})", msg):
            until = int(stamp.group(1)) / 1000
            duration = f"for {format_duration(max(until - now, 0))}"
        else:
            until = now + _UNKNOWN_BAN_S
            duration = f"for at least {format_duration(_UNKNOWN_BAN_S)} (no Retry-After header)"
        self.bans.record(host, until, f"HTTP 418 on GET {path}, code {code}: {msg}")
        shared = (
            f" or any process recording bans in {self.bans.path}"
            if self.bans.path is not None
            else ""
        )
        return ExchangeBanned(
            f"Binance banned this IP {duration}, until {format_utc(until)} (HTTP 418 on GET "
            f"{path}, code {code}: {msg}). No request goes to {host} before then from this "
            f"process{shared}. Run again after the ban ends, then lower the request rate: "
            "bans follow 429s that were not honoured.",
            until=utc(until),
            host=host,
            status=418,
            code=code,
        )


def parse_json(body: bytes, expect: type) -> Any:
    """`body` as JSON, which must be an `expect`; `BadBody` (fetch again) otherwise: a body
    cut short is not valid JSON."""
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise BadBody(f"invalid JSON body ({exc}): {body[:80]!r}...") from None
    if not isinstance(value, expect):
        raise BadBody(f"expected a JSON {expect.__name__}, got {body[:200]!r}")
    return value


def read_file(resp: httpx.Response) -> bytes | None:
    """A static file's bytes (a data.binance.vision zip or checksum), or None on 404."""
    if resp.status_code == 404:
        return None
    if resp.status_code >= 400:
        raise PermanentExchangeError(
            f"GET {resp.request.url} answered HTTP {resp.status_code}: {resp.text[:200]!r}. "
            "Retrying will not help: check the bulk-data base URL.",
            status=resp.status_code,
        )
    return resp.content


def _error_body(resp: httpx.Response) -> tuple[int | None, str]:
    """Binance's `{"code": -1121, "msg": "..."}`, or (None, raw text) for anything else."""
    try:
        body = resp.json()
    except ValueError:
        return None, resp.text[:200]
    if isinstance(body, dict) and "code" in body:
        return body.get("code"), str(body.get("msg", ""))
    return None, resp.text[:200]


def _host(url: httpx.URL) -> str:
    """`https://api.binance.com`: what a ban applies to."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return max(float(resp.headers["Retry-After"]), 0.0)
    except (KeyError, ValueError):
        return None


def _permanent(
    resp: httpx.Response, path: str, code: int | None, msg: str
) -> PermanentExchangeError:
    if code is None:
        what = f"HTTP {resp.status_code} without a Binance error body: {msg!r}"
        hint = "check base_url and the endpoint path"
    else:
        what = f"HTTP {resp.status_code}, code {code}: {msg}"
        hint = _HINTS.get(code, "fix the request parameters")
    return PermanentExchangeError(
        f"Binance rejected GET {path} ({what}) with params {dict(resp.request.url.params)}. "
        f"Retrying will not help: {hint}.",
        status=resp.status_code,
        code=code,
    )


def format_duration(seconds: float) -> str:
    """`125` -> `2 min 5 s`, `259200` -> `3 d`: a ban length a person can read."""
    s = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if s >= size:
            parts.append(f"{s // size} {unit}")
            s %= size
    return " ".join(parts) or "0 s"
