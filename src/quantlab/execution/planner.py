"""Targets -> order intents, with the backtest's order logic so paper trading does what it assumed.

`plan_orders` takes the latest decision per symbol (the target weight decided at a bar's close)
and mirrors `portfolio.engine_nb`: qty = target * equity / price - position, the rebalance band
(flattening and sign changes always trade), the quantity floored to stepSize, spot long-only (a
negative weight is refused as short_not_allowed, as the backtest refuses it) and the venue
filters (`portfolio.venue.check_order_for`, reduce-only orders exempt from min notional). Sells
come before buys, as in the engine. Every adjustment (floored, capped at maxQty, at the free base
of a spot sell, at the free quote of a buy, the limit price put on the tick) is written in the
intent's `note`; every order the exchange would refuse is a row of `Plan.skipped` with the
RejectReason label and a sentence. Pure: no I/O, no clock.

One difference from the backtest is inherent to spot: a BUY pays its fee in the base asset, so
the free base is the bought quantity less the fee and a later full SELL is capped at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from quantlab.config import BacktestConfig
from quantlab.config.paper import PaperConfig
from quantlab.portfolio.costs import BNB_DISCOUNT
from quantlab.portfolio.orders import (
    Balance,
    OrderIntent,
    OrderType,
    TimeInForce,
    idempotency_key,
    split_symbol,
)
from quantlab.portfolio.types import RejectReason, Side
from quantlab.portfolio.venue import VenueRules, check_order_for, floor_to_step, round_price

# A MARKET buy is locked at the decision close plus this share: it fills at the next bar's open
# moved against it by the half spread and impact (a few bps on liquid symbols), and the open may
# sit above the decision close. 1% covers both on 1h bars; a fill beyond what is locked and free
# is cut by the venue, never paid from a negative balance.
MARKET_BUY_BUFFER = 0.01

_FLAT_EPS = 1e-9  # the engine's: a flatten within float error of the position closes it exactly

SKIPPED_SCHEMA = {
    "symbol": pl.String,
    "side": pl.String,
    "qty": pl.Float64,
    "price": pl.Float64,
    "reason": pl.String,
    "detail": pl.String,
}


@dataclass(frozen=True)
class Plan:
    """The intents to send (sells first) and the orders not sent, with why."""

    intents: list[OrderIntent]
    skipped: pl.DataFrame  # symbol, side, qty, price, reason (RejectReason label), detail


def lock_for(
    intent: OrderIntent, taker_fee: float, assets: dict[str, tuple[str, str]] | None = None
) -> tuple[str, float]:
    """(asset, amount) the ledger and the paper venue lock when `intent` is placed.

    A BUY locks quote qty * price * (1 + fee + buffer): the buffer is `MARKET_BUY_BUFFER` for a
    market order, which fills at the next open plus slippage and so may cost more than its
    reference price, and 0 for a limit, which never fills above its limit. A SELL locks its
    base qty. `assets` (symbol -> (base, quote)) names the asset; without it the symbol is split
    at a known quote suffix (BTCUSDT -> BTC, USDT).
    """
    base, quote = assets[intent.symbol] if assets else split_symbol(intent.symbol)
    if intent.side is Side.SELL:
        return base, intent.qty
    if intent.type is OrderType.LIMIT and intent.price is not None:
        return quote, intent.qty * intent.price * (1.0 + taker_fee)
    return quote, intent.qty * intent.reference_price * (1.0 + taker_fee + MARKET_BUY_BUFFER)


def plan_orders(
    latest: pl.DataFrame,
    positions: dict[str, float],
    balances: dict[str, Balance],
    equity: float,
    rules: VenueRules,
    assets: dict[str, tuple[str, str]],
    cfg: PaperConfig,
    backtest: BacktestConfig,
    account: str,
    source: str,
    attempts: dict[str, int],
) -> Plan:
    """The orders that move each symbol of `latest` to its target weight (see the module doc).

    `latest`: one row per symbol (symbol, open_time of the decision bar, target_weight, price =
    that bar's close); a null weight is no decision. `equity` values the book at those closes.
    """
    missing = {"symbol", "open_time", "target_weight", "price"} - set(latest.columns)
    if missing:
        raise ValueError(
            f"latest lacks columns {sorted(missing)}; pass one decision row per symbol"
        )
    rows = latest.with_columns(pl.col("open_time").dt.epoch("ms").alias("_ms")).sort("symbol")
    taker = _taker(backtest)
    free = {a: b.free for a, b in balances.items()}
    orders = []
    skipped: list[dict] = []
    for r in rows.iter_rows(named=True):
        order = _size(r, positions.get(r["symbol"], 0.0), equity, backtest.rebalance_band, rules)
        if order is None:
            continue
        if isinstance(order, dict):
            skipped.append(order)
        else:
            orders.append(order)
    intents = []
    for side in (Side.SELL, Side.BUY):  # sells first, as the engine trades them
        for symbol, qty, price, w, ms, pos, notes in orders:
            if (qty > 0) != (side is Side.BUY):
                continue
            made = _finish(symbol, side, abs(qty), price, w, ms, pos, list(notes), free, rules,
                           assets, cfg, taker, account, source, attempts)  # fmt: skip
            if isinstance(made, dict):
                skipped.append(made)
            else:
                intents.append(made)
                if side is Side.BUY:
                    asset, amount = lock_for(made, taker, assets)
                    free[asset] = free.get(asset, 0.0) - amount
    return Plan(intents, pl.DataFrame(skipped, schema=SKIPPED_SCHEMA))


def _taker(backtest: BacktestConfig) -> float:
    """The spot taker rate as `CostModel.from_config` computes it."""
    keep = 1.0 - BNB_DISCOUNT["spot"] if backtest.fees.bnb_discount else 1.0
    return backtest.fees.spot.taker * keep


def _sign(x: float) -> int:
    return (x > 0.0) - (x < 0.0)


def _skip(symbol, side, qty, price, reason: RejectReason, detail: str) -> dict:
    return {"symbol": symbol, "side": str(side), "qty": float(qty), "price": float(price),
            "reason": reason.label, "detail": detail}  # fmt: skip


def _size(r: dict, pos: float, equity: float, band: float, rules: VenueRules):
    """(symbol, signed qty, price, weight, decision ms, position, notes), a skip row, or None."""
    w, price, symbol = r["target_weight"], r["price"], r["symbol"]
    if w is None or not math.isfinite(w):
        return None
    if price is None or not price > 0:
        raise ValueError(
            f"{symbol}: decision price {price!r} is not positive; pass the bar's close"
        )
    w = 0.0 if equity <= 0.0 else float(w)
    delta = w * equity / price - pos if equity > 0.0 else -pos
    if delta == 0.0:
        return None
    side = Side.BUY if delta > 0 else Side.SELL
    if w < 0.0:
        return _skip(symbol, side, abs(delta), price, RejectReason.SHORT_NOT_ALLOWED,
                     f"target weight {w:.6g} < 0 on a long-only spot symbol")  # fmt: skip
    cur_w = pos * price / equity if equity > 0.0 else 0.0
    flatten = w == 0.0
    sign_change = _sign(w) != _sign(pos)
    if not flatten and not sign_change and abs(w - cur_w) < band:
        return None  # inside the rebalance band: not an order, as in the engine
    want = abs(delta)
    step = float(rules.step_size[rules.index(symbol)])
    if flatten and want < step:
        # Dust under one step (left by fees paid in the base asset): no exchange would take an
        # order for it, and the backtest, which pays fees in quote, never holds it. Flat.
        return None
    qty = floor_to_step(want, step)
    notes = []
    if flatten and abs(want - qty) <= _FLAT_EPS * max(step, want):
        qty = want
    elif qty != want:
        notes.append(f"qty {want:.10g} floored to stepSize {step:.10g}")
    if qty <= 0.0:
        return _skip(symbol, side, want, price, RejectReason.STEP_SIZE,
                     f"qty {want:.10g} floors to 0 at stepSize {step:.10g}")  # fmt: skip
    signed = qty if side is Side.BUY else -qty
    return symbol, signed, float(price), w, int(r["_ms"]), pos, tuple(notes)


def _finish(symbol, side, qty, price, w, ms, pos, notes, free, rules, assets, cfg, taker,
            account, source, attempts):  # fmt: skip
    """Caps (maxQty, free base / quote), the limit price, the filter check, then the intent."""
    i = rules.index(symbol)
    step, tick = float(rules.step_size[i]), float(rules.tick_size[i])
    base, quote = assets[symbol]
    max_qty = float(rules.max_qty[i])
    if qty > max_qty:
        notes.append(f"qty {qty:.10g} capped at maxQty {max_qty:.10g}")
        qty = max_qty  # on the step grid by Binance's rule (flooring 9000 / 1e-5 loses a step)
    limit = None
    tif = None
    order_price = price
    if cfg.order_type == "limit":
        off = cfg.limit_offset_bps * 1e-4
        raw = price * (1.0 - off) if side is Side.BUY else price * (1.0 + off)
        # passive on the tick: a buy rounds down, a sell up (round_price's side is the taker's)
        limit = float(round_price(raw, tick, -1 if side is Side.BUY else 1))
        notes.append(f"limit {raw:.10g} put on tickSize {tick:.10g} at {limit:.10g}")
        tif, order_price = TimeInForce(cfg.time_in_force), limit
    if side is Side.SELL:
        have = floor_to_step(max(free.get(base, 0.0), 0.0), step)
        if qty > have:
            if have <= 0.0:
                return _skip(symbol, side, qty, order_price, RejectReason.STEP_SIZE,
                             f"the free {base} floors to 0 at stepSize {step:.10g}: "
                             "nothing to sell")  # fmt: skip
            notes.append(f"qty {qty:.10g} capped at the free {base} {have:.10g}")
            qty = have
    else:
        per_unit = order_price * (1.0 + taker + (0.0 if limit else MARKET_BUY_BUFFER))
        have = floor_to_step(max(free.get(quote, 0.0), 0.0) / per_unit, step)
        if qty > have:
            if have <= 0.0:
                return _skip(symbol, side, qty, order_price, RejectReason.MARGIN,
                             f"no free {quote} for qty {qty:.10g} at {order_price:.10g}")  # fmt: skip
            notes.append(f"qty {qty:.10g} cut to {have:.10g}, what the free {quote} buys")
            qty = have
    reduce_only = pos * (1 if side is Side.BUY else -1) < 0.0 and qty <= abs(pos)
    reason = check_order_for(rules, symbol, qty, order_price, reduce_only)
    if reason is not None:
        return _skip(
            symbol, side, qty, order_price, reason, _why(reason, qty, order_price, rules, i)
        )
    key = idempotency_key(account, source, symbol, ms, attempts.get(symbol, 0))
    return OrderIntent(
        account=account, key=key, symbol=symbol, side=side,
        type=OrderType.LIMIT if limit else OrderType.MARKET, qty=float(qty), price=limit,
        tif=tif, decision_ms=ms, target_weight=w, source=source, reference_price=price,
        note="; ".join(notes),
    )  # fmt: skip


def _why(reason: RejectReason, qty: float, price: float, rules: VenueRules, i: int) -> str:
    if reason is RejectReason.MIN_QTY:
        return f"qty {qty:.10g} < minQty {rules.min_qty[i]:.10g}; the exchange refuses it"
    if reason is RejectReason.MAX_QTY:
        return f"qty {qty:.10g} > maxQty {rules.max_qty[i]:.10g}; the exchange refuses it"
    if reason is RejectReason.MIN_NOTIONAL:
        return (f"notional {qty * price:.10g} < min notional {rules.min_notional[i]:.10g}; "
                "the exchange refuses it")  # fmt: skip
    return f"qty {qty:.10g} floors to 0 at stepSize {rules.step_size[i]:.10g}"
