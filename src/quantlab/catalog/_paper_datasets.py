"""The paper-execution bridge's datasets (quantlab.execution): versioned snapshots of the
ledger after each session, the round trips and the backtest-vs-paper divergence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from quantlab.schema import UTC_MS

if TYPE_CHECKING:
    from quantlab.catalog.datasets import Dataset


def paper_datasets(Dataset: type[Dataset]) -> list[Dataset]:
    """Built by `datasets.py` with its `Dataset` class (it imports this module, not the reverse)."""
    return [
        # -- the paper-execution bridge (quantlab.execution): snapshots of the ledger ----------
        Dataset(
            "paper_orders",
            {
                "client_id": pl.String(),
                "account": pl.String(),
                "symbol": pl.String(),
                "side": pl.String(),
                "type": pl.String(),
                "tif": pl.String(),
                "qty": pl.Float64(),
                "price": pl.Float64(),  # the limit price; null for a market order
                "status": pl.String(),
                "venue_order_id": pl.String(),
                "executed_qty": pl.Float64(),
                "cum_quote": pl.Float64(),
                "decision_time": UTC_MS,  # the bar whose close decided it
                "target_weight": pl.Float64(),
                "source": pl.String(),  # the targets version
                "reference_price": pl.Float64(),
                "note": pl.String(),
                "created_time": UTC_MS,
                "updated_time": UTC_MS,
            },
            "paper",
            ("client_id",),
        ),
        Dataset(
            "paper_fills",
            {
                "account": pl.String(),
                "symbol": pl.String(),
                "trade_id": pl.String(),
                "client_id": pl.String(),
                "side": pl.String(),
                **dict.fromkeys(("qty", "price", "fee"), pl.Float64()),
                "fee_asset": pl.String(),
                "time": UTC_MS,
                "maker": pl.Boolean(),
            },
            "paper",
            ("account", "symbol", "trade_id"),
        ),
        Dataset(
            "paper_equity",
            {
                "account": pl.String(),
                "time": UTC_MS,  # the bar close it was marked at
                **dict.fromkeys(("equity", "cash", "gross_exposure"), pl.Float64()),
            },
            "paper",
            ("account", "time"),
        ),
        Dataset(  # each round trip, flat to flat, with the model's score and class at entry
            "paper_round_trips",
            {
                "account": pl.String(),
                "symbol": pl.String(),
                "side": pl.String(),
                "qty": pl.Float64(),
                "entry_time": UTC_MS,
                "entry_price": pl.Float64(),
                "exit_time": UTC_MS,
                "exit_price": pl.Float64(),
                "pnl": pl.Float64(),  # quote, after fees
                "fees": pl.Float64(),
                "entry_score": pl.Float64(),
                "entry_class": pl.String(),
                "exit_reason": pl.String(),
                "return": pl.Float64(),
                "holding_bars": pl.Float64(),
                "direction_right": pl.Boolean(),  # the price moved the trade's way (fees aside)
                "profitable": pl.Boolean(),
            },
            "paper",
            ("account", "symbol", "entry_time", "exit_time"),
        ),
        Dataset(  # backtest vs paper over the session's window: the P&L gap by bucket
            "paper_divergence",
            {
                "bucket": pl.String(),
                "value": pl.Float64(),  # quote; positive: the paper account did better
                "share_of_gap": pl.Float64(),
                "window_start": UTC_MS,
                "window_end": UTC_MS,
                "meaning": pl.String(),
            },
            "paper",
            ("bucket",),
        ),
    ]
