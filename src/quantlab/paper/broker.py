"""Turning target weights into orders and simulated fills: pure functions, no database."""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from quantlab.config import PaperConfig
from quantlab.portfolio.types import Side


@dataclass(frozen=True)
class Order:
    """One order and, on the paper venue, its immediate fill."""

    client_order_id: str  # our idempotency key: one order per targets version and symbol
    symbol: str
    side: Side
    qty: float
    price: float  # fill price
    fee: float
    target_weight: float


def plan_orders(
    latest: pl.DataFrame,
    positions: dict[str, float],
    cfg: PaperConfig,
    key_prefix: str,
) -> list[Order]:
    """Orders that move current `positions` to the target weights in `latest`.

    `latest` has one row per symbol: symbol, target_weight, price (the newest
    close). Quantities are rounded down to `cfg.qty_decimals`; orders under
    `cfg.min_notional` are skipped, as the exchange would reject them.
    """
    step = 10.0**-cfg.qty_decimals
    orders = []
    for row in latest.sort("symbol").iter_rows(named=True):
        price = float(row["price"])
        target_qty = row["target_weight"] * cfg.equity / price
        delta = target_qty - positions.get(row["symbol"], 0.0)
        # The tolerance stops 3.00039 / 1e-5 = 300038.99999 from losing a whole lot.
        qty = math.floor(abs(delta) / step + 1e-6) * step
        if qty * price < cfg.min_notional:
            continue
        qty = round(qty, cfg.qty_decimals)
        orders.append(
            Order(
                client_order_id=f"{key_prefix}-{row['symbol']}",
                symbol=row["symbol"],
                side=Side.BUY if delta > 0 else Side.SELL,
                qty=qty,
                price=price,
                fee=qty * price * cfg.fee_rate,
                target_weight=float(row["target_weight"]),
            )
        )
    return orders
