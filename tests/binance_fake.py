"""Just enough of Binance's signed spot API, as an `httpx.MockTransport` handler, to test the
signed client: it checks the API key header, the signature (HMAC with the test secret, or
Ed25519 with the public key) and the recvWindow like Binance, keeps orders, and plays
scripted faults.

Prices: a MARKET order fills at the close of the first real BTCUSDT 1h candle of 2024
(tests/fixtures), whatever the symbol; balances and fees (0.1%) are synthetic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from helpers import FIXTURES, FakeClock

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"  # Binance docs'
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"  # test keys
START = 1704067200.0  # 2024-01-01 00:00 UTC
INFO = json.loads(
    (FIXTURES / "exchangeInfo_spot_2023-09-08_MAINNET_subset_DERIVED.json").read_text()
)
FILL_PRICE = json.loads((FIXTURES / "rest_api_v3_klines_BTCUSDT-1h-2024-01-01.json").read_text())[
    0
][4]  # "42475.23000000"


def error(status: int, code: int, msg: str, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "msg": msg}, headers=headers)


@dataclass
class Fault:
    """What the next request to one route does: `place` the order or not, then answer with
    `response` (or raise `raise_`); both None answers normally."""

    place: bool = True
    response: httpx.Response | None = None
    raise_: Exception | None = None


@dataclass
class FakeBinance:
    clock: FakeClock = field(default_factory=lambda: FakeClock(START))
    secret: str = SECRET
    public_key: Ed25519PublicKey | None = None  # set: verify Ed25519 instead of HMAC
    skew_ms: int = 0  # server clock minus the client's
    info: dict = field(default_factory=lambda: INFO)
    orders: dict[str, dict] = field(default_factory=dict)  # client id -> order
    trades: list[dict] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)  # "POST /api/v3/order" -> next
    hidden_lookups: dict[str, int] = field(default_factory=dict)  # client id -> -2013 answers
    requests: list[tuple[str, str, dict]] = field(default_factory=list)
    balances: dict[str, list[float]] = field(
        default_factory=lambda: {"USDT": [100_000.0, 0.0], "BTC": [0.5, 0.0]}
    )

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def now_ms(self) -> int:
        return int(self.clock() * 1000) + self.skew_ms

    def calls(self, method: str, path: str) -> list[dict]:
        return [params for m, at, params in self.requests if (m, at) == (method, path)]

    def fault(self, route: str, *faults: Fault) -> None:
        self.faults.setdefault(route, []).extend(faults)

    def handle(self, request: httpx.Request) -> httpx.Response:
        query, body = request.url.query.decode(), request.content.decode()
        params = dict(parse_qsl(query + ("&" + body if body else "")))
        route = f"{request.method} {request.url.path}"
        self.requests.append((request.method, request.url.path, params))
        if request.url.path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": self.now_ms()})
        if request.url.path == "/api/v3/exchangeInfo":
            return self._exchange_info(params)
        if (refused := self._authenticate(request, query, body, params)) is not None:
            return refused
        fault = self.faults.get(route, []) and self.faults[route].pop(0)
        answer = None
        if not fault or fault.place:
            answer = getattr(self, "_" + route.replace(" /api/v3/", "_"))(params)
        if fault and fault.raise_ is not None:
            raise fault.raise_
        if fault and fault.response is not None:
            return fault.response
        return answer

    def _authenticate(self, request, query, body, params) -> httpx.Response | None:
        if request.headers.get("X-MBX-APIKEY") != API_KEY:
            return error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload, sep, signature = query.rpartition("&signature=")
        if not sep:
            return error(400, -1102, "Mandatory parameter 'signature' was not sent.")
        if not self._verify((payload + body).encode(), signature):
            return error(400, -1022, "Signature for this request is not valid.")
        stamp, window = int(params["timestamp"]), int(params.get("recvWindow", 5000))
        if stamp >= self.now_ms() + 1000 or self.now_ms() - stamp > window:
            return error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return None

    def _verify(self, payload: bytes, signature: str) -> bool:
        if self.public_key is None:
            good = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
            return hmac.compare_digest(good, signature.lower())
        try:
            self.public_key.verify(base64.b64decode(unquote(signature)), payload)
        except (InvalidSignature, ValueError):
            return False
        return True

    def _exchange_info(self, params: dict) -> httpx.Response:
        wanted = json.loads(params.get("symbols", "null"))
        symbols = [s for s in self.info["symbols"] if wanted is None or s["symbol"] in wanted]
        return httpx.Response(200, json={**self.info, "symbols": symbols})

    # -- routes ----------------------------------------------------------------------------

    def _POST_order(self, p: dict) -> httpx.Response:
        cid = p["newClientOrderId"]
        if cid in self.orders and self.orders[cid]["status"] in ("NEW", "PARTIALLY_FILLED"):
            return error(400, -2010, "Duplicate order sent.")
        now, oid = self.now_ms(), len(self.orders) + 1
        market = p["type"] == "MARKET"
        order = {
            "symbol": p["symbol"], "orderId": oid, "orderListId": -1, "clientOrderId": cid,
            "price": "0.00000000" if market else p["price"], "origQty": p["quantity"],
            "executedQty": "0.00000000", "cummulativeQuoteQty": "0.00000000", "status": "NEW",
            "timeInForce": p.get("timeInForce", "GTC"), "type": p["type"], "side": p["side"],
            "time": now, "updateTime": now, "workingTime": now, "origQuoteOrderQty": "0.0",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }  # fmt: skip
        self.orders[cid] = order
        fills = []
        if market:
            fills = [self.fill(cid, float(p["quantity"]), float(FILL_PRICE))]
        return httpx.Response(200, json={**order, "transactTime": now, "fills": fills})

    def fill(self, cid: str, qty: float, price: float, at_ms: int | None = None) -> dict:
        """Fill order `cid` by `qty` at `price` (a resting limit filled later, in a test)."""
        order = self.orders[cid]
        executed = float(order["executedQty"]) + qty
        order["executedQty"] = f"{executed:.8f}"
        order["cummulativeQuoteQty"] = f"{float(order['cummulativeQuoteQty']) + qty * price:.8f}"
        order["status"] = "FILLED" if executed >= float(order["origQty"]) else "PARTIALLY_FILLED"
        order["updateTime"] = at_ms if at_ms is not None else self.now_ms()
        buy = order["side"] == "BUY"
        fee_asset, fee = ("BTC", qty * 0.001) if buy else ("USDT", qty * price * 0.001)
        trade = {
            "symbol": order["symbol"], "id": len(self.trades) + 100, "orderId": order["orderId"],
            "orderListId": -1, "price": f"{price:.8f}", "qty": f"{qty:.8f}",
            "quoteQty": f"{qty * price:.8f}", "commission": f"{fee:.8f}",
            "commissionAsset": fee_asset, "time": order["updateTime"], "isBuyer": buy,
            "isMaker": False, "isBestMatch": True,
        }  # fmt: skip
        self.trades.append(trade)
        return {
            "price": trade["price"], "qty": trade["qty"], "commission": trade["commission"],
            "commissionAsset": fee_asset, "tradeId": trade["id"],
        }  # fmt: skip

    def _find(self, p: dict) -> dict | None:
        if "origClientOrderId" in p:
            return self.orders.get(p["origClientOrderId"])
        return next((o for o in self.orders.values() if str(o["orderId"]) == p["orderId"]), None)

    def _GET_order(self, p: dict) -> httpx.Response:
        order = self._find(p)
        cid = p.get("origClientOrderId", "")
        if order is not None and self.hidden_lookups.get(cid, 0) > 0:
            self.hidden_lookups[cid] -= 1
            order = None
        if order is None:
            return error(400, -2013, "Order does not exist.")
        return httpx.Response(200, json=order)

    def _DELETE_order(self, p: dict) -> httpx.Response:
        order = self._find(p)
        if order is None or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return error(400, -2011, "Unknown order sent.")
        order["status"] = "CANCELED"
        return httpx.Response(
            200,
            json={**order, "origClientOrderId": order["clientOrderId"], "clientOrderId": "cxl1"},
        )

    def _GET_openOrders(self, p: dict) -> httpx.Response:
        return httpx.Response(
            200,
            json=[
                o
                for o in self.orders.values()
                if o["symbol"] == p["symbol"] and o["status"] in ("NEW", "PARTIALLY_FILLED")
            ],
        )

    def _GET_allOrders(self, p: dict) -> httpx.Response:
        return httpx.Response(200, json=self._window(list(self.orders.values()), p))

    def _GET_myTrades(self, p: dict) -> httpx.Response:
        if "orderId" in p:
            rows = [t for t in self.trades if str(t["orderId"]) == p["orderId"]]
            return httpx.Response(200, json=rows)
        return httpx.Response(200, json=self._window(self.trades, p))

    def _window(self, rows: list[dict], p: dict) -> list[dict]:
        lo, hi = int(p["startTime"]), int(p["endTime"])
        if hi - lo > 86_400_000:
            raise AssertionError(f"a window longer than 24 h was asked: {p}")
        rows = [r for r in rows if r["symbol"] == p["symbol"] and lo <= r["time"] <= hi]
        return sorted(rows, key=lambda r: r["time"])[: int(p.get("limit", 500))]

    def _GET_account(self, p: dict) -> httpx.Response:
        rows = [
            {"asset": a, "free": f"{f:.8f}", "locked": f"{x:.8f}"}
            for a, (f, x) in self.balances.items()
        ]
        return httpx.Response(200, json={"canTrade": True, "balances": rows})
