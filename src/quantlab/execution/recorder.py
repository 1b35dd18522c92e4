"""Round trips from the ledger's fills: each position from flat back to flat, with the model's
score and class at entry, so the accuracy tracker can judge realised trades.

A round trip stays one trip until the position is flat again: adds are part of its entry,
partial exits part of its exit (entry and exit prices are volume-weighted), rather than being
split into proportional shares. Flat means flat in what is actually held: a spot buy pays its
fee in the base asset, so a long is flat when the sells took back what the buys brought in net
of those fees; what is left below `dust_frac` of the trip's largest holding (a sell floored to
the step) counts as flat. A fill that crosses zero closes the trip with the part that reaches
flat and opens the next with the rest (its fee shared in proportion).

`pnl` is the quote-asset cash the trip made (sells - buys - fees paid in quote): a base-asset
fee is already in it, as base that could not be sold back. `fees` values every fee in quote at
its fill's price, for reading. The entry's prediction is the one of the entry order's decision
bar (`orders_frame.decision_ms`, the predictions' `open_time`); an order without one (adopted
from the venue) gives null score and class.
"""

from __future__ import annotations

from typing import Protocol

import polars as pl

from quantlab.errors import DataError
from quantlab.schema import require_columns

FILL_COLUMNS = (
    "symbol",
    "trade_id",
    "client_id",
    "side",
    "qty",
    "price",
    "fee",
    "fee_asset",
    "time_ms",
)


class RecorderLedger(Protocol):
    def fills(self, account: str) -> pl.DataFrame: ...
    def orders_frame(self, account: str) -> pl.DataFrame: ...
    def record_round_trip(self, account: str, rt: dict) -> bool: ...
    def round_trips(self, account: str) -> pl.DataFrame: ...


def _fee_in_quote(symbol: str, fee: float, asset: str, price: float) -> tuple[float, float]:
    """(fee in quote, fee in base) of one fill."""
    if fee == 0.0:
        return 0.0, 0.0
    if symbol.endswith(asset):
        return fee, 0.0
    if symbol.startswith(asset):
        return fee * price, fee
    raise DataError(
        f"{symbol}: a fee of {fee} {asset} is neither the base nor the quote asset, so it has no "
        "price here; pay fees in the traded assets (turn off BNB fee burn on the account)"
    )


def _predictions_at(
    predictions: pl.DataFrame | None,
) -> dict[tuple[str, int], tuple[float, int | None]]:
    if predictions is None or predictions.is_empty():
        return {}
    require_columns(predictions, ("symbol", "open_time", "score", "class"), "predictions")
    t = pl.col("open_time")
    ms = t.dt.epoch("ms") if predictions.schema["open_time"].is_temporal() else t.cast(pl.Int64)
    p = predictions.select("symbol", ms.alias("ms"), "score", "class")
    dup = p.filter(pl.struct("symbol", "ms").is_duplicated())
    if not dup.is_empty():
        raise DataError(
            f"predictions repeat (symbol, open_time) {dup.row(0)[:2]}: pass one prediction per bar"
        )
    return {(s, m): (sc, cl) for s, m, sc, cl in p.iter_rows()}


class _Trip:
    def __init__(self, side: str, time_ms: int, client_id: str) -> None:
        self.side, self.entry_ms, self.entry_client = side, time_ms, client_id
        self.entry_qty = self.entry_quote = self.exit_qty = self.exit_quote = 0.0
        self.quote_fees = self.fees = self.peak = 0.0

    def add(
        self, entry: bool, qty: float, price: float, fee_quote: float, fee_paid_quote: float
    ) -> None:
        if entry:
            self.entry_qty += qty
            self.entry_quote += qty * price
        else:
            self.exit_qty += qty
            self.exit_quote += qty * price
        self.fees += fee_quote
        self.quote_fees += fee_paid_quote

    def row(self, symbol: str, exit_ms: int, pred: tuple[float | None, int | None]) -> dict:
        sells, buys = (
            (self.exit_quote, self.entry_quote)
            if self.side == "long"
            else (self.entry_quote, self.exit_quote)
        )
        return {
            "symbol": symbol,
            "side": self.side,
            "qty": self.entry_qty,
            "entry_ms": self.entry_ms,
            "entry_price": self.entry_quote / self.entry_qty,
            "exit_ms": exit_ms,
            "exit_price": self.exit_quote / self.exit_qty,
            "pnl": sells - buys - self.quote_fees,
            "fees": self.fees,
            "entry_score": pred[0],
            "entry_class": pred[1],
            "exit_reason": "sold back to flat" if self.side == "long" else "bought back to flat",
        }


def build_round_trips(
    fills: pl.DataFrame,
    orders: pl.DataFrame | None = None,
    predictions: pl.DataFrame | None = None,
    dust_frac: float = 1e-3,
) -> list[dict]:
    """The closed round trips in `fills` (ledger.fills), as `ledger.record_round_trip` fields,
    in order of exit. A position still open at the end is not a round trip yet."""
    require_columns(fills, FILL_COLUMNS, "fills")
    decided: dict[str, int] = {}
    if orders is not None and not orders.is_empty():
        require_columns(orders, ("client_id", "decision_ms"), "orders")
        decided = {
            c: d for c, d in orders.select("client_id", "decision_ms").iter_rows() if d is not None
        }
    preds = _predictions_at(predictions)
    out: list[dict] = []
    for (symbol,), part in fills.sort("time_ms", "trade_id").group_by(
        "symbol", maintain_order=True
    ):
        held, trip = 0.0, None
        for f in part.iter_rows(named=True):
            fee_q, fee_b = _fee_in_quote(symbol, f["fee"], f["fee_asset"], f["price"])
            sign = 1.0 if f["side"] == "BUY" else -1.0
            qty, client = f["qty"], f["client_id"]
            while qty > 0:
                if trip is None:
                    trip = _Trip("long" if sign > 0 else "short", f["time_ms"], client)
                entry = (sign > 0) == (trip.side == "long")
                # An exit takes at most what is held; the rest of the fill opens the next trip.
                take = qty if entry else min(qty, abs(held) + fee_b * (sign > 0))
                share = take / f["qty"]
                trip.add(
                    entry, take, f["price"], fee_q * share, (fee_q - fee_b * f["price"]) * share
                )
                held += sign * take - fee_b * share
                trip.peak = max(trip.peak, abs(held))
                qty -= take
                if not entry and abs(held) <= dust_frac * trip.peak:
                    order_ms = decided.get(trip.entry_client)
                    pred = (
                        preds.get((symbol, order_ms), (None, None))
                        if order_ms is not None
                        else (None, None)
                    )
                    out.append(trip.row(symbol, f["time_ms"], pred))
                    trip = None
                    if qty <= dust_frac * f["qty"]:
                        break
    return sorted(out, key=lambda r: (r["exit_ms"], r["symbol"]))


def record(ledger: RecorderLedger, account: str, predictions: pl.DataFrame | None) -> int:
    """Books the account's closed round trips (again is harmless: the ledger keeps each once);
    returns how many were new."""
    trips = build_round_trips(ledger.fills(account), ledger.orders_frame(account), predictions)
    return sum(ledger.record_round_trip(account, rt) for rt in trips)


def realised_frame(round_trips: pl.DataFrame, interval_ms: int | None = None) -> pl.DataFrame:
    """`round_trips` with `return` (pnl over the entry notional), `holding_ms`, `holding_bars`
    (null without `interval_ms`), `direction_right` (the price moved the trade's way, fees aside:
    did the model call the direction) and `profitable` (after fees)."""
    s = pl.when(pl.col("side") == "long").then(1.0).otherwise(-1.0)
    held = pl.col("exit_ms") - pl.col("entry_ms")
    # Rounded: polars divides a column by a scalar through its reciprocal (1 bar -> 0.999...).
    bars = (held / interval_ms).round(9) if interval_ms else pl.lit(None, pl.Float64)
    return round_trips.with_columns(
        (pl.col("pnl") / (pl.col("qty") * pl.col("entry_price"))).alias("return"),
        held.alias("holding_ms"),
        bars.alias("holding_bars"),
        ((pl.col("exit_price") - pl.col("entry_price")) * s > 0).alias("direction_right"),
        (pl.col("pnl") > 0).alias("profitable"),
    )


def realised(ledger: RecorderLedger, account: str, interval_ms: int | None = None) -> pl.DataFrame:
    """The account's booked round trips as `realised_frame` returns them."""
    return realised_frame(ledger.round_trips(account), interval_ms)
