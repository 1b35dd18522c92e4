"""A backtest's statistics, with the trials behind its Sharpe: what the stage records and prints.

`summarize` reads a `BacktestResult` (the engine's contract: equity, positions, fills,
funding, rejections, kills, init_cash) over the out-of-fold span it was run on (or from
`start`), and returns a flat, JSON-safe dict: floats, ints, None where undefined, and a few
notes (strings). Every score comes from `quantlab.metrics` (one copy of each formula, checked
against vectorbt's returns accessor in the tests); PSR, DSR and MinTRL use the per-period
returns with RAW kurtosis, and N and V[SR] from every configuration tried (`TrialSet`).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from quantlab import metrics
from quantlab.backtest.attribution import benchmark_equity, round_trips
from quantlab.backtest.trials import TrialSet

if TYPE_CHECKING:
    from quantlab.backtest.engine import BacktestResult

MIN_TRL_ALPHA = 0.05  # MinTRL: the record needed for 95% confidence that the true Sharpe > 0
# The keys the backtest stage writes to its dataset's lineage (issue 15, Deliver 6).
LINEAGE_KEYS = (
    "sharpe",
    "sharpe_per_period",
    "n_periods",
    "skew",
    "kurtosis",
    "n_trials",
    "trials_sharpe_var",
    "psr",
    "dsr",
    "min_trl",
)


def summarize(
    result: BacktestResult,
    *,
    periods_per_year: int,
    benchmark: pl.DataFrame | None = None,
    trials: TrialSet | None = None,
    start: datetime | None = None,
) -> dict[str, Any]:
    """Every statistic of `result` on its span (from `start` when given), as a flat dict.

    Returns, volatility, Sharpe, Sortino and the benchmark's are on the bars' simple returns;
    annualised with `periods_per_year` (`quantlab.vocab.bars_per_year`). `benchmark`: the
    universe's bars (symbol, open_time, close) or an equity (open_time, equity), held equal
    weight from the first bar and never rebalanced. `trials`: every configuration tried
    before this result was chosen; None or empty counts this backtest as the only one.
    """
    equity = _span(result.equity, start).sort("open_time")
    if equity.height == 0:
        raise ValueError("the backtest has no bar in the span; check `start` and the result")
    first = equity["open_time"][0]
    returns = equity["returns"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    r = returns[~np.isnan(returns)]
    times = equity["open_time"]
    out: dict[str, Any] = {
        "start": first.isoformat(),
        "end": times[-1].isoformat(),
        "periods_per_year": periods_per_year,
    }
    out.update(_returns_stats(r, periods_per_year, prefix=""))
    # The value before the first bar: the starting cash, or the close before `start`.
    base = result.init_cash if start is None else equity["equity"][0] / (1.0 + returns[0])
    out.update(_drawdown_duration(equity["equity"], times, base))
    out.update(_activity(result, equity, start, periods_per_year))
    out.update(_trades(result.fills, start))
    out.update(_costs(equity, _span(result.rejections, start), _span(result.kills, start)))
    if benchmark is not None:
        base = result.init_cash
        curve = benchmark_equity(benchmark, times, base)["equity"].to_numpy()
        bench_r = curve / np.concatenate([[base], curve[:-1]]) - 1.0
        out.update(_returns_stats(bench_r, periods_per_year, prefix="benchmark_", brief=True))
    out.update(deflation(r, trials if trials is not None else TrialSet(), periods_per_year))
    return out


def deflation(returns: np.ndarray, trials: TrialSet, periods_per_year: int) -> dict[str, Any]:
    """The lineage keys: per-period Sharpe and its moments, PSR(0), DSR against the best of
    the N trials, MinTRL in bars and days, and notes saying how N and the DSR were taken."""
    moments = metrics.sharpe_moments(returns)
    n_trials = max(trials.n_trials, 1)
    var = trials.sharpe_var
    out: dict[str, Any] = dict.fromkeys(LINEAGE_KEYS)
    out.update(n_trials=n_trials, trials_sharpe_var=var, trials_note=trials.describe())
    out["n_periods"] = len(returns)
    if moments is None:
        out["dsr_note"] = "no Sharpe: fewer than 2 returns or a flat book"
        return out
    sr = moments.sharpe
    psr = metrics.probabilistic_sharpe_ratio(sr, moments.n, 0.0, moments.skew, moments.kurtosis)
    out.update(
        sharpe=sr * math.sqrt(periods_per_year),
        sharpe_per_period=sr,
        n_periods=moments.n,
        skew=moments.skew,
        kurtosis=moments.kurtosis,
        psr=psr,
    )
    if n_trials == 1:
        out["dsr"] = psr
        out["dsr_note"] = "N = 1: no other configuration was recorded, so DSR = PSR(0)"
    elif var is None:
        out["dsr_note"] = (
            f"N = {n_trials} but fewer than 2 of them have a Sharpe, so V[SR] and the DSR are "
            "unknown; record the trials' Sharpe ratios (train's trials.csv valid_sharpe)"
        )
    else:
        sr0 = metrics.expected_max_sharpe(n_trials, var)
        out["dsr"] = metrics.deflated_sharpe_ratio(
            sr, moments.n, n_trials, var, moments.skew, moments.kurtosis
        )
        out["dsr_benchmark_sharpe"] = sr0 * math.sqrt(periods_per_year)
        out["dsr_note"] = (
            f"DSR = PSR(SR0): SR0 = {sr0 * math.sqrt(periods_per_year):.3f} annualised, the "
            f"expected best Sharpe of {n_trials} unskilled trials with the trials' spread"
        )
    trl = metrics.min_track_record_length(sr, 0.0, moments.skew, moments.kurtosis, MIN_TRL_ALPHA)
    out["min_trl"] = trl
    out["min_trl_days"] = None if trl is None else trl * 365.0 / periods_per_year
    return out


def headline(stats: dict[str, Any]) -> str:
    """One line for a terminal: the Sharpe with the N, PSR and DSR that qualify it."""

    def pct(key: str) -> str:
        return "n/a" if stats.get(key) is None else f"{stats[key]:.1%}"

    sharpe = "n/a" if stats.get("sharpe") is None else f"{stats['sharpe']:.2f}"
    return (
        f"Sharpe {sharpe} (annualised, {stats.get('n_periods')} bars), N = {stats.get('n_trials')} "
        f"trials, PSR {pct('psr')}, DSR {pct('dsr')}"
    )


def _span(frame: pl.DataFrame, start: datetime | None) -> pl.DataFrame:
    time = "funding_time" if "funding_time" in frame.columns else "open_time"
    return frame if start is None else frame.filter(pl.col(time) >= start)


def _returns_stats(
    r: np.ndarray, periods_per_year: int, *, prefix: str, brief: bool = False
) -> dict[str, Any]:
    n = len(r)
    total = float(np.prod(1.0 + r) - 1.0) if n else None
    annual = None
    if total is not None and total > -1.0:
        annual = (1.0 + total) ** (periods_per_year / n) - 1.0
        annual = annual if math.isfinite(annual) else None
    mdd = metrics.max_drawdown(returns=r) if n else None
    stats = {
        "total_return": total,
        "annual_return": annual,
        "sharpe": metrics.sharpe(r, periods_per_year),
        "max_drawdown": mdd,
    }
    if not brief:
        vol = float(np.std(r, ddof=1) * math.sqrt(periods_per_year)) if n > 1 else None
        calmar = annual / abs(mdd) if annual is not None and mdd else None
        stats.update(
            volatility=vol,
            sortino=metrics.sortino(r, periods_per_year),
            calmar=calmar,
        )
    return {f"{prefix}{k}": v for k, v in stats.items()}


def _drawdown_duration(equity: pl.Series, times: pl.Series, base: float) -> dict[str, Any]:
    """The deepest drawdown's length, from its peak to its recovery (or the end if it never
    recovered), in bars and in days of clock time; `base` is the value before the first bar."""
    curve = np.concatenate([[base], equity.to_numpy().astype(np.float64)])
    stamps = times.to_list()
    stamps = [stamps[0], *stamps]  # the value before the first bar is dated at the first bar
    peak = np.fmax.accumulate(curve)
    trough = int(np.argmin(curve / peak))
    if curve[trough] >= peak[trough]:
        return {"max_drawdown_bars": 0, "max_drawdown_days": 0.0, "max_drawdown_recovered": True}
    top = int(np.flatnonzero(curve[: trough + 1] == peak[trough])[-1])
    after = np.flatnonzero(curve[trough:] >= peak[trough])
    end = trough + int(after[0]) if len(after) else len(curve) - 1
    return {
        "max_drawdown_bars": end - top,
        "max_drawdown_days": (stamps[end] - stamps[top]).total_seconds() / 86400.0,
        "max_drawdown_recovered": bool(len(after)),
    }


def _activity(
    result: BacktestResult, equity: pl.DataFrame, start: datetime | None, periods_per_year: int
) -> dict[str, Any]:
    """Turnover: traded notional over mean equity, annualised; exposure: the share of bars
    ending with any open position (from `positions`)."""
    fills = _span(result.fills, start)
    mean_equity = float(equity["equity"].mean())
    n = equity.height
    traded = float(fills["notional"].abs().sum()) if fills.height else 0.0
    held = (
        _span(result.positions, start)
        .filter(pl.col("qty") != 0)
        .select(pl.col("open_time").n_unique())
        .item()
    )
    return {
        "turnover": traded / mean_equity * periods_per_year / n if mean_equity > 0 else None,
        "traded_notional": traded,
        "exposure": held / n,
        "n_fills": fills.height,
    }


def _trades(fills: pl.DataFrame, start: datetime | None) -> dict[str, Any]:
    """Hit rate, profit factor and the average win and loss of CLOSED ROUND TRIPS: those
    closed in the span, built from every fill (a trip opened before `start` counts whole)."""
    trips = round_trips(fills)
    if start is not None:
        trips = trips.filter(pl.col("exit_time") >= start)
    pnl = trips["pnl"].to_numpy()
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    return {
        "n_round_trips": len(pnl),
        "hit_rate": float(len(wins) / len(pnl)) if len(pnl) else None,
        "hit_rate_basis": "closed round trips (flat to flat, per symbol), funding not attributed",
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
        "avg_win": float(wins.mean()) if len(wins) else None,
        "avg_loss": float(losses.mean()) if len(losses) else None,
    }


def _costs(equity: pl.DataFrame, rejections: pl.DataFrame, kills: pl.DataFrame) -> dict[str, Any]:
    """What the costs took (fees and slippage as positive costs; funding as received, so a
    negative total was paid), and how many orders were rejected and kill-switches tripped."""
    return {
        "gross_pnl": float(equity["gross_pnl"].sum()),
        "fees": float(equity["fees"].sum()),
        "slippage": float(equity["slippage"].sum()),
        "funding": float(equity["funding"].sum()),
        "n_rejections": rejections.height,
        "n_kills": kills.height,
    }
