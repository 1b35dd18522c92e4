"""The sweep entry point runs the very loop `simulate` runs: same equity, same counts."""

from __future__ import annotations

import numpy as np
import polars as pl

import engine_data as data
from quantlab.backtest.arrays import KillSettings, prepare_inputs, target_grid
from quantlab.backtest.engine import run_inputs
from quantlab.config import BacktestConfig
from quantlab.portfolio import engine_nb as nb


def test_sweep_matches_one_path_at_a_time():
    bars = data.spot_bars("2023-03")
    cfg = BacktestConfig(init_cash=10_000.0)
    kill = KillSettings(kill_drawdown=0.05, kill_daily_loss=0.03, kill_cooldown_bars=3)
    inputs = prepare_inputs(bars, cfg, data.spot_rules(), market="spot", kill=kill)
    grids = []
    for scale in (0.5, 1.0, 1.4):
        pattern = {s: [w * scale for w in ws] for s, ws in data.PATTERN.items()}
        grids.append(target_grid(data.pattern_targets(bars, pattern), inputs))
    equity, counts = nb.sweep(
        inputs.open, inputs.close_ff, inputs.has_bar, np.stack(grids), inputs.prev_qv,
        inputs.sigma, inputs.day_id, inputs.sym, inputs.par, inputs.ev,
    )  # fmt: skip
    assert equity.shape == (3, inputs.open.shape[0])
    for k, grid in enumerate(grids):
        one = run_inputs(inputs, grid)
        np.testing.assert_array_equal(equity[k], one.equity["equity"].to_numpy())
        assert counts[k, nb.C_FILLS] == one.fills.height
        assert counts[k, nb.C_REJ] == one.rejections.height
        assert counts[k, nb.C_KILLS] == one.kills.height
    assert len({float(e[-1]) for e in equity}) == 3  # the three paths really differ


def test_a_missing_bar_values_the_holding_at_its_last_close():
    """ETH's real bars of 2023-03-10 05:00-07:00 are removed to make a one-symbol gap."""
    full = data.spot_bars("2023-03")
    hour = pl.col("open_time").dt.strftime("%m-%d %H")
    gap = (pl.col("symbol") == "ETHUSDT") & hour.is_in(["03-10 05", "03-10 06", "03-10 07"])
    bars = full.filter(~gap)
    targets = bars.select("symbol", "open_time", pl.lit(0.3).alias("target_weight"))
    inputs = prepare_inputs(bars, BacktestConfig(), data.spot_rules(), market="spot")
    result = run_inputs(inputs, target_grid(targets, inputs))
    eth = result.positions.filter(pl.col("symbol") == "ETHUSDT")
    last_close = full.filter(pl.col("symbol") == "ETHUSDT", hour == "03-10 04")["close"][0]
    held = eth.filter(hour.is_in(["03-10 05", "03-10 06", "03-10 07"]))
    assert held["close"].to_list() == [last_close] * 3
    assert (held["value"] == held["qty"] * last_close).all() and (held["qty"] > 0).all()
    assert (
        result.fills.filter(
            pl.col("symbol") == "ETHUSDT",
            gap.is_not_null() & hour.is_in(["03-10 05", "03-10 06", "03-10 07"]),
        ).height
        == 0
    )
    assert not result.equity["equity"].is_nan().any()
