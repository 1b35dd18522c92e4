"""The replay exchange's SIGNED spot endpoints: Binance's parameters, checks, bodies and weights.

POST/GET/DELETE /api/v3/order, POST /api/v3/order/test, GET /api/v3/openOrders (weight 6 with a
symbol, 80 without), DELETE /api/v3/openOrders, GET /api/v3/allOrders, GET /api/v3/myTrades
and GET /api/v3/account. Authentication is `_replay_auth`'s; the book, matching and balances
`_replay_orders`'; the ORDERS rate limits of the spot exchangeInfo are counted per account on the
server's wall clock (-1015, HTTP 429; an order's first fill gives its count back, as on Binance),
and each placed order's reply carries X-MBX-ORDER-COUNT-<interval> headers. Order and trade
times are the replay clock (market time), not the wall clock.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from quantlab.exchange._replay_accounts import Account
from quantlab.exchange._replay_auth import AuthError, authenticate, mandatory, merge_params
from quantlab.exchange._replay_bodies import (
    _f,
    _illegal,
    _page,
    cancel_body,
    new_order_body,
    parse_new_order,
    query_body,
    trade_body,
)
from quantlab.exchange._replay_faults import OrderFault
from quantlab.exchange._replay_orders import Book, BookError, Candles

if TYPE_CHECKING:
    from quantlab.exchange.replay import ReplayServer

_V3 = "/api/v3/"
_ENDPOINTS = ("order", "order/test", "openOrders", "allOrders", "myTrades", "account")
_METHODS = {
    "order": ("POST", "GET", "DELETE"),
    "order/test": ("POST",),
    "openOrders": ("GET", "DELETE"),
    "allOrders": ("GET",),
    "myTrades": ("GET",),
    "account": ("GET",),
}
_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_RATE = "0.00100000"


@dataclass(frozen=True)
class TradeReply:
    status: int
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    fault: OrderFault | None = None


def endpoint(path: str) -> str | None:
    """The signed endpoint `path` names, or None."""
    name = path[len(_V3) :] if path.startswith(_V3) else ""
    return name if name in _ENDPOINTS else None


def allows(name: str, method: str) -> bool:
    return method in _METHODS[name]


def weight(name: str, method: str, query: str, body: str) -> int:
    params = merge_params(query, body)
    if name == "openOrders" and method == "GET":
        return 6 if params.get("symbol") else 80
    if name == "order":
        return 4 if method == "GET" else 1
    if name == "order/test":
        return 20 if params.get("computeCommissionRates") == "true" else 1
    if name == "myTrades":
        return 5 if params.get("orderId") else 20
    return {"allOrders": 20, "account": 20}.get(name, 1)


def _err(status: int, code: int, msg: str, headers: dict | None = None) -> TradeReply:
    body = json.dumps({"code": code, "msg": msg}, separators=(",", ":")).encode()
    return TradeReply(status, body, headers or {})


def _ok(body: Any, headers: dict | None = None) -> TradeReply:
    return TradeReply(200, json.dumps(body, separators=(",", ":")).encode(), headers or {})


class Trading:
    """The signed endpoints of one ReplayServer: its accounts' book and order counts."""

    def __init__(self, server: ReplayServer, accounts: list[Account], seed: int = 0):
        self.server = server
        self.accounts = {a.api_key: a for a in accounts}
        self.book = Book(
            accounts,
            Candles(server.store),
            self._symbol_info,
            seed=seed,
            on_first_fill=self._uncount,
        )
        self._counts: dict[tuple[str, str, int], tuple[int, int]] = {}

    def _symbol_info(self, symbol: str) -> dict[str, Any] | None:
        symbols = self.server.exchange_info("spot").get("symbols", [])
        return next((s for s in symbols if s.get("symbol") == symbol), None)

    # -- the ORDERS rate limits (the unfilled order count) -------------------------------
    def _order_limits(self) -> list[tuple[str, int, int]]:
        limits = self.server.exchange_info("spot").get("rateLimits", [])
        return [
            (r["interval"], int(r["intervalNum"]), int(r["limit"]))
            for r in limits
            if r.get("rateLimitType") == "ORDERS"
        ]

    def _bucket(self, interval: str, num: int) -> int:
        return int(self.server._clock() // (_SECONDS[interval] * num))

    def _count(self, account: str, interval: str, num: int) -> int:
        bucket, used = self._counts.get((account, interval, num), (-1, 0))
        return used if bucket == self._bucket(interval, num) else 0

    def _count_order(self, account: str, delta: int) -> None:
        for interval, num, _ in self._order_limits():
            used = max(0, self._count(account, interval, num) + delta)
            self._counts[(account, interval, num)] = (self._bucket(interval, num), used)

    def _uncount(self, account: str) -> None:
        self._count_order(account, -1)

    def _order_headers(self, account: str) -> dict[str, Any]:
        return {
            f"X-MBX-ORDER-COUNT-{num}{interval[0]}": self._count(account, interval, num)
            for interval, num, _ in self._order_limits()
        }

    def _over_limit(self, account: str) -> TradeReply | None:
        for interval, num, limit in self._order_limits():
            if self._count(account, interval, num) >= limit:
                msg = f"Too many new orders; current limit is {limit} orders per {num} {interval}."
                return _err(429, -1015, msg, self._order_headers(account))
        return None

    # -- dispatch ------------------------------------------------------------------------
    def answer(self, name: str, method: str, query: str, body: str, headers: Any) -> TradeReply:
        replay_ms = self.server.now_ms()
        try:
            account, params = authenticate(
                headers, query, body, self.accounts, int(self.server._clock() * 1000), replay_ms
            )
            with self.book.lock:
                self.book.advance(replay_ms)
                return self._route(name, method, account, params, replay_ms)
        except AuthError as exc:
            return _err(exc.status, exc.code, exc.msg)
        except BookError as exc:
            return _err(exc.status, exc.code, exc.msg)

    def _route(
        self, name: str, method: str, account: Account, p: dict[str, str], now: int
    ) -> TradeReply:
        key = account.api_key
        if name == "account":
            return _ok(self._account(account, p.get("omitZeroBalances") == "true", now))
        symbol = p.get("symbol")
        if symbol is not None and not re.fullmatch(r"^[A-Z0-9-_.]{1,20}$", symbol):
            raise _illegal("symbol", "^[A-Z0-9-_.]{1,20}$")
        if name in ("order", "order/test") and method == "POST":
            return self._new_order(account, p, now, test=name == "order/test")
        if name == "openOrders" and method == "GET":
            return _ok([query_body(o) for o in self.book.open_orders(key, symbol)])
        if not symbol:
            raise mandatory("symbol")
        if name == "openOrders":  # DELETE: cancel every open order on the symbol
            orders = self.book.open_orders(key, symbol)
            if not orders:
                raise BookError(-2011, "Unknown order sent.")
            for o in orders:
                self.book.cancel(o, now)
            return _ok([cancel_body(o, self.book._client_id(), now) for o in orders])
        if name == "allOrders":
            rows = [o for o in self.book.orders if o.account == key and o.symbol == symbol]
            return _ok(
                [
                    query_body(o)
                    for o in _page(rows, p, "orderId", lambda o: o.order_id, lambda o: o.time)
                ]
            )
        if name == "myTrades":
            rows = [t for t in self.book.trades if t.account == key and t.symbol == symbol]
            if p.get("orderId"):
                rows = [t for t in rows if str(t.order_id) == p["orderId"]]
            return _ok(
                [trade_body(t) for t in _page(rows, p, "fromId", lambda t: t.id, lambda t: t.time)]
            )
        order_id = p.get("orderId")
        client_id = p.get("origClientOrderId")
        if not order_id and not client_id:
            raise AuthError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order_id and not re.fullmatch(r"[0-9]{1,20}", order_id):
            raise _illegal("orderId", "^[0-9]{1,20}$")
        order = self.book.find(key, symbol, int(order_id) if order_id else None, client_id)
        if method == "GET":
            if order is None or order.hidden_queries > 0:
                if order is not None:
                    order.hidden_queries -= 1
                raise BookError(-2013, "Order does not exist.")
            return _ok(query_body(order))
        if order is None:
            raise BookError(-2011, "Unknown order sent.")
        self.book.cancel(order, now)
        return _ok(cancel_body(order, p.get("newClientOrderId") or self.book._client_id(), now))

    def _new_order(
        self, account: Account, p: dict[str, str], now: int, *, test: bool
    ) -> TradeReply:
        req, resp_type = parse_new_order(p)
        key = account.api_key
        if not account.can_trade:
            raise AuthError(400, -2010, "This action is disabled on this account.")
        if test:
            self.book.place(key, req, now, test=True)
            if p.get("computeCommissionRates") == "true":
                rates = {"maker": _RATE, "taker": _RATE}
                zero = {"maker": "0.00000000", "taker": "0.00000000"}
                return _ok(
                    {
                        "standardCommissionForOrder": rates,
                        "specialCommissionForOrder": zero,
                        "taxCommissionForOrder": zero,
                        "discount": {
                            "enabledForAccount": False,
                            "enabledForSymbol": False,
                            "discountAsset": "BNB",
                            "discount": "0.00000000",
                        },
                    }
                )
            return _ok({})
        if over := self._over_limit(key):
            return over
        fault = self.server.order_faults.next()
        if fault is not None and fault.kind == "reset" and not fault.placed:
            return TradeReply(0, b"", fault=fault)  # the order never reaches the book
        try:
            self._count_order(key, +1)  # before placing, so that an instant fill gives it back
            order = self.book.place(key, req, now)
        except BookError as exc:
            self._count_order(key, -1)
            return TradeReply(exc.status, _err(exc.status, exc.code, exc.msg).body, fault=fault)
        headers = self._order_headers(key)
        if fault is not None and fault.kind == "missing_for":
            order.hidden_queries = fault.n
        if fault is not None and fault.kind == "accept_then_503":
            msg = "An unexpected response was received from the message bus. Execution status unknown."
            return TradeReply(503, _err(503, -1006, msg).body, headers)
        trades = [t for t in self.book.trades if t.order_id == order.order_id]
        return TradeReply(200, _ok(new_order_body(order, trades, resp_type)).body, headers, fault)

    def _account(self, account: Account, omit_zero: bool, now: int) -> dict[str, Any]:
        wallet = self.book.wallets[account.api_key]
        balances = [
            {"asset": a, "free": _f(wallet.free(a)), "locked": _f(wallet.locked(a))}
            for a in wallet.assets()
        ]
        if omit_zero:
            balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
        rates = {"maker": _RATE, "taker": _RATE, "buyer": "0.00000000", "seller": "0.00000000"}
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": rates,
            "canTrade": account.can_trade,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": now,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 0,
        }
