"""The backtest's timing has teeth: a signal shifted one bar later trades, and earns, differently.

On the real shipped BTC/ETH/SOL bars of March 2023, targets from a causal momentum rule are
backtested as decided and again one bar later. If the engine ignored when a decision was made
(or filled both on the same bar) the two would match; they must not, and every fill of the
shifted run must come exactly one bar after the original's.
"""

from __future__ import annotations

import polars as pl

from engine_data import spot_bars, spot_rules
from quantlab.backtest.engine import simulate
from quantlab.config import BacktestConfig
from quantlab.vocab import KEY


def _targets(bars: pl.DataFrame) -> pl.DataFrame:
    momentum = (
        (pl.col("close") / pl.col("close").shift(6)).log().over("symbol", order_by="open_time")
    )
    weight = pl.when(momentum > 0.004).then(0.3).otherwise(0.0)
    return bars.select(*KEY, weight.alias("target_weight"))


def _run(bars: pl.DataFrame, targets: pl.DataFrame):
    cfg = BacktestConfig(init_cash=100_000.0)
    return simulate(bars, targets, cfg, spot_rules(), market="spot", periods_per_year=8760)


def test_shifting_every_signal_one_bar_later_changes_the_result():
    bars = spot_bars("2023-03")
    targets = _targets(bars)
    late = targets.with_columns(
        pl.col("target_weight").shift(1).over("symbol", order_by="open_time")
    )
    base, shifted = _run(bars, targets), _run(bars, late)
    assert base.fills.height > 20
    assert base.equity["equity"].to_list() != shifted.equity["equity"].to_list()
    assert abs(base.equity["equity"][-1] - shifted.equity["equity"][-1]) > 1.0
    # Each original fill reappears one bar of its symbol later (the halt on 2023-03-24 makes
    # that bar two hours later for the 12:00 decision), never on the same bar.
    nxt = (
        bars.select(*KEY)
        .sort(*KEY)
        .with_columns(pl.col("open_time").shift(-1).over("symbol").alias("next_time"))
    )
    moved = base.fills.join(nxt, on=list(KEY)).select(
        "symbol", pl.col("next_time").alias("open_time")
    )
    same_bar = base.fills.join(shifted.fills, on=list(KEY), how="semi").height
    assert moved.join(shifted.fills, on=list(KEY), how="semi").height >= 0.9 * base.fills.height
    assert same_bar < base.fills.height
