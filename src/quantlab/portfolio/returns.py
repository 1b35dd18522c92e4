"""A signal's bar returns after costs, without the full backtest: what a tuning trial is judged by.

Each Optuna trial records the Sharpe of its signal on its validation slice, so the backtest
can deflate its reported Sharpe by the number of trials and their spread (Bailey & López de
Prado). vectorbt per trial would cost more than the fit; this close-to-close book is the
backtest's rule (signal → direction → equal share per symbol) on the label's 1-bar returns.
"""

from __future__ import annotations

import polars as pl

from quantlab.config import SignalConfig
from quantlab.metrics import sharpe
from quantlab.portfolio.signals import directions_from_scores, smooth_scores
from quantlab.schema import require_columns
from quantlab.vocab import KEY


def signal_returns(
    rows: pl.DataFrame, signal: SignalConfig, cost: float, return_col: str = "fwd_ret_1"
) -> pl.DataFrame:
    """Per-bar book returns (open_time, returns) of trading `score` by the signal rule.

    `rows` hold KEY, `score` and `return_col`, the log return from a bar's close to the next
    bar's close (the labels' fwd_ret_1). A direction decided at a bar's close is held for the
    next bar; each symbol gets 1/n of the book (n: the symbols in `rows`), as in the backtest;
    every unit of weight traded pays `cost` (fees + slippage). A null return (the newest bar)
    earns nothing.
    """
    require_columns(rows, (*KEY, "score", return_col), "rows")
    scores = smooth_scores(rows.select(*KEY, "score"), signal)
    n = max(rows["symbol"].n_unique(), 1)
    weight = pl.col("direction").cast(pl.Float64) / n
    held = (
        directions_from_scores(scores, signal)
        .join(rows.select(*KEY, pl.col(return_col).cast(pl.Float64)), on=list(KEY), how="left")
        .sort(*KEY)
        .with_columns(
            weight.alias("w"),
            (weight - weight.shift(1).over("symbol").fill_null(0.0)).abs().alias("turnover"),
        )
    )
    pnl = pl.col("w") * (pl.col(return_col).exp() - 1).fill_null(0.0).fill_nan(0.0)
    return (
        held.group_by("open_time")
        .agg((pnl - cost * pl.col("turnover")).sum().alias("returns"))
        .sort("open_time")
    )


def signal_sharpe(
    rows: pl.DataFrame,
    signal: SignalConfig,
    cost: float,
    periods_per_year: int,
    return_col: str = "fwd_ret_1",
) -> float | None:
    """The annualised Sharpe of `signal_returns`; None where it is undefined (a flat book)."""
    return sharpe(signal_returns(rows, signal, cost, return_col)["returns"], periods_per_year)
