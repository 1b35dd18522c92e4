"""Equity is initial cash plus every fill's cash flow, fee and funding payment, marked at closes.

Recomputed here with a plain Python loop over the result's own fills and funding rows, on the
real shipped spot data and on real USD-M perps with funding.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine_data import PATTERN, pattern_targets
from quantlab.backtest.engine import simulate
from quantlab.config import BacktestConfig

REL = 1e-9


def recompute_equity(result, bars: pl.DataFrame) -> list[float]:
    """Per bar close: init cash + fill cash flows - fees + funding, positions at last closes."""
    flows: dict = {}
    for f in result.fills.iter_rows(named=True):
        sign = 1.0 if f["side"] == "BUY" else -1.0
        flows.setdefault(f["open_time"], []).append(
            (f["symbol"], sign * f["qty"], -sign * f["qty"] * f["price"] - f["fee"])
        )
    times = result.equity["open_time"].to_list()
    funding: dict = {}
    for p in result.funding.iter_rows(named=True):
        bar = max(t for t in times if t <= p["funding_time"])
        funding[bar] = funding.get(bar, 0.0) + p["payment"]
    close = {(r["symbol"], r["open_time"]): r["close"] for r in bars.iter_rows(named=True)}
    cash, pos, last = result.init_cash, {}, {}
    out = []
    for t in times:
        for symbol, dq, dcash in flows.get(t, []):
            pos[symbol] = pos.get(symbol, 0.0) + dq
            cash += dcash
        cash += funding.get(t, 0.0)
        for symbol in {s for s, _ in close}:
            if (symbol, t) in close:
                last[symbol] = close[(symbol, t)]
        out.append(cash + sum(q * last[s] for s, q in pos.items() if q != 0.0))
    return out


def check_books(result, bars):
    eq = result.equity
    np.testing.assert_allclose(eq["equity"], recompute_equity(result, bars), rtol=REL)
    prev = np.concatenate([[result.init_cash], eq["equity"].to_numpy()[:-1]])
    change = eq["gross_pnl"] - eq["fees"] - eq["slippage"] + eq["funding"]
    np.testing.assert_allclose(eq["equity"] - prev, change, rtol=0, atol=1e-9 * result.init_cash)
    assert eq["fees"].sum() == pytest.approx(result.fills["fee"].sum(), rel=REL)
    assert eq["slippage"].sum() == pytest.approx(result.fills["slippage_cost"].sum(), rel=REL)
    assert eq["funding"].sum() == pytest.approx(result.funding["payment"].sum(), rel=REL, abs=1e-12)
    last = result.positions.filter(pl.col("open_time") == eq["open_time"][-1])
    assert eq["net_exposure"][-1] == pytest.approx(last["value"].sum(), rel=REL, abs=1e-9)


def test_spot_equity_is_recomputed_from_fills_on_real_data(march_bars, spot_rules):
    result = simulate(
        march_bars, pattern_targets(march_bars, PATTERN), BacktestConfig(init_cash=10_000.0),
        spot_rules, market="spot", periods_per_year=8760,
    )  # fmt: skip
    assert result.fills.height > 100
    check_books(result, march_bars)


def test_usdm_equity_is_recomputed_from_fills_and_funding(
    perp_bars, perp_funding, perp_marks, perp_rules
):
    pattern = {"BTCUSDT": [0.8, -0.6, -0.3, 0.0], "ETHUSDT": [-0.5, 0.9, 0.0, 0.7]}
    result = simulate(
        perp_bars, pattern_targets(perp_bars, pattern),
        BacktestConfig(init_cash=50_000.0, max_leverage=3.0), perp_rules,
        market="futures_um", periods_per_year=8760, funding_rates=perp_funding,
        mark_klines=perp_marks,
    )  # fmt: skip
    assert result.funding.height > 50 and result.funding["payment"].abs().sum() > 0
    check_books(result, perp_bars)
