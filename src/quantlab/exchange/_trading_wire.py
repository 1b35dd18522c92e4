"""Binance spot order JSON <-> quantlab's execution types, and numbers without exponents.

Kept apart from `trading.py` so the client reads as the sending policy alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import httpx

from quantlab.errors import PermanentExchangeError, SchemaError
from quantlab.exchange._http import BadBody, _error_body, parse_json
from quantlab.portfolio.orders import (
    Ack,
    Balance,
    OrderReport,
    OrderStatus,
    OrderType,
    Rejected,
    SubmitResult,
    Unknown,
    VenueTrade,
)
from quantlab.portfolio.types import Side

# Statuses Binance documents that the ledger has no row state for: both are still open.
_STATUS_ALIASES = {"PENDING_NEW": OrderStatus.NEW, "PENDING_CANCEL": OrderStatus.NEW}
# A LIMIT_MAKER is a post-only limit order: it rests and fills like one.
_TYPE_ALIASES = {"LIMIT_MAKER": OrderType.LIMIT}
AMBIGUOUS_CODES = (-1006, -1007)  # "execution status unknown": query, never resend
HINTS = {
    -1021: "the local clock is off by more than recvWindow; sync it (NTP)",
    -1022: "the signature is wrong: check the API secret and that key_type matches the key",
    -2014: "the API key is malformed: check the credentials secret",
    -2015: "check the API key, its spot-trading permission and IP whitelist, and that "
    "base_url is the network (testnet or demo) the key was made on",
}
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


def submit_result(outcome: httpx.Response | Rejected | Unknown) -> SubmitResult:
    """A sent order's outcome; a 2xx answer becomes an Ack with its FULL fills."""
    if not isinstance(outcome, httpx.Response):
        return outcome
    try:
        raw = parse_json(outcome.content, dict)
        return Ack(order_report(raw, full_fills(raw)))
    except (BadBody, SchemaError) as exc:  # accepted (2xx) but unreadable: it may well exist
        return Unknown(f"HTTP {outcome.status_code} with an unreadable order answer: {exc}")


def read_signed(resp: httpx.Response, path: str, expect: type, missing: tuple[int, ...]) -> Any:
    """A signed read's JSON (an `expect`); None for a `missing` code (-2013); else raises."""
    if resp.status_code < 400:
        return parse_json(resp.content, expect)
    code, msg = _error_body(resp)
    if code is not None and code in missing:
        return None
    hint = HINTS.get(code or 0, "retrying will not help; check the request")
    raise PermanentExchangeError(
        f"Binance refused GET {path} (HTTP {resp.status_code}, code {code}: {msg}); {hint}.",
        status=resp.status_code,
        code=code,
    )
