"""The one Binance client: klines, funding rates, exchangeInfo and server time over REST.

Retries and rate limiting happen here (in `_http` and `_weights`) and nowhere else. The HTTP
transport is injectable so tests point the client at `ReplayServer` or an `httpx.MockTransport`.
One client is safe to share between threads: they fetch concurrently within one weight budget
(the market's: spot 6000, USD-M 2400 per minute, or exchangeInfo's once read), and a 429 or a
ban stops them all. With `ban_file`, a ban stops every process that shares the file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import polars as pl

from quantlab.config import check_symbol
from quantlab.errors import ConfigError, PermanentExchangeError, SchemaError
from quantlab.exchange._http import Requester
from quantlab.exchange._klines_json import closed_klines, page_frame
from quantlab.exchange._weights import (
    EXCHANGE_INFO_WEIGHT,
    FUNDING_RATE_MAX_LIMIT,
    FUNDING_RATE_REQUESTS,
    FUNDING_RATE_WEIGHT,
    REQUEST_WEIGHT_PER_MIN,
    TIME_WEIGHT,
    WeightTracker,
    choose_klines_limit,
    klines_weight,
)
from quantlab.exchange.funding import parse_funding_rates
from quantlab.vocab import INTERVAL_MS, Market

_PREFIX = {"spot": "/api/v3", "futures_um": "/fapi/v1"}
_PATHS: dict[str, tuple[str, str]] = {  # market -> (klines path, time path)
    market: (f"{prefix}/klines", f"{prefix}/time") for market, prefix in _PREFIX.items()
}


class BinanceClient:
    """Reads market data from Binance (or anything that speaks its REST API).

    `weight_limit_per_min` defaults to the market's documented budget; `exchange_info()`
    replaces it with the exchange's own. `ban_file` (see `_bans.ban_file`) shares 418 bans
    with other processes; without it they are remembered by this client only.
    """

    def __init__(
        self,
        base_url: str,
        *,
        market: Market = "spot",
        timeout_s: float = 10.0,
        max_retries: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        weight_limit_per_min: int | None = None,
        clock: Callable[[], float] = time.time,
        ban_file: Path | None = None,
    ):
        if market not in _PATHS:
            raise ConfigError(f"unknown market {market!r}; use one of {sorted(_PATHS)}")
        self.market: Market = market
        self._klines_path, self._time_path = _PATHS[market]
        limit = weight_limit_per_min or REQUEST_WEIGHT_PER_MIN[market]
        self.weights = WeightTracker(limit, sleep, clock)
        count, per_s = FUNDING_RATE_REQUESTS
        self._funding_requests = WeightTracker(count, sleep, clock, window_s=per_s)
        self._requester = Requester.open(
            base_url,
            timeout_s=timeout_s,
            max_retries=max_retries,
            transport=transport,
            tracker=self.weights,
            sleep=sleep,
            clock=clock,
            ban_file=ban_file,
        )

    def close(self) -> None:
        self._requester.close()

    def __enter__(self) -> BinanceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def server_time(self) -> int:
        """The exchange's clock, in ms since the epoch."""
        body = self._requester.get_json(self._time_path, {}, TIME_WEIGHT, dict)
        try:
            return int(body["serverTime"])
        except (KeyError, TypeError, ValueError):
            raise PermanentExchangeError(
                f"GET {self._time_path} answered {body!r} without an integer serverTime; "
                "check that base_url points at a Binance API."
            ) from None

    def fetch_klines(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> pl.DataFrame:
        """Closed candles with `start_ms <= open_time <= end_ms`, sorted, one row per open_time.

        Candles missing on the exchange (halts) stay missing: nothing is filled in.
        """
        step = INTERVAL_MS.get(interval)
        if step is None:
            raise ConfigError(
                f"interval {interval!r} is not supported; use one of {', '.join(INTERVAL_MS)}"
            )
        check_symbol(symbol)
        if end_ms < start_ms:
            raise ConfigError(f"end_ms {end_ms} is before start_ms {start_ms}; swap them")
        # Read the clock before the pages: a candle closed by then is final in every page.
        now_ms = self.server_time()
        pages: list[pl.DataFrame] = []
        start = start_ms
        while start <= end_ms:
            limit = choose_klines_limit(self.market, (end_ms - start) // step + 1)
            params = {
                "symbol": symbol,
                "interval": interval,
                "startTime": start,
                "endTime": end_ms,
                "limit": limit,
            }
            weight = klines_weight(self.market, limit)
            # Parsed as it arrives, so a body cut short is fetched again.
            parse = partial(page_frame, path=self._klines_path, params=params)
            page = self._requester.get_parsed(self._klines_path, params, weight, parse)
            pages.append(page)
            if page.height < limit:
                break
            last_open = page["open_time"].max()
            if last_open < start:  # a server that ignores startTime must not loop us forever
                break
            start = last_open + step
        return closed_klines(pages, self.market, symbol, interval, (start_ms, end_ms), now_ms)

    def fetch_funding_rates(self, symbol: str, start_ms: int, end_ms: int) -> pl.DataFrame:
        """Funding records with `start_ms <= funding_time <= end_ms`, sorted (USD-M only).

        Columns: market, symbol, funding_time, funding_rate, mark_price (null when absent).
        Pages of 1000 by startTime; fundingTime carries ms jitter, so the next page starts
        1 ms after the last record rather than 8 h later.
        """
        if self.market != "futures_um":
            raise ConfigError(
                "funding rates exist only on USD-M futures; create the client with "
                "market='futures_um' (it uses /fapi/v1/fundingRate)"
            )
        check_symbol(symbol)
        if end_ms < start_ms:
            raise ConfigError(f"end_ms {end_ms} is before start_ms {start_ms}; swap them")
        path = f"{_PREFIX[self.market]}/fundingRate"
        by_time: dict[int, dict[str, Any]] = {}
        start = start_ms
        while start <= end_ms:
            params = {
                "symbol": symbol,
                "startTime": start,
                "endTime": end_ms,
                "limit": FUNDING_RATE_MAX_LIMIT,
            }
            page = self._requester.get_json(
                path, params, FUNDING_RATE_WEIGHT, list, counter=self._funding_requests
            )
            times = []
            for record in page:
                try:
                    times.append(int(record["fundingTime"]))
                except (KeyError, TypeError, ValueError):
                    raise SchemaError(
                        f"GET {path} {params} returned {record!r}, not a funding record with "
                        "an integer fundingTime; check base_url."
                    ) from None
                by_time[times[-1]] = record
            if len(page) < FUNDING_RATE_MAX_LIMIT or max(times) < start:
                break
            start = max(times) + 1
        records = [r for t, r in sorted(by_time.items()) if start_ms <= t <= end_ms]
        return parse_funding_rates(records, symbol)

    def exchange_info(self, symbols: list[str] | None = None) -> dict:
        """The raw exchangeInfo JSON: rate limits and every symbol with its filters.

        `symbols` narrows the answer; spot filters on the server, futures (whose endpoint
        takes no parameters) here. A symbol the exchange does not list is a
        `PermanentExchangeError` with code -1121 either way. The answer's REQUEST_WEIGHT
        limit becomes this client's budget.
        """
        for symbol in symbols or []:
            check_symbol(symbol)
        path = f"{_PREFIX[self.market]}/exchangeInfo"
        params = {}
        if symbols and self.market == "spot":
            params["symbols"] = json.dumps(list(symbols), separators=(",", ":"))
        weight = EXCHANGE_INFO_WEIGHT[self.market]
        body = self._requester.get_json(path, params, weight, dict)
        listed = body.get("symbols")
        if not isinstance(listed, list) or not all(isinstance(s, dict) for s in listed):
            raise SchemaError(
                f"GET {path} answered without a 'symbols' list of objects; check base_url."
            )
        if (limit := request_weight_limit(body)) is not None:
            self.weights.set_limit(limit)
        if symbols:
            wanted = set(symbols)
            body = {**body, "symbols": [s for s in listed if s.get("symbol") in wanted]}
            missing = sorted(wanted - {s.get("symbol") for s in body["symbols"]})
            if missing:
                raise PermanentExchangeError(
                    f"{self.market} exchangeInfo does not list {missing}: check the symbols are "
                    "spelled like BTCUSDT and are listed on this market.",
                    code=-1121,
                )
        return body

    def apply_rate_limits(self, info: dict) -> int:
        """Set the weight budget from exchangeInfo's REQUEST_WEIGHT per 1 MINUTE; return it."""
        limit = request_weight_limit(info)
        if limit is None:
            raise SchemaError(
                f"exchangeInfo has no REQUEST_WEIGHT limit per 1 MINUTE in rateLimits "
                f"({info.get('rateLimits')!r}); pass the body of "
                f"{_PREFIX[self.market]}/exchangeInfo."
            )
        self.weights.set_limit(limit)
        return limit


def request_weight_limit(info: dict) -> int | None:
    """exchangeInfo's REQUEST_WEIGHT per 1 MINUTE, or None when its rateLimits have none."""
    for rule in info.get("rateLimits") or []:
        try:
            kind = (rule["rateLimitType"], rule["interval"], int(rule.get("intervalNum", 1)))
            limit = int(rule["limit"])
        except (KeyError, TypeError, ValueError):
            continue
        if kind == ("REQUEST_WEIGHT", "MINUTE", 1) and limit > 0:
            return limit
    return None
