"""GETs against Binance under quantlab's retry policy; the only place quantlab retries.

- 418: raise `IPBannedError` at once; a ban lasts minutes to days, never sleep through it.
- 429: sleep `Retry-After`, then retry.
- 5xx, timeouts, dropped connections, truncated or invalid JSON: capped exponential backoff
  with jitter. Every call here is a read, so an unknown 5xx outcome is safe to repeat.
- any other 4xx: raise `PermanentExchangeError` with the exchange's code and message.

`Requester` is safe to share between threads: its state is the (locked) weight tracker.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from quantlab.errors import IPBannedError, PermanentExchangeError, TemporaryExchangeError
from quantlab.exchange._weights import WeightTracker

_RETRYABLE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

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


class Requester:
    """Sends GETs through `http`, charging `tracker`, retrying by `policy`."""

    def __init__(
        self,
        http: httpx.Client,
        policy: RetryPolicy,
        tracker: WeightTracker,
        sleep: Callable[[float], None],
        rng: random.Random | None = None,
    ):
        self._http = http
        self._policy = policy
        self._tracker = tracker
        self._sleep = sleep
        self._rng = rng or random.Random()

    def get_json(
        self,
        path: str,
        params: dict[str, Any],
        weight: int,
        expect: type,
        counter: WeightTracker | None = None,
    ) -> Any:
        """GET `path` and return its JSON body, which must be an instance of `expect`.

        `counter`, if given, is an extra limit that counts each attempt as 1: an endpoint with
        its own request-count limit, like fundingRate's 500 per 5 minutes.
        """
        attempts = self._policy.max_retries + 1
        last, status, code, retry_after = "no attempt made", None, None, None
        for attempt in range(attempts):
            final = attempt == attempts - 1
            if counter is not None:
                counter.reserve(1)
            window = self._tracker.reserve(weight)
            try:
                resp: httpx.Response | None = self._http.get(path, params=params)
            except _RETRYABLE as exc:
                resp, last, status, code = None, f"{type(exc).__name__}: {exc}", None, None
            finally:
                self._tracker.release(weight)
                if counter is not None:
                    counter.release(1)
            if resp is None:
                self._backoff(attempt, final)
                continue
            self._tracker.observe(resp.headers.get("X-MBX-USED-WEIGHT-1M"), window)
            status = resp.status_code
            code, msg = _error_body(resp)
            if status == 418:
                raise _banned(resp, path, code, msg)
            if status == 429:
                retry_after = _retry_after(resp)
                last = f"HTTP 429, code {code}: {msg}"
                if retry_after is None:
                    self._backoff(attempt, final)
                elif not final:
                    self._sleep(retry_after)
                continue
            if status >= 500:
                last = f"HTTP {status}: {resp.text[:200]!r}"
                self._backoff(attempt, final)
                continue
            if status >= 400:
                raise _permanent(resp, path, code, msg)
            try:
                body = resp.json()
            except ValueError as exc:
                last, code = f"invalid JSON body ({exc}): {resp.text[:80]!r}...", None
                self._backoff(attempt, final)
                continue
            if not isinstance(body, expect):
                last = f"expected a JSON {expect.__name__}, got {resp.text[:200]!r}"
                self._backoff(attempt, final)
                continue
            return body
        raise TemporaryExchangeError(
            f"GET {path} failed {attempts} times in a row; last failure: {last}. "
            "The exchange or the network is having trouble: run again later, it is safe "
            "to retry, or raise exchange.max_retries.",
            status=status,
            code=code,
            retry_after=retry_after,
        )

    def _backoff(self, attempt: int, final: bool) -> None:
        if not final:
            self._sleep(self._policy.delay(attempt, self._rng))


def get_file(
    http: httpx.Client,
    url: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    rng: random.Random,
) -> bytes | None:
    """GET a static file (a data.binance.vision zip or checksum): its bytes, or None on 404.

    Retried like the API: timeouts, dropped connections, 5xx and 429 back off and try again;
    any other 4xx is a `PermanentExchangeError`. A body cut short with a matching length
    header is the caller's to catch (the checksum does).
    """
    attempts = policy.max_retries + 1
    last, status = "no attempt made", None
    for attempt in range(attempts):
        try:
            resp = http.get(url)
        except _RETRYABLE as exc:
            last, status = f"{type(exc).__name__}: {exc}", None
        else:
            status = resp.status_code
            if status == 200:
                return resp.content
            if status == 404:
                return None
            if status < 500 and status != 429:
                raise PermanentExchangeError(
                    f"GET {url} answered HTTP {status}: {resp.text[:200]!r}. Retrying will not "
                    "help: check the bulk-data base URL.",
                    status=status,
                )
            last = f"HTTP {status}: {resp.text[:200]!r}"
        if attempt < attempts - 1:
            sleep(policy.delay(attempt, rng))
    raise TemporaryExchangeError(
        f"GET {url} failed {attempts} times in a row; last failure: {last}. The file server "
        "or the network is having trouble: run again later, it is safe to retry.",
        status=status,
    )


def _error_body(resp: httpx.Response) -> tuple[int | None, str]:
    """Binance's `{"code": -1121, "msg": "..."}`, or (None, raw text) for anything else."""
    try:
        body = resp.json()
    except ValueError:
        return None, resp.text[:200]
    if isinstance(body, dict) and "code" in body:
        return body.get("code"), str(body.get("msg", ""))
    return None, resp.text[:200]


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return max(float(resp.headers["Retry-After"]), 0.0)
    except (KeyError, ValueError):
        return None


def _banned(resp: httpx.Response, path: str, code: int | None, msg: str) -> IPBannedError:
    retry_after = _retry_after(resp)
    if retry_after is not None:
        duration = f"for {format_duration(retry_after)}"
    elif until := re.search(r"banned until (\d{12,})", msg):
        stamp = datetime.fromtimestamp(int(until.group(1)) / 1000, UTC)
        duration = f"until {stamp:%Y-%m-%d %H:%M:%S} UTC"
    else:
        duration = "for an unknown time (no Retry-After header)"
    return IPBannedError(
        f"Binance banned this IP {duration} (HTTP 418 on GET {path}, code {code}: {msg}). "
        "Stop every job that calls Binance from this IP until the ban ends, then lower "
        "the request rate: bans follow 429s that were not honoured.",
        status=418,
        code=code,
        retry_after=retry_after,
    )


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
