"""`run` for the paper stage: book orders for the newest targets in the ledger, write `paper_orders`."""

from __future__ import annotations

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.paper.broker import plan_orders
from quantlab.paper.ledger import Ledger

# The config this stage reads, its fingerprint; the ledger's URL may hold a password, and
# stays out like every destination.
READS = ("paper",)
IGNORES = ("paper.ledger_url",)
_ORDER_SCHEMA = {
    "client_order_id": pl.String,
    "symbol": pl.String,
    "side": pl.String,
    "qty": pl.Float64,
    "price": pl.Float64,
    "fee": pl.Float64,
    "target_weight": pl.Float64,
}


def latest_targets(targets: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """Per symbol, the newest target weight and the close it was decided at."""
    return (
        targets.sort("open_time")
        .group_by("symbol")
        .last()
        .join(
            bars.select("symbol", "open_time", pl.col("close").alias("price")),
            on=["symbol", "open_time"],
        )
        .select("symbol", "open_time", "target_weight", "price")
    )


def run(ctx: RunContext, targets: DatasetRef, klines: DatasetRef) -> DatasetRef:
    """Trade the paper account to the newest `targets`; idempotent per targets version."""
    cfg = ctx.config.paper
    latest = latest_targets(
        ctx.catalog.read(targets),
        ctx.catalog.scan(klines).select("symbol", "open_time", "close").collect(),
    )
    key_prefix = f"{cfg.account}-{targets.name}-v{targets.version}"
    with Ledger.connect(cfg.ledger_url) as ledger:
        for order in plan_orders(latest, ledger.positions(cfg.account), cfg, key_prefix):
            ledger.book(cfg.account, order, source=str(targets))
        booked = ledger.orders(cfg.account, prefix=key_prefix)
    return ctx.catalog.write(
        "paper_orders",
        pl.DataFrame(booked, schema=_ORDER_SCHEMA),
        stage="paper",
        inputs=[targets, klines],
        config_hash=slice_hash(ctx.config, READS, IGNORES),
        extra={"account": cfg.account, "orders": len(booked)},
    )
