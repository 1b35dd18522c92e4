"""Binance spot order JSON <-> quantlab's execution types, numbers without exponents, and the
client-side pacing of new orders (exchangeInfo's ORDERS limits).

Kept apart from `trading.py` so the client reads as the sending policy alone.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from quantlab.errors import SchemaError
from quantlab.execution.types import Balance, OrderReport, OrderStatus, OrderType, VenueTrade
from quantlab.portfolio.types import Side

# Statuses Binance documents that the ledger has no row state for: both are still open.
_STATUS_ALIASES = {"PENDING_NEW": OrderStatus.NEW, "PENDING_CANCEL": OrderStatus.NEW}
# A LIMIT_MAKER is a post-only limit order: it rests and fills like one.
_TYPE_ALIASES = {"LIMIT_MAKER": OrderType.LIMIT}
_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


def format_decimal(value: float, increment: str | None = None) -> str:
    """`value` as Binance's `^([0-9]{1,20})(\\.[0-9]{1,20})?$`: no exponent, no sign.

    Float noise (0.30000000000000004) is snapped to the `increment` (stepSize / tickSize)
    when it is within a millionth of an increment of the grid; a value off the grid is sent
    as it is, so Binance refuses it (-1013) rather than this function silently moving it.
    """
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{value!r} is not a positive finite number")
    exact = Decimal(repr(value))
    step = Decimal(increment) if increment else Decimal(0)
    if step > 0:
        snapped = (exact / step).to_integral_value(ROUND_HALF_EVEN) * step
        if snapped > 0 and abs(snapped - exact) <= step * Decimal("1e-6"):
            exact = snapped
    return format(exact.normalize(), "f")


def order_report(raw: Any, trades: tuple[VenueTrade, ...] = ()) -> OrderReport:
    """An order as POST (RESULT/FULL), GET or DELETE /api/v3/order and openOrders send it.

    DELETE's `clientOrderId` is the cancel's own id, so `origClientOrderId` wins when present.
    """
    try:
        kind = str(raw["type"])
        order_type = _TYPE_ALIASES.get(kind) or OrderType(kind)
        status = _STATUS_ALIASES.get(raw["status"]) or OrderStatus(raw["status"])
        time_ms = int(raw.get("time") or raw.get("transactTime") or 0)
        price = float(raw.get("price") or 0.0)
        return OrderReport(
            symbol=str(raw["symbol"]),
            client_id=str(raw.get("origClientOrderId") or raw["clientOrderId"]),
            venue_order_id=str(raw["orderId"]),
            status=status,
            side=Side(raw["side"]),
            type=order_type,
            qty=float(raw["origQty"]),
            executed_qty=float(raw["executedQty"]),
            cum_quote=float(raw["cummulativeQuoteQty"]),
            price=price if order_type is OrderType.LIMIT and price > 0 else None,
            time_ms=time_ms,
            update_ms=int(raw.get("updateTime") or raw.get("transactTime") or time_ms),
            trades=trades,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(
            f"Binance sent an order this client cannot read ({type(exc).__name__}: {exc}): "
            f"{str(raw)[:300]}. Only MARKET and LIMIT spot orders are supported; an order of "
            "another type placed by hand on this account must be closed by hand."
        ) from None


def full_fills(raw: Mapping[str, Any]) -> tuple[VenueTrade, ...]:
    """The `fills` of a FULL POST answer as trades; they fill at placement, so as the taker."""
    try:
        at = int(raw.get("transactTime") or 0)
        side = Side(raw["side"])
        return tuple(
            VenueTrade(
                symbol=str(raw["symbol"]),
                trade_id=str(fill["tradeId"]),
                venue_order_id=str(raw["orderId"]),
                client_id=str(raw["clientOrderId"]),
                side=side,
                qty=float(fill["qty"]),
                price=float(fill["price"]),
                fee=float(fill["commission"]),
                fee_asset=str(fill["commissionAsset"]),
                time_ms=at,
                maker=False,
            )
            for fill in raw.get("fills") or []
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(
            f"unreadable fills in an order answer ({exc}): {str(raw)[:300]}"
        ) from None


def my_trade(raw: Any, client_id: str = "") -> VenueTrade:
    """One row of GET /api/v3/myTrades (which does not carry the client id: pass it)."""
    try:
        return VenueTrade(
            symbol=str(raw["symbol"]),
            trade_id=str(raw["id"]),
            venue_order_id=str(raw["orderId"]),
            client_id=client_id,
            side=Side.BUY if raw["isBuyer"] else Side.SELL,
            qty=float(raw["qty"]),
            price=float(raw["price"]),
            fee=float(raw["commission"]),
            fee_asset=str(raw["commissionAsset"]),
            time_ms=int(raw["time"]),
            maker=bool(raw.get("isMaker", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"unreadable myTrades row ({exc}): {str(raw)[:300]}") from None


def balances(raw: Any) -> dict[str, Balance]:
    """GET /api/v3/account's `balances`, by asset."""
    try:
        rows = raw["balances"]
        return {
            str(b["asset"]): Balance(str(b["asset"]), float(b["free"]), float(b["locked"]))
            for b in rows
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(
            f"GET /api/v3/account answered without readable balances ({exc}); check base_url."
        ) from None


def symbol_increments(info: Mapping[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    """symbol -> (LOT_SIZE stepSize, PRICE_FILTER tickSize) as exchangeInfo writes them."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for entry in info.get("symbols") or []:
        by_type = {f.get("filterType"): f for f in entry.get("filters") or []}
        step = by_type.get("LOT_SIZE", {}).get("stepSize")
        tick = by_type.get("PRICE_FILTER", {}).get("tickSize")
        out[str(entry.get("symbol"))] = (step, tick)
    return out


def order_limits(info: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """exchangeInfo's ORDERS limits: header suffix ("10S", "1D") -> (window seconds, limit)."""
    out: dict[str, tuple[int, int]] = {}
    for rule in info.get("rateLimits") or []:
        try:
            if rule["rateLimitType"] != "ORDERS":
                continue
            num, unit = int(rule.get("intervalNum", 1)), str(rule["interval"])
            out[f"{num}{unit[0]}"] = (num * _INTERVAL_S[unit], int(rule["limit"]))
        except (KeyError, TypeError, ValueError, InvalidOperation):
            continue
    return out


class OrderPacer:
    """Keeps new orders under every ORDERS limit, counted in fixed windows like Binance's.

    A wait up to `max_wait_s` (a 10-second window filling up) is slept out; a longer one
    (the daily count) is refused with a reason, so a run does not hang for hours. The
    server's own `X-MBX-ORDER-COUNT-*` headers raise the local counts when they are higher.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        max_wait_s: float = 60.0,
    ):
        self.limits: dict[str, tuple[int, int]] = {}
        self._clock, self._sleep, self._max_wait_s = clock, sleep, max_wait_s
        self._counts: dict[str, tuple[int, int]] = {}  # suffix -> (window number, count)
        self._held_until = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        """The server said -1015 (too many new orders): send none for `seconds`."""
        with self._lock:
            self._held_until = max(self._held_until, self._clock() + seconds)

    def acquire(self) -> str | None:
        """Count one new order, after waiting for room; a reason instead when it would wait
        longer than `max_wait_s`."""
        with self._lock:
            while True:
                now = self._clock()
                wait = max(self._held_until - now, 0.0)
                for suffix, (window_s, limit) in self.limits.items():
                    window, count = self._count(suffix, window_s, now)
                    if count >= limit:
                        wait = max(wait, (window + 1) * window_s - now)
                if wait <= 0:
                    break
                if wait > self._max_wait_s:
                    return (
                        f"the order rate limit leaves no room for {wait:.0f} s "
                        f"(limits {self._describe()}); run again after that"
                    )
                self._sleep(wait)
            for suffix, (window_s, _) in self.limits.items():
                window, count = self._count(suffix, window_s, now)
                self._counts[suffix] = (window, count + 1)
            return None

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the server's counts (`X-MBX-ORDER-COUNT-10S`) when higher than ours."""
        with self._lock:
            now = self._clock()
            for suffix, (window_s, _) in self.limits.items():
                value = headers.get(f"X-MBX-ORDER-COUNT-{suffix}")
                if value is None or not value.isdigit():
                    continue
                window, count = self._count(suffix, window_s, now)
                self._counts[suffix] = (window, max(count, int(value)))

    def _count(self, suffix: str, window_s: int, now: float) -> tuple[int, int]:
        window = int(now // window_s)
        seen, count = self._counts.get(suffix, (window, 0))
        return window, count if seen == window else 0

    def _describe(self) -> str:
        return ", ".join(f"{limit} per {s} s" for s, limit in self.limits.values())
