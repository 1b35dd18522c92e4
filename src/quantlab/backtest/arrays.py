"""Bars, targets, rules, costs and funding as the engine's arrays, after checking them.

`prepare_inputs` is shared by `simulate` (one target path) and the sweep (K paths on the same
bars): the bars-side arrays are built once. `target_grid` shifts each decision to the symbol's
next bar: decided at the close of bar t, filled at the open of t+1, strictly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from quantlab.config import BacktestConfig
from quantlab.errors import SchemaError
from quantlab.portfolio import engine_nb as nb
from quantlab.portfolio.costs import CostModel, impact_inputs
from quantlab.portfolio.funding import funding_events
from quantlab.portfolio.venue import VenueRules
from quantlab.schema import UTC_MS, require_columns
from quantlab.vocab import KEY

DAY_MS = 86_400_000


@dataclass(frozen=True)
class KillSettings:
    """The path kill-switch: drawdown from the peak and loss since the UTC day began (fractions;
    None disables one), then `kill_cooldown_bars` bars flat."""

    kill_drawdown: float | None
    kill_daily_loss: float | None
    kill_cooldown_bars: int

    def __post_init__(self) -> None:
        if self.kill_cooldown_bars < 1:
            raise ValueError(f"kill_cooldown_bars must be >= 1, got {self.kill_cooldown_bars}")
        for name in ("kill_drawdown", "kill_daily_loss"):
            v = getattr(self, name)
            if v is not None and not 0 < v <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {v}")


@dataclass(frozen=True)
class EngineInputs:
    """The bars-side arrays of one backtest, [T bars x S symbols]."""

    symbols: tuple[str, ...]
    times: pl.Series  # the grid's open_time, Datetime ms UTC
    keys: pl.DataFrame  # the checked bars' (symbol, open_time), sorted: where targets may be
    open: np.ndarray
    close_ff: np.ndarray
    has_bar: np.ndarray
    prev_qv: np.ndarray
    sigma: np.ndarray
    day_id: np.ndarray
    sym: np.ndarray
    par: np.ndarray
    ev: np.ndarray
    events: pl.DataFrame  # the funding events behind `ev` (row for row)
    impact_volume: str  # "quote_volume" or "base_volume_x_close"
    init_cash: float


def check_bars(bars: pl.DataFrame) -> pl.DataFrame:
    require_columns(bars, ("symbol", "open_time", "open", "close", "volume"), "bars")
    qv = pl.col("quote_volume") if "quote_volume" in bars.columns else pl.lit(None)
    out = bars.select(
        pl.col("symbol").cast(pl.String),
        pl.col("open_time").cast(UTC_MS),
        pl.col("open").cast(pl.Float64),
        pl.col("close").cast(pl.Float64),
        pl.col("volume").cast(pl.Float64),
        qv.cast(pl.Float64).alias("quote_volume"),
    )
    if out.height == 0:
        raise SchemaError("bars is empty; pass at least one bar to backtest")
    price_ok = [(pl.col(c) > 0) & pl.col(c).is_finite() for c in ("open", "close")]
    bad = out.filter(
        pl.any_horizontal(pl.col("symbol", "open_time", "open", "close").is_null())
        | ~price_ok[0]
        | ~price_ok[1]
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
    return out.sort(list(KEY))


def check_targets(targets: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """Targets as (symbol, open_time, target_weight); a null weight is no decision."""
    require_columns(targets, ("symbol", "open_time", "target_weight"), "targets")
    out = targets.select(
        pl.col("symbol").cast(pl.String),
        pl.col("open_time").cast(UTC_MS),
        pl.col("target_weight").cast(pl.Float64),
    )
    bad = out.filter(
        pl.col("symbol").is_null()
        | pl.col("open_time").is_null()
        | ~pl.col("target_weight").is_finite()  # NaN and inf; null stays null
    )
    if bad.height:
        raise SchemaError(
            f"targets has {bad.height} row(s) with a null key or a NaN/infinite weight, first: "
            f"{bad.row(0, named=True)}; use null for 'no decision' and finite weights otherwise"
        )
    dupes = out.filter(pl.struct(list(KEY)).is_duplicated())
    if dupes.height:
        raise SchemaError(
            f"targets has {dupes.height} rows sharing a (symbol, open_time), first: "
            f"{dupes.row(0, named=True)}; keep one decision per symbol and bar"
        )
    orphans = out.join(bars, on=list(KEY), how="anti")
    if orphans.height:
        raise SchemaError(
            f"targets has {orphans.height} row(s) with no matching bar, first: "
            f"{orphans.row(0, named=True)}; a target is decided at a bar's close, so pass bars "
            "covering every target (and check both use ms UTC open_time)"
        )
    return out


def _wide(long: pl.DataFrame, grid: pl.DataFrame, column: str, symbols: list[str]) -> np.ndarray:
    wide = long.pivot(on="symbol", index="open_time", values=column)
    wide = grid.join(wide, on="open_time", how="left", maintain_order="left")
    cols = [
        wide[s].cast(pl.Float64).fill_null(np.nan).to_numpy() if s in wide.columns
        else np.full(grid.height, np.nan)
        for s in symbols
    ]  # fmt: skip
    return np.ascontiguousarray(np.column_stack(cols)) if cols else np.empty((grid.height, 0))


def prepare_inputs(
    bars: pl.DataFrame,
    cfg: BacktestConfig,
    rules: VenueRules,
    *,
    market: str,
    funding_rates: pl.DataFrame | None = None,
    mark_klines: pl.DataFrame | None = None,
    kill: KillSettings | None = None,
    allow_short: bool | None = None,
) -> EngineInputs:
    """Check `bars` and build every array the engine needs except the targets."""
    bars = check_bars(bars)
    symbols = sorted(bars["symbol"].unique().to_list())
    rules = rules.subset(symbols)
    costs = CostModel.from_config(cfg, market, symbols)
    if funding_rates is not None and market != "futures_um":
        raise SchemaError(f"funding_rates passed for market {market!r}; only futures_um pays it")
    grid = bars.select("open_time").unique().sort("open_time")
    open_ = _wide(bars, grid, "open", symbols)
    close = _wide(bars, grid, "close", symbols)
    has_bar = ~np.isnan(open_)
    qv_missing = bars["quote_volume"].null_count() > 0
    bars_qv = bars.with_columns(
        pl.coalesce("quote_volume", pl.col("volume") * pl.col("close")).alias("qv")
    )
    qv = _wide(bars_qv, grid, "qv", symbols)
    prev_qv, sigma = impact_inputs(open_, close, qv, has_bar, costs.ewma_lambda)
    close_ff = _forward_fill(close)
    ms = grid["open_time"].dt.epoch("ms").to_numpy()
    shorts = (market == "futures_um") if allow_short is None else allow_short
    sym = np.column_stack([
        rules.step_size, rules.tick_size, rules.min_qty, rules.max_qty, rules.min_notional,
        np.full(len(symbols), costs.taker), costs.half_spread, costs.impact_coef,
        np.full(len(symbols), 1.0 if shorts else 0.0),
    ]).astype(np.float64) if symbols else np.empty((0, nb.N_SYM))  # fmt: skip
    spot = market == "spot"
    par = np.zeros(nb.N_PAR)
    par[nb.PAR_INIT_CASH] = cfg.init_cash
    par[nb.PAR_MAX_LEVERAGE] = 1.0 if spot else cfg.max_leverage
    par[nb.PAR_CASH_ACCOUNT] = 1.0 if spot else 0.0
    par[nb.PAR_BAND] = cfg.rebalance_band
    if kill is not None:
        par[nb.PAR_KILL_ON] = 1.0
        par[nb.PAR_KILL_DD] = math.inf if kill.kill_drawdown is None else kill.kill_drawdown
        par[nb.PAR_KILL_DAILY] = math.inf if kill.kill_daily_loss is None else kill.kill_daily_loss
        par[nb.PAR_KILL_COOLDOWN] = kill.kill_cooldown_bars
    events = _events(funding_rates, mark_klines, bars, ms, symbols)
    ev = np.column_stack([
        events["t"].to_numpy().astype(np.float64),
        events["sym"].to_numpy().astype(np.float64),
        events["at_open"].to_numpy().astype(np.float64),
        events["rate"].to_numpy(),
        events["price"].to_numpy(),
    ]).astype(np.float64) if events.height else np.empty((0, nb.N_EV))  # fmt: skip
    return EngineInputs(
        symbols=tuple(symbols),
        times=grid["open_time"],
        keys=bars.select(KEY).sort(list(KEY)),
        open=open_,
        close_ff=close_ff,
        has_bar=has_bar,
        prev_qv=prev_qv,
        sigma=sigma,
        day_id=(ms // DAY_MS).astype(np.int64),
        sym=np.ascontiguousarray(sym),
        par=par,
        ev=np.ascontiguousarray(ev),
        events=events,
        impact_volume="base_volume_x_close" if qv_missing else "quote_volume",
        init_cash=cfg.init_cash,
    )


def _forward_fill(a: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last non-NaN above it in its column (NaN before the first)."""
    rows = np.where(~np.isnan(a), np.arange(a.shape[0])[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    out = a[rows, np.arange(a.shape[1])[None, :]]
    return np.ascontiguousarray(out, dtype=np.float64)


def _events(funding_rates, mark_klines, bars, ms, symbols) -> pl.DataFrame:
    if funding_rates is None:
        return pl.DataFrame(
            schema={"symbol": pl.String, "sym": pl.Int64, "funding_time": UTC_MS,
                    "rate": pl.Float64, "price": pl.Float64, "price_source": pl.String,
                    "t": pl.Int64, "at_open": pl.Boolean}
        )  # fmt: skip
    return funding_events(funding_rates, ms, symbols, mark_klines=mark_klines, bar_prices=bars)


def target_grid(targets: pl.DataFrame, inputs: EngineInputs) -> np.ndarray:
    """[T, S] weights to hold from each bar's open (NaN: no new decision), on the bars
    `inputs` were prepared from (checked once there, not again per target path).

    A decision at a symbol's bar moves to that symbol's next bar (a missing bar delays it; a
    decision at the symbol's last bar is never filled).
    """
    t = check_targets(targets, inputs.keys)
    shifted = (
        inputs.keys.join(t, on=list(KEY), how="left")
        .sort(list(KEY))
        .with_columns(pl.col("target_weight").shift(1).over("symbol"))
    )
    grid = pl.DataFrame({"open_time": inputs.times})
    return _wide(shifted, grid, "target_weight", list(inputs.symbols))
