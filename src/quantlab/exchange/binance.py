"""The one Binance client: closed klines and server time over REST, spot or USD-M futures.

Retries and rate limiting happen here (in `_http` and `_weights`) and nowhere else. The HTTP
transport is injectable so tests point the client at `ReplayServer` or an `httpx.MockTransport`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

import httpx
import polars as pl

from quantlab.errors import ConfigError, PermanentExchangeError, SchemaError
from quantlab.exchange._http import Requester, RetryPolicy
from quantlab.exchange._weights import (
    TIME_WEIGHT,
    WeightTracker,
    choose_klines_limit,
    klines_weight,
)
from quantlab.schema import INTERVAL_MS, klines_from_rows

Market = Literal["spot", "futures_um"]

# market -> (klines path, time path)
_PATHS: dict[str, tuple[str, str]] = {
    "spot": ("/api/v3/klines", "/api/v3/time"),
    "futures_um": ("/fapi/v1/klines", "/fapi/v1/time"),
}


class BinanceClient:
    """Reads market data from Binance (or anything that speaks its REST API)."""

    def __init__(
        self,
        base_url: str,
        *,
        market: Market = "spot",
        timeout_s: float = 10.0,
        max_retries: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        weight_limit_per_min: int = 6000,
        clock: Callable[[], float] = time.time,
    ):
        if market not in _PATHS:
            raise ConfigError(f"unknown market {market!r}; use one of {sorted(_PATHS)}")
        self.market: Market = market
        self._klines_path, self._time_path = _PATHS[market]
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)
        self.weights = WeightTracker(weight_limit_per_min, sleep, clock)
        self._requester = Requester(
            self._http, RetryPolicy(max_retries=max_retries), self.weights, sleep
        )

    def close(self) -> None:
        self._http.close()

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
        if end_ms < start_ms:
            raise ConfigError(f"end_ms {end_ms} is before start_ms {start_ms}; swap them")
        # Read the clock before the pages: a candle closed by then is final in every page.
        now_ms = self.server_time()
        by_open: dict[int, list[Any]] = {}
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
            page = self._requester.get_json(self._klines_path, params, weight, list)
            for row in page:
                if not (isinstance(row, list) and len(row) == 12):
                    raise SchemaError(
                        f"GET {self._klines_path} {params} returned a kline that is not "
                        f"Binance's 12-field array: {row!r}; check base_url."
                    )
                by_open[int(row[0])] = row
            if len(page) < limit:
                break
            last_open = max(int(row[0]) for row in page)
            if last_open < start:  # a server that ignores startTime must not loop us forever
                break
            start = last_open + step
        rows = [
            row
            for open_ms, row in sorted(by_open.items())
            if start_ms <= open_ms <= end_ms and int(row[6]) < now_ms
        ]
        return klines_from_rows(rows, self.market, symbol, interval)
