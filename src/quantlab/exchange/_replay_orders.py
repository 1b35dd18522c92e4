"""The replay exchange's order book per account: placement, matching, cancels, balances, trades.

Prices come from the recorded spot klines of the finest interval the root holds for a symbol,
matched with `quantlab.portfolio.matching` (the paper venue's rule too):
- the price "now" is the open of the candle the replay clock falls in, or the close of the last
  candle when the clock is past it (a gap or the end of the recording);
- MARKET fills at once, all of it, at that price on the tick grid (no book, so no slippage);
- LIMIT crosses when a BUY's limit >= that price (a SELL's <=) and then fills at once as taker at
  that price; otherwise GTC rests NEW with its funds locked, and fills as the clock moves over
  later closed candles (`matching.limit_fill`, maker, at most `max_participation` of a candle's
  volume); IOC and FOK that do not cross expire unfilled (with no depth, a crossing IOC or FOK
  fills whole); LIMIT_MAKER that would cross is refused (-2010).
Fees: `fee_rate` (0.1%) of what the order receives, maker or taker alike (`matching.fee_for`).
Everything runs under one lock, so an order is placed, filled and cancelled exactly once.
"""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from quantlab.exchange._replay_accounts import Account, InsufficientBalance, Wallet
from quantlab.exchange._replay_candles import Candles
from quantlab.exchange._replay_filters import filter_failure
from quantlab.portfolio.matching import fee_for, limit_fill, market_price
from quantlab.portfolio.types import Side

OPEN = ("NEW", "PARTIALLY_FILLED")
_Q = Decimal("0.00000001")
_BASE = "data/spot"


class BookError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def dec(x: float) -> Decimal:
    return Decimal(f"{x:.8f}")


@dataclass
class Order:
    account: str
    symbol: str
    order_id: int
    client_id: str
    side: str
    type: str
    tif: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    time: int
    base: str
    quote: str
    executed: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    status: str = "NEW"
    update_time: int = 0
    next_bar_ms: int = 0  # the open time of the first candle a resting order may match
    locked: Decimal = Decimal(0)  # what this order still holds locked (quote on BUY, base on SELL)
    hidden_queries: int = 0  # the "missing_for" fault: GET /api/v3/order answers -2013 this often


@dataclass(frozen=True)
class Trade:
    id: int
    account: str
    symbol: str
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


@dataclass(frozen=True)
class NewOrder:
    symbol: str
    side: str
    type: str
    tif: str
    qty: Decimal | None
    quote_qty: Decimal | None
    price: Decimal | None
    client_id: str | None


class Book:
    """Orders, trades and wallets of every account; all methods hold one lock."""

    def __init__(
        self,
        accounts: Iterable[Account],
        candles: Candles,
        symbol_info: Callable[[str], Mapping[str, Any] | None],
        *,
        fee_rate: Decimal = Decimal("0.001"),
        max_participation: float = 1.0,
        seed: int = 0,
        on_first_fill: Callable[[str], None] = lambda account: None,
    ):
        self.accounts = {a.api_key: a for a in accounts}
        self.wallets = {a.api_key: Wallet(a.balances) for a in self.accounts.values()}
        self.candles, self.symbol_info = candles, symbol_info
        self.fee_rate, self.max_participation = fee_rate, max_participation
        self.on_first_fill = on_first_fill
        self.orders: list[Order] = []
        self.trades: list[Trade] = []
        self.lock = threading.RLock()
        self._rng = random.Random(seed)

    # -- reads ---------------------------------------------------------------------------
    def find(
        self, account: str, symbol: str, order_id: int | None, client_id: str | None
    ) -> Order | None:
        """By orderId (and then its client id must match), else the latest order with that client id."""
        for o in reversed(self.orders):
            if o.account != account or o.symbol != symbol:
                continue
            if order_id is not None and o.order_id == order_id:
                return o if client_id in (None, o.client_id) else None
            if order_id is None and o.client_id == client_id:
                return o
        return None

    def open_orders(self, account: str, symbol: str | None) -> list[Order]:
        return [
            o
            for o in self.orders
            if o.account == account and o.status in OPEN and symbol in (None, o.symbol)
        ]

    # -- placement -----------------------------------------------------------------------
    def place(self, account: str, req: NewOrder, now_ms: int, *, test: bool = False) -> Order:
        info = self.symbol_info(req.symbol)
        if info is None:
            raise BookError(-1121, "Invalid symbol.")
        priced = self.candles.price_now(req.symbol, now_ms)
        if priced is None:
            raise BookError(-2010, "Market is closed.")
        now_price, next_bar = priced
        tick = Decimal(
            next((f["tickSize"] for f in info["filters"] if f["filterType"] == "PRICE_FILTER"), "0")
        )
        step = next((f["stepSize"] for f in info["filters"] if f["filterType"] == "LOT_SIZE"), "0")
        side = Side(req.side)
        market = req.type == "MARKET"
        fill_price = (
            dec(market_price(side, float(now_price), 0.0, float(tick))) if market else now_price
        )
        qty = req.qty
        if qty is None:  # a quoteOrderQty MARKET order: as much as the quote buys, on the step
            qty = (
                Decimal(step) * int(req.quote_qty / fill_price / Decimal(step))
                if Decimal(step)
                else (req.quote_qty / fill_price).quantize(_Q)
            )
        failed = filter_failure(
            info["filters"],
            market=market,
            qty=qty,
            price=req.price,
            notional_price=fill_price if market else req.price,
            open_orders=len(self.open_orders(account, req.symbol)),
        )
        if failed:
            raise BookError(-1013, f"Filter failure: {failed}")
        if test:
            return None  # type: ignore[return-value]
        if req.client_id and any(
            o.client_id == req.client_id for o in self.open_orders(account, None)
        ):
            raise BookError(-2010, "Duplicate order sent.")
        crosses = market or (req.price >= now_price if side is Side.BUY else req.price <= now_price)
        if req.type == "LIMIT_MAKER" and crosses:
            raise BookError(-2010, "Order would immediately match and take.")
        base, quote = info["baseAsset"], info["quoteAsset"]
        wallet = self.wallets[account]
        need_asset, need = (
            (quote, qty * (fill_price if market else req.price))
            if side is Side.BUY
            else (base, qty)
        )
        try:
            wallet.require(need_asset, need)
        except InsufficientBalance:
            raise BookError(
                -2010, "Account has insufficient balance for requested action."
            ) from None
        order = Order(
            account,
            req.symbol,
            len(self.orders) + 1,
            req.client_id or self._client_id(),
            req.side,
            req.type,
            req.tif,
            req.price or Decimal(0),
            qty,
            req.quote_qty or Decimal(0),
            now_ms,
            base,
            quote,
            update_time=now_ms,
            next_bar_ms=next_bar,
        )
        self.orders.append(order)
        if market or crosses:
            self._fill(order, qty, fill_price, maker=False, now_ms=now_ms)
        elif req.tif in ("IOC", "FOK"):
            order.status = "EXPIRED"
        else:
            wallet.lock(need_asset, need)
            order.locked = need
        return order

    def _client_id(self) -> str:
        return "".join(self._rng.choices(string.ascii_letters + string.digits, k=22))

    def _fill(
        self, order: Order, qty: Decimal, price: Decimal, *, maker: bool, now_ms: int
    ) -> None:
        wallet = self.wallets[order.account]
        side = Side(order.side)
        quote_qty = (qty * price).quantize(_Q)
        fee, fee_asset = fee_for(
            side, float(qty), float(price), float(self.fee_rate), order.base, order.quote
        )
        fee_d = dec(fee)
        from_locked = order.locked > 0
        if side is Side.BUY:
            wallet.spend(order.quote, quote_qty, from_locked=from_locked)
            if from_locked:  # the lock was at the limit; a better price frees the difference
                held = (qty * order.price).quantize(_Q)
                wallet.unlock(order.quote, held - quote_qty)
                order.locked -= held
            wallet.credit(order.base, qty - fee_d)
        else:
            wallet.spend(order.base, qty, from_locked=from_locked)
            order.locked -= qty if from_locked else 0
            wallet.credit(order.quote, quote_qty - fee_d)
        if order.executed == 0:
            self.on_first_fill(order.account)
        order.executed += qty
        order.cum_quote += quote_qty
        order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
        order.update_time = now_ms
        if order.status == "FILLED" and order.locked > 0:
            wallet.unlock(order.quote if side is Side.BUY else order.base, order.locked)
            order.locked = Decimal(0)
        trade = Trade(
            len(self.trades) + 1,
            order.account,
            order.symbol,
            order.order_id,
            price,
            qty,
            quote_qty,
            fee_d,
            fee_asset,
            now_ms,
            side is Side.BUY,
            maker,
        )
        self.trades.append(trade)

    def cancel(self, order: Order, now_ms: int) -> None:
        if order.status not in OPEN:
            raise BookError(-2011, "Unknown order sent.")
        if order.locked > 0:
            asset = order.quote if order.side == "BUY" else order.base
            self.wallets[order.account].unlock(asset, order.locked)
            order.locked = Decimal(0)
        order.status, order.update_time = "CANCELED", now_ms

    def advance(self, now_ms: int) -> None:
        """Match resting orders against every candle that has closed by `now_ms`."""
        for order in [o for o in self.orders if o.status in OPEN]:
            step = self.candles.step(order.symbol)
            lot = next(
                (
                    f["stepSize"]
                    for f in self.symbol_info(order.symbol)["filters"]
                    if f["filterType"] == "LOT_SIZE"
                ),
                "0",
            )
            for bar in self.candles.closed_bars(order.symbol, order.next_bar_ms, now_ms):
                order.next_bar_ms = bar.open_time_ms + step
                remaining = order.qty - order.executed
                qty, price = limit_fill(
                    Side(order.side),
                    float(order.price),
                    float(remaining),
                    bar,
                    self.max_participation,
                    float(lot),
                )
                if qty > 0:
                    self._fill(
                        order,
                        min(dec(qty), remaining),
                        dec(price),
                        maker=True,
                        now_ms=bar.open_time_ms + step,
                    )
                if order.status not in OPEN:
                    break
