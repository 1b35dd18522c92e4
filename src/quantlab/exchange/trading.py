"""The signed Binance spot client: orders, their state, trades and balances (testnet or demo).

Two sending policies, never mixed:
- **Reads** (order status, open orders, history, trades, balances) go through `_http.Requester`
  like the market-data client: retried on 5xx, timeouts and 429 (Retry-After), refused during
  a 418 ban, charged to one REQUEST_WEIGHT budget. Each attempt is signed afresh.
- **A new order** is sent ONCE (`new_order`). 2xx -> `Ack`; a Binance error code on a 4xx ->
  `Rejected` (definitive); a 5xx, a timeout or a dropped connection after sending, -1006 or
  -1007 -> `Unknown`: it may exist, so it is looked up by client id, never resent under a new
  one. -1021 (clock outside recvWindow) is a definitive non-placement: the clock is synced
  with GET /api/v3/time and the order sent once more.

Mainnet hosts are refused unless `allow_mainnet`. The API key and secret live only in the
signing hook: never in a log line, a repr, an error or a URL.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from quantlab.config.paper import DEMO_URL, MAINNET_HOSTS, TESTNET_URL
from quantlab.errors import (
    ConfigError,
    ExchangeError,
    PermanentExchangeError,
    SchemaError,
    TemporaryExchangeError,
)
from quantlab.exchange import _trading_wire as wire
from quantlab.exchange._bans import BanBook, format_utc
from quantlab.exchange._http import (
    BadBody,
    Requester,
    RetryPolicy,
    _error_body,
    _retry_after,
    parse_json,
)
from quantlab.exchange._order_pacer import OrderPacer
from quantlab.exchange._weights import REQUEST_WEIGHT_PER_MIN, WeightTracker
from quantlab.exchange.binance import request_weight_limit
from quantlab.exchange.signing import BinanceAuth, encode_query, make_signer
from quantlab.portfolio.orders import (
    Balance,
    OrderIntent,
    OrderReport,
    OrderType,
    Rejected,
    SubmitResult,
    Unknown,
    VenueTrade,
)

log = logging.getLogger(__name__)

ORDER = "/api/v3/order"
DAY_MS = 86_400_000
PAGE = 1000  # allOrders / myTrades page size (their maximum)
# Failures before any byte of the request left: the order cannot exist.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def check_base_url(base_url: str, allow_mainnet: bool) -> str:
    """`base_url` unless it is a mainnet host (real money) and mainnet is not allowed."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base_url {base_url!r} is not an http(s) URL; use e.g. {TESTNET_URL}")
    if parts.hostname.lower() in MAINNET_HOSTS and not allow_mainnet:
        raise ConfigError(
            f"base_url {base_url!r} is Binance mainnet: orders there trade real money. Use the "
            f"spot testnet ({TESTNET_URL}) or demo mode ({DEMO_URL}); to trade on mainnet on "
            "purpose set paper.binance.allow_mainnet: true (SpotTradingClient(allow_mainnet=True))."
        )
    return base_url.rstrip("/")


class SpotTradingClient:
    """Signed Binance spot REST client (HMAC or Ed25519 keys); transport injectable for tests."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        secret: str,
        key_type: str = "hmac",
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        allow_mainnet: bool = False,
        *,
        max_retries: int = 5,
        ban_file: Path | None = None,
    ):
        self.base_url = check_base_url(base_url, allow_mainnet)
        if not api_key or not secret:
            raise ConfigError("the API key and secret must both be set (non-empty)")
        if not 0 < recv_window_ms <= 60_000:
            raise ConfigError(f"recv_window_ms {recv_window_ms} must be in (0, 60000]")
        try:
            sign = make_signer(key_type, secret)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.key_type, self.recv_window_ms = key_type, recv_window_ms
        self._clock = clock
        self._offset_ms: float | None = None  # server clock - local clock
        self.weights = WeightTracker(REQUEST_WEIGHT_PER_MIN["spot"], sleep, clock)
        self.pacer = OrderPacer(clock, sleep)
        self._bans = BanBook(ban_file, clock)
        self._host = f"{urlsplit(self.base_url).scheme}://{urlsplit(self.base_url).netloc}"
        opts = {"base_url": self.base_url, "timeout": timeout_s, "transport": transport}
        auth = BinanceAuth(api_key, sign, self._stamp)
        self._http = httpx.Client(**opts)
        self._signed_http = httpx.Client(**opts, auth=auth)
        policy = RetryPolicy(max_retries=max_retries)
        common = {"bans": self._bans, "clock": clock}
        self._public = Requester(self._http, policy, self.weights, sleep, **common)
        self._signed = Requester(self._signed_http, policy, self.weights, sleep, **common)
        self._increments: dict[str, tuple[str | None, str | None]] = {}

    def __repr__(self) -> str:
        return f"SpotTradingClient(base_url={self.base_url!r}, key_type={self.key_type!r})"

    def close(self) -> None:
        self._http.close()
        self._signed_http.close()

    def __enter__(self) -> SpotTradingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- clock and exchange rules ------------------------------------------------------------

    def server_time(self) -> int:
        body = self._public.get_json("/api/v3/time", {}, 1, dict)
        try:
            return int(body["serverTime"])
        except (KeyError, TypeError, ValueError):
            raise SchemaError(f"GET /api/v3/time answered {body!r}; check base_url") from None

    def sync_clock(self) -> float:
        """Measure server minus local clock (ms) around one GET /api/v3/time; return it."""
        before = self._clock()
        server = self.server_time()
        self._offset_ms = server - (before + self._clock()) / 2 * 1000
        log.info("clock offset to %s: %.0f ms", self.base_url, self._offset_ms)
        return self._offset_ms

    def now_ms(self) -> int:
        """The exchange's time as this client estimates it."""
        if self._offset_ms is None:
            self.sync_clock()
        return int(self._clock() * 1000 + (self._offset_ms or 0.0))

    def _stamp(self) -> str:
        return encode_query({"recvWindow": self.recv_window_ms, "timestamp": self.now_ms()})

    def exchange_info(self, symbols: list[str] | None = None) -> dict:
        """Public exchangeInfo; its REQUEST_WEIGHT and ORDERS limits and step/tick sizes are kept."""
        params = {"symbols": json.dumps(symbols, separators=(",", ":"))} if symbols else {}
        body = self._public.get_json("/api/v3/exchangeInfo", params, 20, dict)
        if not isinstance(body.get("symbols"), list):
            raise SchemaError("GET /api/v3/exchangeInfo has no 'symbols' list; check base_url")
        if (limit := request_weight_limit(body)) is not None:
            self.weights.set_limit(limit)
        if limits := wire.order_limits(body):
            self.pacer.limits = limits
        self._increments.update(wire.symbol_increments(body))
        return body

    # -- orders ------------------------------------------------------------------------------

    def new_order(self, intent: OrderIntent) -> SubmitResult:
        """POST /api/v3/order once under `intent.client_id` (FULL answer); see the module doc."""
        try:
            if self._offset_ms is None:
                self.sync_clock()
            if intent.symbol not in self._increments:
                self.exchange_info([intent.symbol])
            params = self._order_params(intent)
        except (ExchangeError, SchemaError, ValueError) as exc:
            return Rejected(None, f"not sent: {exc}")
        for attempt in range(2):
            if why := self.pacer.acquire():
                return Rejected(None, f"not sent: {why}")
            try:
                outcome = self._send_once("POST", ORDER, params)
            except ExchangeError as exc:
                return Rejected(None, f"not sent: {exc}")
            if isinstance(outcome, Rejected) and outcome.code == -1021 and attempt == 0:
                log.warning("order %s: -1021 (%s); syncing the clock", intent.client_id, outcome)
                try:
                    self.sync_clock()
                except ExchangeError as exc:
                    return Rejected(-1021, f"{outcome.message}; the clock sync failed: {exc}")
                continue
            break
        result = wire.submit_result(outcome)
        log.info("order %s %s %s %s: %s", intent.client_id, intent.symbol, intent.side,
                 params["quantity"], type(result).__name__)  # fmt: skip
        return result

    def _order_params(self, intent: OrderIntent) -> dict[str, str]:
        step, tick = self._increments.get(intent.symbol, (None, None))
        params = {
            "symbol": intent.symbol,
            "side": str(intent.side),
            "type": str(intent.type),
            "quantity": wire.format_decimal(intent.qty, step),
        }
        if intent.type is OrderType.LIMIT:
            if intent.price is None:
                raise ValueError(f"LIMIT order {intent.client_id} has no price")
            params["timeInForce"] = str(intent.tif or "GTC")
            params["price"] = wire.format_decimal(intent.price, tick)
        params["newClientOrderId"] = intent.client_id
        params["newOrderRespType"] = "FULL"
        return params

    def get_order(
        self, symbol: str, client_id: str | None = None, *, order_id: str | None = None
    ) -> OrderReport | None:
        """GET /api/v3/order by client id (or venue id); None on -2013 "Order does not exist."."""
        if client_id is None and order_id is None:
            raise ValueError("get_order needs client_id or order_id")
        params = {"symbol": symbol}
        params.update({"orderId": order_id} if order_id else {"origClientOrderId": client_id})
        raw = self._signed_get(ORDER, params, 4, dict, missing=(-2013,))
        return None if raw is None else wire.order_report(raw)

    def cancel_order(self, symbol: str, client_id: str) -> OrderReport | None:
        """DELETE /api/v3/order; on -2011 ("Unknown order sent.": no longer open) or an unknown
        outcome, the order is queried so the answer is its final state (None: never existed)."""
        if self._offset_ms is None:
            self.sync_clock()
        params = {"symbol": symbol, "origClientOrderId": client_id}
        for attempt in range(2):
            outcome = self._send_once("DELETE", ORDER, params)
            if isinstance(outcome, Rejected) and outcome.code == -1021 and attempt == 0:
                self.sync_clock()
                continue
            break
        if isinstance(outcome, httpx.Response):
            try:
                return wire.order_report(parse_json(outcome.content, dict))
            except (BadBody, SchemaError) as exc:  # the cancel went through; ask for the state
                log.warning("cancel %s: unreadable answer (%s); querying", client_id, exc)
        elif isinstance(outcome, Rejected) and outcome.code != -2011:
            kind = TemporaryExchangeError if outcome.code in (-1003, -1008, -1015) else None
            raise (kind or PermanentExchangeError)(
                f"Binance refused to cancel {client_id} on {symbol} (code {outcome.code}: "
                f"{outcome.message}); {wire.HINTS.get(outcome.code or 0, 'check the order')}.",
                code=outcome.code,
            )
        else:
            log.info("cancel %s on %s: %s; querying its final state", client_id, symbol, outcome)
        return self.get_order(symbol, client_id)

    # -- signed reads ------------------------------------------------------------------------

    def open_orders(self, symbol: str) -> list[OrderReport]:
        raw = self._signed_get("/api/v3/openOrders", {"symbol": symbol}, 6, list)
        return [wire.order_report(r) for r in raw]

    def all_orders(
        self, symbol: str, start_ms: int, end_ms: int | None = None
    ) -> list[OrderReport]:
        """Orders created from `start_ms`, read in 24-hour windows (the API's widest)."""
        rows = self._windowed("/api/v3/allOrders", symbol, start_ms, end_ms, 20, "orderId")
        return [wire.order_report(r) for r in rows]

    def my_trades(
        self, symbol: str, start_ms: int | None = None, *, order_id: str | None = None
    ) -> list[VenueTrade]:
        """Trades of one order (weight 5), or every trade since `start_ms` in 24-hour windows.
        myTrades does not carry client ids: the trades' `client_id` is ""."""
        if order_id is not None:
            params = {"symbol": symbol, "orderId": order_id, "limit": PAGE}
            rows = self._signed_get("/api/v3/myTrades", params, 5, list)
        elif start_ms is not None:
            rows = self._windowed("/api/v3/myTrades", symbol, start_ms, None, 20, "id")
        else:
            raise ValueError("my_trades needs start_ms or order_id")
        return [wire.my_trade(r) for r in rows]

    def account(self) -> dict[str, Balance]:
        return wire.balances(self._signed_get("/api/v3/account", {}, 20, dict))

    def _windowed(
        self, path: str, symbol: str, start_ms: int, end_ms: int | None, weight: int, key: str
    ) -> list[dict]:
        """Every row of `path` with time in [start_ms, end_ms], window by window, page by page."""
        end = self.now_ms() if end_ms is None else end_ms
        seen: dict[Any, dict] = {}
        for lo in range(start_ms, end + 1, DAY_MS):
            hi, start = min(lo + DAY_MS - 1, end), lo
            while True:
                params = {"symbol": symbol, "startTime": start, "endTime": hi, "limit": PAGE}
                page = self._signed_get(path, params, weight, list)
                seen.update((row.get(key), row) for row in page)
                last = max((int(row.get("time", start)) for row in page), default=start)
                if len(page) < PAGE:
                    break
                start = last if last > start else start + 1  # rows of one ms may span pages
        return sorted(seen.values(), key=lambda r: (int(r.get("time", 0)), str(r.get(key))))

    def _signed_get(
        self, path: str, params: dict, weight: int, expect: type, missing: tuple[int, ...] = ()
    ) -> Any:
        """A signed read under the retry policy; None when Binance answers a `missing` code."""
        if self._offset_ms is None:
            self.sync_clock()
        url = f"{path}?{encode_query(params)}" if params else path
        read = partial(wire.read_signed, path=path, expect=expect, missing=missing)
        try:
            return self._signed.get(url, read, weight=weight)
        except PermanentExchangeError as exc:
            if exc.code != -1021:
                raise
        self.sync_clock()  # -1021: nothing was read; once more with the clock in step
        return self._signed.get(url, read, weight=weight)

    # -- the one send without retries --------------------------------------------------------

    def _send_once(
        self, method: str, path: str, params: dict
    ) -> httpx.Response | Rejected | Unknown:
        """One signed request, never repeated: its 2xx answer, or what a failure means.

        Raises (`ExchangeBanned`, `TemporaryExchangeError`) only when nothing was sent.
        """
        self._bans.check(self._host, f"{method} {path}")
        pauses, window = self.weights.pauses, self.weights.reserve(1)
        try:
            resp = self._signed_http.request(method, f"{path}?{encode_query(params)}")
        except _NOT_SENT as exc:
            raise TemporaryExchangeError(
                f"{method} {path} could not connect to {self._host} ({type(exc).__name__}); "
                "nothing was sent. Check the network and base_url, then run again."
            ) from None
        except httpx.TransportError as exc:
            return Unknown(f"{type(exc).__name__} after sending {method} {path}: {exc}")
        finally:
            self.weights.release(1)
        self.weights.observe(resp.headers.get("X-MBX-USED-WEIGHT-1M"), window)
        self.pacer.observe(resp.headers)
        status = resp.status_code
        if 200 <= status < 300:
            return resp
        code, msg = _error_body(resp)
        if status >= 500 or code in wire.AMBIGUOUS_CODES:
            return Unknown(f"HTTP {status}, code {code}: {msg}")
        if status == 418:
            until = self._clock() + (_retry_after(resp) or 120.0)
            self._bans.record(self._host, until, f"HTTP 418 on {method} {path}, code {code}")
            return Rejected(code, f"{msg} (HTTP 418: IP banned until {format_utc(until)})")
        if status == 429:
            wait = _retry_after(resp)
            if code == -1015:
                self.pacer.hold(wait if wait is not None else 10.0)
            else:
                self.weights.pause(wait if wait is not None else 1.0, pauses)
        return Rejected(code, msg if code is not None else f"HTTP {status}: {msg}")
