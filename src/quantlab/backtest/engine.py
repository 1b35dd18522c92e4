"""Simulate target weights on bars: the pure core of the backtest stage.

Inputs: `bars` (symbol, open_time, open, close, volume, quote_volume (nullable), ...) and
`targets` (symbol, open_time, target_weight decided at the close of open_time). Output: a
`BacktestResult` with the equity curve and its cost columns, positions, fills, funding
payments, rejected orders and kill-switch trips.

Execution model (`quantlab.portfolio.engine_nb` has the per-bar order of events):
- a target decided at a symbol's bar close is traded at the open of that symbol's next bar;
  a missing bar (e.g. the 2023-03-24 halt) delays it, and its last close values the holding;
- qty = target * equity at the open / open, floored to stepSize; market orders pay the taker
  fee and slippage (half spread + impact), at a price rounded to tickSize against the taker;
- orders the venue would refuse are rejected with a reason, never silently dropped;
- USD-M positions pay funding at the real funding times (`quantlab.portfolio.funding`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from quantlab.backtest.arrays import (
    EngineInputs,
    KillSettings,
    prepare_inputs,
    target_grid,
)
from quantlab.config import BacktestConfig
from quantlab.metrics import drawdown
from quantlab.portfolio import engine_nb as nb
from quantlab.portfolio.types import RejectReason, Side
from quantlab.portfolio.venue import VenueRules
from quantlab.schema import UTC_MS

__all__ = ["BacktestResult", "EngineInputs", "KillSettings", "prepare_inputs", "simulate"]

KILL_REASONS = {1: "drawdown", 2: "daily_loss"}


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest produced; frames keyed by ms-UTC `open_time` (see the shared contract).

    equity[t] - equity[t-1] == gross_pnl - fees - slippage + funding, per bar close.
    """

    equity: pl.DataFrame
    positions: pl.DataFrame
    fills: pl.DataFrame
    funding: pl.DataFrame
    rejections: pl.DataFrame
    kills: pl.DataFrame
    init_cash: float
    stats: dict[str, Any]


def simulate(
    bars: pl.DataFrame,
    targets: pl.DataFrame,
    cfg: BacktestConfig,
    rules: VenueRules,
    *,
    market: str,
    periods_per_year: int,
    funding_rates: pl.DataFrame | None = None,
    mark_klines: pl.DataFrame | None = None,
    kill: KillSettings | None = None,
    allow_short: bool | None = None,
) -> BacktestResult:
    """Trade `targets` on `bars` with `cfg`'s costs and `rules`' filters in one cash pool.

    `allow_short`: None shorts on futures_um only. `periods_per_year` is kept for the stats
    computed downstream; nothing here annualises.
    """
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    inputs = prepare_inputs(
        bars, cfg, rules, market=market, funding_rates=funding_rates,
        mark_klines=mark_klines, kill=kill, allow_short=allow_short,
    )  # fmt: skip
    tgt = target_grid(targets, inputs)
    return run_inputs(inputs, tgt)


def run_inputs(inputs: EngineInputs, tgt: np.ndarray) -> BacktestResult:
    """One path through the numba core, with every record, as frames."""
    n_bars, n_sym = inputs.open.shape
    cells = n_bars * n_sym
    bar_out = np.zeros((n_bars, nb.N_BAR))
    pos_out = np.zeros((n_bars, n_sym))
    fills = np.zeros((cells, nb.N_FILL))
    rej = np.zeros((cells, nb.N_REJ))
    fund = np.zeros((inputs.ev.shape[0], nb.N_FUND))
    kills = np.zeros((n_bars, nb.N_KILL))
    counts = np.zeros(nb.N_COUNTS, dtype=np.int64)
    nb.simulate_path(
        inputs.open, inputs.close_ff, inputs.has_bar, np.ascontiguousarray(tgt), inputs.prev_qv,
        inputs.sigma, inputs.day_id, inputs.sym, inputs.par, inputs.ev,
        bar_out, pos_out, fills, rej, fund, kills, counts, True,
    )  # fmt: skip
    symbols = list(inputs.symbols)
    times = inputs.times
    equity = _equity_frame(bar_out, times, inputs.init_cash)
    fills_df = _fills_frame(fills[: counts[nb.C_FILLS]], symbols, times)
    rej_df = _rejections_frame(rej[: counts[nb.C_REJ]], symbols, times)
    fund_df = _funding_frame(fund[: counts[nb.C_FUND]], inputs.events)
    kills_df = _kills_frame(kills[: counts[nb.C_KILLS]], times)
    positions = _positions_frame(
        pos_out, inputs.close_ff, bar_out[:, nb.BAR_EQUITY], symbols, times
    )
    final = float(bar_out[-1, nb.BAR_EQUITY])
    stats: dict[str, Any] = {
        "final_equity": final,
        "total_return": final / inputs.init_cash - 1.0,
        "fills": int(counts[nb.C_FILLS]),
        "rejections": {r.label: int((rej_df["reason"] == r.label).sum()) for r in RejectReason},
        "orders_cut_to_margin": int(counts[nb.C_CLIPPED]),
        "kills": int(counts[nb.C_KILLS]),
        "funding_total": float(bar_out[:, nb.BAR_FUNDING].sum()),
        "funding_price_bar": int((fund_df["price_source"] == "bar").sum()),
        "fees_total": float(bar_out[:, nb.BAR_FEES].sum()),
        "slippage_total": float(bar_out[:, nb.BAR_SLIPPAGE].sum()),
        "impact_volume": inputs.impact_volume,
    }
    return BacktestResult(
        equity=equity, positions=positions, fills=fills_df, funding=fund_df,
        rejections=rej_df, kills=kills_df, init_cash=inputs.init_cash, stats=stats,
    )  # fmt: skip


def _equity_frame(bar_out: np.ndarray, times: pl.Series, init_cash: float) -> pl.DataFrame:
    eq = bar_out[:, nb.BAR_EQUITY]
    prev = np.concatenate([[init_cash], eq[:-1]])
    return pl.DataFrame(
        {
            "open_time": times,
            "equity": eq,
            "cash": bar_out[:, nb.BAR_CASH],
            "gross_exposure": bar_out[:, nb.BAR_GROSS],
            "net_exposure": bar_out[:, nb.BAR_NET],
            "returns": eq / prev - 1.0,
            "gross_pnl": bar_out[:, nb.BAR_GROSS_PNL],
            "fees": bar_out[:, nb.BAR_FEES],
            "slippage": bar_out[:, nb.BAR_SLIPPAGE],
            "funding": bar_out[:, nb.BAR_FUNDING],
            "drawdown": drawdown(np.concatenate([[init_cash], eq]))[1:],
        }
    )


def _sides(codes: np.ndarray) -> list[str]:
    return [Side.BUY.value if c > 0 else Side.SELL.value for c in codes]


def _fills_frame(rec: np.ndarray, symbols: list[str], times: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbols[int(i)] for i in rec[:, 1]],
            "open_time": times.gather(rec[:, 0].astype(np.int64)),
            "side": _sides(rec[:, 2]),
            "qty": rec[:, 3],
            "price": rec[:, 4],
            "fee": rec[:, 5],
            "slippage_cost": rec[:, 6],
            "notional": rec[:, 7],
        },
        schema={"symbol": pl.String, "open_time": UTC_MS, "side": pl.String, "qty": pl.Float64,
                "price": pl.Float64, "fee": pl.Float64, "slippage_cost": pl.Float64,
                "notional": pl.Float64},
    )  # fmt: skip


def _detail(code: int, qty: float, price: float, aux: float) -> str:
    reason = RejectReason(code)
    if reason is RejectReason.STEP_SIZE:
        return f"qty {qty:.10g} floors to 0 at stepSize {aux:.10g}"
    if reason is RejectReason.MIN_QTY:
        return f"qty {qty:.10g} < minQty {aux:.10g}"
    if reason is RejectReason.MAX_QTY:
        return f"qty {qty:.10g} > maxQty {aux:.10g}"
    if reason is RejectReason.MIN_NOTIONAL:
        return f"notional {qty * price:.10g} < min notional {aux:.10g}"
    if reason is RejectReason.MARGIN:
        return f"qty {qty:.10g} exceeds the {max(aux, 0.0):.10g} that cash/max_leverage allow"
    return f"target weight {aux:.6g} < 0 on a long-only symbol"


def _rejections_frame(rec: np.ndarray, symbols: list[str], times: pl.Series) -> pl.DataFrame:
    codes = rec[:, 5].astype(np.int64)
    return pl.DataFrame(
        {
            "symbol": [symbols[int(i)] for i in rec[:, 1]],
            "open_time": times.gather(rec[:, 0].astype(np.int64)),
            "side": _sides(rec[:, 2]),
            "qty": rec[:, 3],
            "price": rec[:, 4],
            "notional": rec[:, 3] * rec[:, 4],
            "reason": [RejectReason(int(c)).label for c in codes],
            "detail": [_detail(int(c), q, p, a) for c, q, p, a in
                       zip(codes, rec[:, 3], rec[:, 4], rec[:, 6], strict=True)],
        },
        schema={"symbol": pl.String, "open_time": UTC_MS, "side": pl.String, "qty": pl.Float64,
                "price": pl.Float64, "notional": pl.Float64, "reason": pl.String,
                "detail": pl.String},
    )  # fmt: skip


def _funding_frame(rec: np.ndarray, events: pl.DataFrame) -> pl.DataFrame:
    rows = events[rec[:, 0].astype(np.int64)] if len(rec) else events.clear()
    return rows.select(
        "symbol",
        "funding_time",
        pl.Series("qty", rec[:, 1], dtype=pl.Float64),
        pl.col("price").alias("mark_price"),
        "rate",
        pl.Series("payment", rec[:, 2], dtype=pl.Float64),
        "price_source",
    )


def _kills_frame(rec: np.ndarray, times: pl.Series) -> pl.DataFrame:
    n = times.len()
    resume = [times[int(r)] if r < n else None for r in rec[:, 3]]
    return pl.DataFrame(
        {
            "open_time": times.gather(rec[:, 0].astype(np.int64)),
            "reason": [KILL_REASONS[int(c)] for c in rec[:, 1]],
            "equity": rec[:, 2],
            "resume_time": resume,
        },
        schema={"open_time": UTC_MS, "reason": pl.String, "equity": pl.Float64,
                "resume_time": UTC_MS},
    )  # fmt: skip


def _positions_frame(pos, close_ff, equity, symbols, times) -> pl.DataFrame:
    n_bars, n_sym = pos.shape
    close = np.nan_to_num(close_ff, nan=0.0)
    value = pos * close
    return pl.DataFrame(
        {
            "symbol": np.repeat(np.array(symbols, dtype=object), n_bars).tolist(),
            "open_time": pl.concat([times] * n_sym) if n_sym else times.clear(),
            "qty": pos.T.ravel(),
            "close": close_ff.T.ravel(),
            "value": value.T.ravel(),
            "weight": (value / equity[:, None]).T.ravel(),
        },
        schema={"symbol": pl.String, "open_time": UTC_MS, "qty": pl.Float64,
                "close": pl.Float64, "value": pl.Float64, "weight": pl.Float64},
    )  # fmt: skip
