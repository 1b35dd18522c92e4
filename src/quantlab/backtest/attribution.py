"""Where a backtest's P&L came from: round trips, per-symbol contribution, the benchmark.

Pure functions on the frames of a `BacktestResult` (the engine's contract): `fills` (symbol,
open_time, side, qty, price, fee, ...), `positions` (symbol, open_time, qty, close, value) and
`funding` (symbol, funding_time, payment). Used by `stats.summarize` and the tearsheet.
"""

from __future__ import annotations

import polars as pl

from quantlab.schema import require_columns

# A fill's signed quantity and cash flow: a BUY adds qty and pays qty·price; fees always cost.
_SIGNED_QTY = pl.when(pl.col("side") == "BUY").then(pl.col("qty")).otherwise(-pl.col("qty"))
_TOLERANCE = 1e-12  # a position this small (relative to the trip's largest) counts as flat


def round_trips(fills: pl.DataFrame) -> pl.DataFrame:
    """One row per closed round trip: a symbol's position from flat (or a sign flip) to flat.

    symbol, entry_time, exit_time, direction (+1 long, −1 short), pnl: the trip's cash flows
    (sale proceeds − purchase cost − fees; slippage is in the fill prices). Funding is not
    attributed to trips. A fill that flips the sign is split pro rata into a close and an
    open. A position still open at the end is not a closed trip and is left out.
    """
    require_columns(fills, ("symbol", "open_time", "side", "qty", "price", "fee"), "fills")
    rows: list[tuple] = []
    for (symbol,), part in fills.sort("symbol", "open_time").group_by(
        "symbol", maintain_order=True
    ):
        pos, pnl, entry, peak = 0.0, 0.0, None, 0.0
        for t, side, qty, price, fee in part.select(
            "open_time", "side", "qty", "price", "fee"
        ).iter_rows():
            signed = qty if side == "BUY" else -qty
            closing = 0.0 if pos == 0 or pos * signed > 0 else min(qty, abs(pos)) / qty
            if closing:  # the part of the fill that reduces (or closes) the position
                pnl += closing * (-signed * price - fee)
                pos += closing * signed
                if abs(pos) <= _TOLERANCE * peak:
                    rows.append((symbol, entry, t, 1 if signed < 0 else -1, pnl))
                    pos, pnl, entry, peak = 0.0, 0.0, None, 0.0
            rest = 1.0 - closing
            if rest > 0:  # the part that opens or adds
                entry = entry if pos else t
                pnl += rest * (-signed * price - fee)
                pos += rest * signed
                peak = max(peak, abs(pos))
    schema = {
        "symbol": pl.String,
        "entry_time": fills.schema["open_time"],
        "exit_time": fills.schema["open_time"],
        "direction": pl.Int8,
        "pnl": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def symbol_contribution(
    fills: pl.DataFrame, positions: pl.DataFrame, funding: pl.DataFrame
) -> pl.DataFrame:
    """Per symbol: trading P&L (the last value + cash flows of its fills, fees excluded),
    fees, slippage and funding, and net = trading − fees + funding (slippage is already in the
    fill prices, so it is shown but not subtracted again). The nets sum to the P&L of the book.
    """
    flows = fills.group_by("symbol").agg(
        (-_SIGNED_QTY * pl.col("price")).sum().alias("cash"),
        pl.col("fee").sum().alias("fees"),
        pl.col("slippage_cost").sum().alias("slippage"),
    )
    last = positions.sort("open_time").group_by("symbol").agg(pl.col("value").last())
    paid = funding.group_by("symbol").agg(pl.col("payment").sum().alias("funding"))
    symbols = pl.concat([f.select("symbol") for f in (flows, last, paid)]).unique()
    out = (
        symbols.join(flows, on="symbol", how="left")
        .join(last, on="symbol", how="left")
        .join(paid, on="symbol", how="left")
        .fill_null(0.0)
        .with_columns((pl.col("value") + pl.col("cash")).alias("trading"))
    )
    return out.select(
        "symbol",
        "trading",
        "fees",
        "slippage",
        "funding",
        (pl.col("trading") - pl.col("fees") + pl.col("funding")).alias("net"),
    ).sort("net", descending=True)


def benchmark_equity(benchmark: pl.DataFrame, times: pl.Series, init_cash: float) -> pl.DataFrame:
    """Buy and hold of the universe, equal weight at the first time, never rebalanced.

    `benchmark` is either per symbol (symbol, open_time, close) or already an equity
    (open_time, equity). Per symbol, `init_cash`/n buys each symbol at its first close at or
    after the first of `times`; a missing bar keeps the symbol's last close. Returns
    open_time, equity on `times`.
    """
    grid = pl.DataFrame({"open_time": times}).sort("open_time")
    if "equity" in benchmark.columns:
        curve = benchmark.select("open_time", "equity").sort("open_time")
        return grid.join_asof(curve, on="open_time").with_columns(
            pl.col("equity") * init_cash / pl.col("equity").drop_nulls().first()
        )
    require_columns(benchmark, ("symbol", "open_time", "close"), "benchmark")
    start = grid["open_time"].min()
    inside = benchmark.filter(pl.col("open_time") >= start).sort("symbol", "open_time")
    n = inside["symbol"].n_unique()
    if n == 0:
        raise ValueError(
            "the benchmark has no bar in the backtest's span; pass its universe's bars"
        )
    wide = inside.pivot(on="symbol", index="open_time", values="close").sort("open_time")
    wide = grid.join(wide, on="open_time", how="left").fill_null(strategy="forward")
    symbols = [c for c in wide.columns if c != "open_time"]
    growth = [pl.col(s) / pl.col(s).drop_nulls().first() for s in symbols]
    # A symbol not yet traded at the first time holds its share in cash until its first bar.
    held = [g.fill_null(1.0) for g in growth]
    return wide.select("open_time", (pl.sum_horizontal(held) * init_cash / n).alias("equity"))
