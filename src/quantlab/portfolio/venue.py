"""Exchange filters (stepSize, tickSize, min/max qty, min notional) and the one rounding to them.

Used by the backtest engine (inside numba) and the paper bridge alike, so an order the backtest
fills is an order Binance would accept. Float error is guarded: 0.3 / 0.1 is 2.9999999999999996,
and a plain floor would trade 0.2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

from quantlab.errors import DataError, SchemaError
from quantlab.portfolio.types import RejectReason
from quantlab.schema import require_columns

# Relative slack when flooring/ceiling to a grid: far below any step, far above float error.
_EPS = 1e-9

_COLUMNS = ("tick_size", "step_size", "min_qty", "max_qty", "min_notional")


@dataclass(frozen=True)
class VenueRules:
    """Per-symbol filters, one array entry per symbol in `symbols` order (0 = no filter)."""

    symbols: tuple[str, ...]
    tick_size: np.ndarray
    step_size: np.ndarray
    min_qty: np.ndarray
    max_qty: np.ndarray
    min_notional: np.ndarray

    def index(self, symbol: str) -> int:
        return self.symbols.index(symbol)

    def subset(self, symbols: list[str] | tuple[str, ...]) -> VenueRules:
        """The rules of `symbols`, in that order; a missing symbol is an error."""
        missing = [s for s in symbols if s not in self.symbols]
        if missing:
            raise DataError(f"venue rules have no filters for {missing}")
        idx = [self.symbols.index(s) for s in symbols]
        return VenueRules(tuple(symbols), *(getattr(self, c)[idx] for c in _COLUMNS))


def venue_rules(exchange_info: pl.DataFrame, symbols: list[str], market: str) -> VenueRules:
    """The filters of `symbols` on `market` from the `exchange_info` dataset (latest snapshot).

    A null filter (a symbol without that filter) means no limit (0; max_qty: +inf).
    """
    require_columns(exchange_info, ("market", "symbol", *_COLUMNS), "exchange_info")
    rows = exchange_info.filter(pl.col("market") == market, pl.col("symbol").is_in(symbols))
    if "snapshot_time" in rows.columns:
        rows = rows.sort("snapshot_time").group_by("symbol").last()
    else:
        rows = rows.unique("symbol", keep="last", maintain_order=True)
    missing = sorted(set(symbols) - set(rows["symbol"].to_list()))
    if missing:
        raise DataError(
            f"exchange_info has no {market} filters for {missing}; list them under {market} in "
            "configs/markets.yaml (exchange_info: true) and run the market_data DAG's "
            "exchange_info task (quantlab.ingest.run_exchange_info) before backtesting"
        )
    by_symbol = {r["symbol"]: r for r in rows.iter_rows(named=True)}
    arrays = {}
    for col in _COLUMNS:
        values = [by_symbol[s][col] for s in symbols]
        default = math.inf if col == "max_qty" else 0.0
        arr = np.array([default if v is None else float(v) for v in values], dtype=np.float64)
        if (arr < 0).any() or np.isnan(arr).any():
            raise SchemaError(f"exchange_info {col} has a negative or NaN value for {symbols}")
        arrays[col] = arr
    return VenueRules(tuple(symbols), **arrays)


@numba.njit(cache=True)
def floor_to_step(qty: float, step: float) -> float:
    """`qty` (>= 0) floored to a multiple of `step`; a step of 0 leaves it as it is."""
    if step <= 0.0:
        return qty
    # The guard grows with qty / step: 9000 / 1e-5 carries float error far above 1e-9.
    x = qty / step
    return math.floor(x + _EPS + x * 1e-15) * step


@numba.njit(cache=True)
def round_price(price: float, tick: float, side: int) -> float:
    """`price` on the tick grid against the taker: a buy (side +1) rounds up, a sell down."""
    if tick <= 0.0:
        return price
    if side > 0:
        return math.ceil(price / tick - _EPS) * tick
    return math.floor(price / tick + _EPS) * tick


@numba.njit(cache=True)
def check_order(
    qty: float,
    price: float,
    step: float,
    min_qty: float,
    max_qty: float,
    min_notional: float,
    reduce_only: bool,
) -> int:
    """0 if the venue would accept `qty` (already floored) at `price`, else a RejectReason code.

    A reduce-only order (closing part of a position) is exempt from the min notional, as
    Binance's reduce-only / close-position orders are; min and max qty still apply.
    """
    if qty <= 0.0:
        return 1  # STEP_SIZE: the order rounds to nothing
    if qty < min_qty * (1.0 - _EPS):
        return 2  # MIN_QTY
    if qty > max_qty * (1.0 + _EPS):
        return 4  # MAX_QTY
    if not reduce_only and qty * price < min_notional * (1.0 - _EPS):
        return 3  # MIN_NOTIONAL
    return 0


def check_order_for(
    rules: VenueRules, symbol: str, qty: float, price: float, reduce_only: bool = False
) -> RejectReason | None:
    """`check_order` for one symbol of `rules`: None when accepted (the paper bridge's helper)."""
    i = rules.index(symbol)
    code = check_order(
        float(qty),
        float(price),
        float(rules.step_size[i]),
        float(rules.min_qty[i]),
        float(rules.max_qty[i]),
        float(rules.min_notional[i]),
        reduce_only,
    )
    return None if code == 0 else RejectReason(code)
