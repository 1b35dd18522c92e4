"""Request parsing and response bodies of the replay exchange's signed endpoints, as Binance
spells them (rest-api.md): a new order's parameters and checks (-1102, -1100, -1106, -1115 to
-1117), paging of allOrders/myTrades, and the ACK/RESULT/FULL, query, cancel and trade bodies.
Decimals go out as Binance sends them: strings with 8 decimals.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from quantlab.exchange._replay_auth import AuthError, mandatory
from quantlab.exchange._replay_orders import NewOrder, Order, Trade

_NUMBER = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_CLIENT_ID = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"


def _f(x: Decimal) -> str:
    return f"{x:.8f}"


def _illegal(name: str, legal: str) -> AuthError:
    return AuthError(
        400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def parse_new_order(p: dict[str, str]) -> tuple[NewOrder, str]:
    """The order a POST /api/v3/order asks for, and its response type; AuthError as Binance refuses."""
    for name in ("symbol", "side", "type"):
        if not p.get(name):
            raise mandatory(name)
    if p["side"] not in ("BUY", "SELL"):
        raise AuthError(400, -1117, "Invalid side.")
    kind = p["type"]
    if kind not in ("MARKET", "LIMIT", "LIMIT_MAKER"):
        if kind in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
            raise AuthError(
                400,
                -1000,
                f"replay: {kind} orders are not simulated; it places MARKET, LIMIT and LIMIT_MAKER",
            )
        raise AuthError(400, -1116, "Invalid orderType.")
    for name in ("quantity", "price", "quoteOrderQty"):
        if name in p and not re.fullmatch(_NUMBER, p[name]):
            raise _illegal(name, _NUMBER)
    if kind == "MARKET":
        for name in ("price", "timeInForce"):
            if name in p:
                raise AuthError(400, -1106, f"Parameter '{name}' sent when not required.")
        if not p.get("quantity") and not p.get("quoteOrderQty"):
            raise AuthError(
                400,
                -1102,
                "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
            )
    else:
        for name in (
            ("timeInForce", "quantity", "price") if kind == "LIMIT" else ("quantity", "price")
        ):
            if not p.get(name):
                raise mandatory(name)
    tif = p.get("timeInForce", "GTC")
    if tif not in ("GTC", "IOC", "FOK"):
        raise AuthError(400, -1115, "Invalid timeInForce.")
    client_id = p.get("newClientOrderId") or None
    if client_id is not None and not re.fullmatch(_CLIENT_ID, client_id):
        raise _illegal("newClientOrderId", _CLIENT_ID)
    resp_type = p.get("newOrderRespType", "FULL")
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise AuthError(
            400,
            -1100,
            "Illegal characters found in parameter 'newOrderRespType'; legal range is 'ACK, RESULT, FULL'.",
        )
    num = {n: Decimal(p[n]) if p.get(n) else None for n in ("quantity", "price", "quoteOrderQty")}
    for n, v in num.items():
        if v is not None and v <= 0:
            raise AuthError(400, -1013, f"Invalid {'quantity' if n != 'price' else 'price'}.")
    qty = num["quantity"] if p.get("quantity") else None
    return NewOrder(
        p["symbol"],
        p["side"],
        kind,
        tif,
        qty,
        None if qty else num["quoteOrderQty"],
        num["price"],
        client_id,
    ), resp_type


def _page(rows: list, p: dict[str, str], from_name: str, ident, when) -> list:
    for name in (from_name, "startTime", "endTime", "limit"):
        if name in p and not re.fullmatch(r"[0-9]{1,20}", p[name]):
            raise _illegal(name, "^[0-9]{1,20}$")
    if from_name in p:
        rows = [r for r in rows if ident(r) >= int(p[from_name])]
    if "startTime" in p:
        rows = [r for r in rows if when(r) >= int(p["startTime"])]
    if "endTime" in p:
        rows = [r for r in rows if when(r) <= int(p["endTime"])]
    limit = min(max(int(p.get("limit", 500)), 1), 1000)
    if from_name not in p and "startTime" not in p:
        return rows[-limit:]
    return rows[:limit]


def _result(o: Order) -> dict[str, Any]:
    return {
        "price": _f(o.price),
        "origQty": _f(o.qty),
        "executedQty": _f(o.executed),
        "origQuoteOrderQty": _f(o.quote_qty),
        "cummulativeQuoteQty": _f(o.cum_quote),
        "status": o.status,
        "timeInForce": o.tif,
        "type": o.type,
        "side": o.side,
    }


def new_order_body(o: Order, trades: list[Trade], resp_type: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_id,
        "transactTime": o.time,
    }
    if resp_type == "ACK":
        return body
    body |= _result(o) | {"workingTime": o.time, "selfTradePreventionMode": "EXPIRE_MAKER"}
    if resp_type == "FULL":
        body["fills"] = [
            {
                "price": _f(t.price),
                "qty": _f(t.qty),
                "commission": _f(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.id,
            }
            for t in trades
        ]
    return body


def query_body(o: Order) -> dict[str, Any]:
    return (
        {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_id}
        | _result(o)
        | {
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": o.time,
            "updateTime": o.update_time,
            "isWorking": True,
            "workingTime": o.time,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
    )


def cancel_body(o: Order, cancel_id: str, now: int) -> dict[str, Any]:
    head = {
        "symbol": o.symbol,
        "origClientOrderId": o.client_id,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_id,
        "transactTime": now,
    }
    return head | _result(o) | {"selfTradePreventionMode": "EXPIRE_MAKER"}


def trade_body(t: Trade) -> dict[str, Any]:
    return {
        "symbol": t.symbol,
        "id": t.id,
        "orderId": t.order_id,
        "orderListId": -1,
        "price": _f(t.price),
        "qty": _f(t.qty),
        "quoteQty": _f(t.quote_qty),
        "commission": _f(t.commission),
        "commissionAsset": t.commission_asset,
        "time": t.time,
        "isBuyer": t.is_buyer,
        "isMaker": t.is_maker,
        "isBestMatch": True,
    }
