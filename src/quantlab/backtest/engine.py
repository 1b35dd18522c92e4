"""Simulate directions on bars with vectorbt: the pure core of the backtest stage.

Inputs: `bars` (symbol, open_time, open, close) and `directions` (symbol, open_time,
direction in [-1, 1] decided at the close of bar open_time).
Output: a `BacktestResult` holding the equity curve, the target weights held, the fills and
summary statistics.

Execution model, chosen so the backtest cannot see the future:
- a direction decided at the close of a symbol's bar is traded at the open of that symbol's
  next bar, with `cfg.fees` and `cfg.slippage`;
- every symbol gets the same share of one shared cash pool (target weight = direction / n_symbols);
- an order is sent only when a symbol's target changes, so weights drift with prices between
  decisions instead of being rebalanced (and charged fees) every bar;
- a bar missing for one symbol (e.g. the 2023-03-24 halt) means no trade in that symbol then;
  its last close values the holding until its next bar, and the other symbols trade as usual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from quantlab.config import BacktestConfig
from quantlab.errors import SchemaError
from quantlab.metrics import drawdown, probabilistic_sharpe_ratio, sharpe_moments
from quantlab.portfolio.types import Side
from quantlab.schema import UTC_MS, require_columns
from quantlab.vocab import KEY, bars_per_year

_YEAR = pd.Timedelta(days=365)


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest produced; every frame is keyed by `open_time` (Datetime ms UTC).

    - equity: open_time, equity, returns, drawdown (portfolio level, valued at each bar's close)
    - targets: symbol, open_time, target_weight held during that bar
    - fills: one row per filled order: symbol, open_time, side (BUY | SELL), qty, price, fee
    - stats: plain floats, or None where undefined (no closed trade, no losing bar, ...)
    """

    equity: pl.DataFrame
    targets: pl.DataFrame
    fills: pl.DataFrame
    stats: dict[str, float | None]


def simulate(
    bars: pl.DataFrame,
    directions: pl.DataFrame,
    cfg: BacktestConfig,
    periods_per_year: int = bars_per_year("1h"),
) -> BacktestResult:
    """Simulate `directions` on `bars` in one cash-sharing vectorbt portfolio.

    A bar with no direction row counts as flat (0); pass only the bars of the period to judge,
    since flat bars dilute the stats. `periods_per_year` is the number of bars in a year
    (24*365 for hourly crypto) and sets the annualisation of the stats.
    """
    import vectorbt as vbt  # heavy (numba); imported only when a backtest runs

    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    long = _target_frame(_check_bars(bars), _check_directions(directions))
    symbols = sorted(long["symbol"].unique().to_list())
    grid = long.select("open_time").unique().sort("open_time")

    open_w = _to_wide(long, grid, "open", symbols)
    close_w = _to_wide(long, grid, "close", symbols)
    order_w = _to_wide(long, grid, "order", symbols)
    held_w = _to_wide(long, grid, "target", symbols)

    # Prices are carried forward only to value a holding across a missing bar; the order
    # size there stays NaN, which vectorbt treats as "no order".
    close_ff = close_w.select(pl.all().forward_fill())
    price = pl.DataFrame(
        {s: open_w[s].fill_null(close_ff[s]) for s in symbols},
        schema=dict.fromkeys(symbols, pl.Float64),
    )
    index = pd.DatetimeIndex(grid["open_time"].to_pandas(), name="open_time")
    bar_freq = _YEAR / periods_per_year

    pf = vbt.Portfolio.from_orders(
        close=_to_pandas(close_ff, index),
        size=_to_pandas(order_w, index),
        size_type="targetpercent",
        direction="both",
        price=_to_pandas(price, index),
        fees=cfg.fees,
        slippage=cfg.slippage,
        init_cash=cfg.init_cash,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        freq=bar_freq,
    )

    value = pf.value().to_numpy(dtype=np.float64)
    returns = pf.returns().to_numpy(dtype=np.float64)
    equity = grid.with_columns(
        pl.Series("equity", value),
        pl.Series("returns", returns),
        pl.Series("drawdown", drawdown(value)),
    )

    held = (
        pl.concat([grid, held_w.select(pl.all().forward_fill().fill_null(0.0))], how="horizontal")
        .unpivot(index="open_time", on=symbols, variable_name="symbol", value_name="target_weight")
        .select("symbol", "open_time", "target_weight")
        .sort(list(KEY))
    )
    fills = _fills_frame(pf.orders.values, symbols, grid["open_time"])
    in_market = (pf.assets().to_numpy() != 0).any(axis=1)
    stats = _compute_stats(pf, returns, value, in_market, len(fills), bar_freq, cfg.init_cash)
    return BacktestResult(equity=equity, targets=held, fills=fills, stats=stats)


def _check_bars(bars: pl.DataFrame) -> pl.DataFrame:
    require_columns(bars, ("symbol", "open_time", "open", "close"), "bars")
    out = bars.select(
        pl.col("symbol").cast(pl.String),
        pl.col("open_time").cast(UTC_MS),
        pl.col("open").cast(pl.Float64),
        pl.col("close").cast(pl.Float64),
    )
    if out.height == 0:
        raise SchemaError("bars is empty; pass at least one bar to backtest")
    bad = out.filter(
        pl.any_horizontal(pl.all().is_null())
        | ~(pl.col("open") > 0)
        | ~(pl.col("close") > 0)
        | pl.col("open").is_infinite()
        | pl.col("close").is_infinite()
    )
    if bad.height:
        raise SchemaError(
            f"bars has {bad.height} row(s) with a null key or a non-positive/NaN price, first: "
            f"{bad.row(0, named=True)}; run the data-quality gate on bars before backtesting"
        )
    dupes = out.filter(pl.struct(list(KEY)).is_duplicated())
    if dupes.height:
        raise SchemaError(
            f"bars has {dupes.height} rows sharing a (symbol, open_time), first: "
            f"{dupes.row(0, named=True)}; deduplicate bars before backtesting"
        )
    return out


def _check_directions(directions: pl.DataFrame) -> pl.DataFrame:
    require_columns(directions, ("symbol", "open_time", "direction"), "directions")
    out = directions.select(
        pl.col("symbol").cast(pl.String),
        pl.col("open_time").cast(UTC_MS),
        pl.col("direction").cast(pl.Float64),
    )
    bad = out.filter(
        pl.any_horizontal(pl.all().is_null())
        | ~pl.col("direction").is_between(-1.0, 1.0)  # also catches NaN
    )
    if bad.height:
        raise SchemaError(
            f"directions has {bad.height} row(s) with a null or a direction outside [-1, 1], first: "
            f"{bad.row(0, named=True)}; clip or drop them before backtesting"
        )
    dupes = out.filter(pl.struct(list(KEY)).is_duplicated())
    if dupes.height:
        raise SchemaError(
            f"directions has {dupes.height} rows sharing a (symbol, open_time), first: "
            f"{dupes.row(0, named=True)}; keep one decision per symbol and bar"
        )
    return out


def _target_frame(bars: pl.DataFrame, directions: pl.DataFrame) -> pl.DataFrame:
    """Per symbol and bar: the target weight in force (`target`) and the order to send (`order`)."""
    orphans = directions.join(bars, on=list(KEY), how="anti")
    if orphans.height:
        raise SchemaError(
            f"directions has {orphans.height} row(s) with no matching bar, first: "
            f"{orphans.row(0, named=True)}; a direction is decided at a bar's close, so pass bars "
            "covering every direction (and check both use ms UTC open_time)"
        )
    n_symbols = bars["symbol"].n_unique()
    weight = pl.col("direction").fill_null(0.0) / n_symbols
    # The decision at a bar's close is held from the symbol's next bar: shift by one row of
    # that symbol's own bars, so a missing bar delays it rather than moving it in time.
    # An order goes out only when the target moves (a null target, at a symbol's first bar,
    # compares as null and sends nothing).
    previous = pl.col("target").shift(1).over("symbol").fill_null(0.0)
    return (
        bars.join(directions, on=list(KEY), how="left")
        .sort(list(KEY))
        .with_columns(weight.shift(1).over("symbol").alias("target"))
        .with_columns(pl.when(pl.col("target") != previous).then("target").alias("order"))
    )


def _to_wide(
    long: pl.DataFrame, grid: pl.DataFrame, column: str, symbols: list[str]
) -> pl.DataFrame:
    """One column per symbol on the union of timestamps; null where a symbol has no bar."""
    wide = long.pivot(on="symbol", index="open_time", values=column)
    wide = grid.join(wide, on="open_time", how="left", maintain_order="left")
    return wide.select(
        [
            pl.col(s).cast(pl.Float64) if s in wide.columns else pl.lit(None, pl.Float64).alias(s)
            for s in symbols
        ]
    )


def _to_pandas(wide: pl.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame(wide.fill_null(np.nan).to_numpy(), index=index, columns=wide.columns)


def _fills_frame(records: np.ndarray, symbols: list[str], times: pl.Series) -> pl.DataFrame:
    sides = np.array([Side.BUY.value, Side.SELL.value])
    return pl.DataFrame(
        {
            "symbol": [symbols[c] for c in records["col"]],
            "open_time": times.gather(records["idx"]),
            "side": sides[records["side"]] if len(records) else [],
            "qty": records["size"],
            "price": records["price"],
            "fee": records["fees"],
        },
        schema={
            "symbol": pl.String,
            "open_time": UTC_MS,
            "side": pl.String,
            "qty": pl.Float64,
            "price": pl.Float64,
            "fee": pl.Float64,
        },
    ).sort(["open_time", "symbol"], maintain_order=True)


def _compute_stats(
    pf,
    returns: np.ndarray,
    value: np.ndarray,
    in_market: np.ndarray,
    n_orders: int,
    bar_freq: pd.Timedelta,
    init_cash: float,
) -> dict[str, float | None]:
    rets = pd.Series(returns).vbt.returns(freq=bar_freq, year_freq=_YEAR)
    raw = {
        "total_return": value[-1] / init_cash - 1.0,
        "annual_return": rets.annualized(),
        "sharpe": rets.sharpe_ratio(),
        "sortino": rets.sortino_ratio(),
        "max_drawdown": rets.max_drawdown(),
        "trades": n_orders,
        "win_rate": pf.trades.closed.win_rate(),
        "exposure": in_market.mean(),
        "final_equity": value[-1],
        "fees_paid": pf.orders.fees.sum(),
        "bars": len(value),
        # P(true Sharpe > 0) from the per-bar returns, their skew and kurtosis (PSR, Bailey &
        # Lopez de Prado 2012). Not deflated: that needs the trials behind the signal rule.
        "psr": _psr(returns),
    }
    return {name: _plain(v) for name, v in raw.items()}


def _psr(returns: np.ndarray) -> float | None:
    m = sharpe_moments(returns)
    return None if m is None else probabilistic_sharpe_ratio(m.sharpe, m.n, 0.0, m.skew, m.kurtosis)


def _plain(value: object) -> float | None:
    """A JSON-safe float: NaN and ±inf (e.g. Sortino with no losing bar) become None."""
    if value is None:  # undefined already (PSR of a flat series)
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None
