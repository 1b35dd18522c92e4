"""The numba engine against a plain-Python event loop, fill by fill, and against vectorbt.

Real data: March 2023 spot bars of BTC/ETH/SOL (with the 2023-03-24 halt) and a month of real
USD-M perpetual bars, mark prices and funding. The target path is deterministic and built to
hit every branch: step rounding, min-notional and step-size rejections, the rebalance band, a
margin cut, shorts refused on spot, kill-switch trips.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine_data import PATTERN, pattern_targets
from quantlab.backtest.arrays import KillSettings
from quantlab.backtest.engine import simulate
from quantlab.backtest.reference import simulate_reference
from quantlab.config import BacktestConfig

REL = 1e-9


def assert_parity(result, ref):
    times = result.equity["open_time"].dt.epoch("ms").to_list()
    assert len(ref.equity) == len(times)
    np.testing.assert_allclose(result.equity["equity"].to_numpy(), ref.equity, rtol=REL)
    fills = result.fills
    assert fills.height == len(ref.fills)
    assert fills["symbol"].to_list() == [f["symbol"] for f in ref.fills]
    assert fills["open_time"].dt.epoch("ms").to_list() == [f["open_time"] for f in ref.fills]
    assert fills["side"].to_list() == ["BUY" if f["side"] > 0 else "SELL" for f in ref.fills]
    for col in ("qty", "price", "fee"):
        np.testing.assert_allclose(fills[col].to_numpy(), [f[col] for f in ref.fills], rtol=REL)
    rej = result.rejections
    assert list(
        zip(rej["symbol"], rej["open_time"].dt.epoch("ms"), rej["reason"], strict=True)
    ) == [(r["symbol"], r["open_time"], r["reason"]) for r in ref.rejections]
    np.testing.assert_allclose(rej["qty"].to_numpy(), [r["qty"] for r in ref.rejections], rtol=REL)
    fund = result.funding
    assert fund.height == len(ref.funding)
    np.testing.assert_allclose(
        fund["payment"].to_numpy(), [f["payment"] for f in ref.funding], rtol=REL
    )
    assert fund["price_source"].to_list() == [f["price_source"] for f in ref.funding]
    kills = result.kills
    assert list(zip(kills["open_time"].dt.epoch("ms"), kills["reason"], strict=True)) == [
        (k["open_time"], k["reason"]) for k in ref.kills
    ]


@pytest.mark.parametrize("init_cash", [10_000.0, 300.0])
def test_spot_engine_matches_the_event_loop(march_bars, spot_rules, init_cash):
    cfg = BacktestConfig(
        init_cash=init_cash,
        slippage={"per_symbol": {"SOLUSDT": {"half_spread_bps": 3.0, "impact_coef": 2.0}}},
    )
    targets = pattern_targets(march_bars, PATTERN)
    kill = KillSettings(kill_drawdown=0.04, kill_daily_loss=0.03, kill_cooldown_bars=5)
    kw = dict(market="spot", kill=kill)
    result = simulate(march_bars, targets, cfg, spot_rules, periods_per_year=8760, **kw)
    ref = simulate_reference(march_bars, targets, cfg, spot_rules, **kw)
    assert_parity(result, ref)
    # the path really exercises what it claims to
    reasons = result.stats["rejections"]
    assert reasons["short_not_allowed"] > 0
    assert reasons["min_notional"] + reasons["step_size"] > 0
    assert reasons["margin"] + result.stats["orders_cut_to_margin"] > 0
    assert result.kills.height > 0
    steps = {"BTCUSDT": 1e-5, "ETHUSDT": 1e-4, "SOLUSDT": 1e-2}
    for sym, step in steps.items():
        qty = result.fills.filter(pl.col("symbol") == sym)["qty"].to_numpy()
        assert np.allclose(np.round(qty / step) * step, qty, rtol=1e-12, atol=0)


def test_usdm_engine_matches_the_event_loop_with_funding(
    perp_bars, perp_funding, perp_marks, perp_rules
):
    cfg = BacktestConfig(init_cash=50_000.0, max_leverage=2.0)
    pattern = {"BTCUSDT": [0.8, -0.6, -0.61, 0.0], "ETHUSDT": [-0.5, 0.9, 0.0, 0.7]}
    targets = pattern_targets(perp_bars, pattern)
    kill = KillSettings(kill_drawdown=0.03, kill_daily_loss=None, kill_cooldown_bars=3)
    kw = dict(market="futures_um", funding_rates=perp_funding, mark_klines=perp_marks, kill=kill)
    result = simulate(perp_bars, targets, cfg, perp_rules, periods_per_year=8760, **kw)
    ref = simulate_reference(perp_bars, targets, cfg, perp_rules, **kw)
    assert_parity(result, ref)
    assert result.funding.height > 0
    assert set(result.funding["price_source"]) == {"mark"}
    assert result.stats["impact_volume"] == "base_volume_x_close"
    assert (result.equity["gross_exposure"] / result.equity["equity"]).max() < 2.2


def test_fills_and_funding_replayed_in_vectorbt_give_the_same_equity(march_bars, spot_rules):
    """vectorbt's from_orders, fed our fills as signed amounts at our prices and fee rates,
    values the book as we do (spot: no funding)."""
    import pandas as pd
    import vectorbt as vbt

    cfg = BacktestConfig(init_cash=10_000.0)
    targets = pattern_targets(march_bars, PATTERN)
    result = simulate(march_bars, targets, cfg, spot_rules, market="spot", periods_per_year=8760)
    times = result.equity["open_time"]
    symbols = sorted(march_bars["symbol"].unique())
    index = pd.DatetimeIndex(times.to_pandas())
    close = (
        march_bars.pivot(on="symbol", index="open_time", values="close")
        .sort("open_time")
        .select(symbols)
        .fill_null(strategy="forward")
        .to_pandas()
        .set_index(index)
    )
    fills = result.fills.with_columns(
        pl.when(pl.col("side") == "BUY").then(pl.col("qty")).otherwise(-pl.col("qty")).alias("sz"),
        (pl.col("fee") / pl.col("notional")).alias("rate"),
    )
    size = pd.DataFrame(np.nan, index=index, columns=symbols)
    price = pd.DataFrame(np.nan, index=index, columns=symbols)
    fee = pd.DataFrame(0.0, index=index, columns=symbols)
    row = {t: i for i, t in enumerate(times.to_list())}
    for f in fills.iter_rows(named=True):
        i, j = row[f["open_time"]], symbols.index(f["symbol"])
        size.iat[i, j], price.iat[i, j], fee.iat[i, j] = f["sz"], f["price"], f["rate"]
    # our order within a bar: sells first, then by symbol; vectorbt: call_seq by column
    pf = vbt.Portfolio.from_orders(
        close=close, size=size, size_type="amount", direction="both", price=price, fees=fee,
        init_cash=cfg.init_cash, cash_sharing=True, group_by=True, call_seq="auto",
        freq="1h",
    )  # fmt: skip
    assert pf.orders.count() == fills.height
    expected = result.equity["equity"].to_numpy() - np.cumsum(result.equity["funding"].to_numpy())
    np.testing.assert_allclose(pf.value().to_numpy(), expected, rtol=REL)
