"""Backtest engine: when orders fill, what is refused and why, the band, the kill-switch, inputs.

All on real shipped spot bars (March 2023 BTC/ETH/SOL, with the 2023-03-24 13:00 halt).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from engine_data import spot_exchange_info
from quantlab.backtest.arrays import KillSettings
from quantlab.backtest.engine import simulate
from quantlab.config import BacktestConfig
from quantlab.errors import DataError, SchemaError
from quantlab.portfolio.venue import venue_rules

CFG = BacktestConfig(init_cash=10_000.0)


def at(day: int, hour: int) -> datetime:
    return datetime(2023, 3, day, hour, tzinfo=UTC)


def decide(bars: pl.DataFrame, decisions: dict[tuple[str, datetime], float]) -> pl.DataFrame:
    """Target rows for `decisions` {(symbol, open_time): weight}, nothing else decided."""
    rows = [(s, t, w) for (s, t), w in decisions.items()]
    schema = {
        "symbol": pl.String,
        "open_time": pl.Datetime("ms", "UTC"),
        "target_weight": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def run(bars, targets, rules, cfg=CFG, **kw):
    kw.setdefault("market", "spot")
    return simulate(bars, targets, cfg, rules, periods_per_year=8760, **kw)


def test_a_decision_fills_at_the_next_bars_open_and_never_earlier(march_bars, spot_rules):
    bars = march_bars.filter(pl.col("open_time") < at(2, 0))
    result = run(bars, decide(bars, {("BTCUSDT", at(1, 5)): 0.5}), spot_rules)
    fill = result.fills.row(0, named=True)
    assert result.fills.height == 1
    assert fill["open_time"] == at(1, 6)
    open_6 = bars.filter(pl.col("symbol") == "BTCUSDT", pl.col("open_time") == at(1, 6))["open"]
    assert fill["price"] >= open_6[0]  # a buy pays up from the open, never a better price
    assert (
        result.equity.filter(pl.col("open_time") <= at(1, 5))["equity"].to_list()
        == [CFG.init_cash] * 6
    )


def test_a_target_at_the_last_bar_is_never_filled(march_bars, spot_rules):
    bars = march_bars.filter(pl.col("open_time") < at(2, 0))
    result = run(bars, decide(bars, {("BTCUSDT", at(1, 23)): 0.5}), spot_rules)
    assert result.fills.height == 0
    assert result.stats["final_equity"] == CFG.init_cash


def test_the_2023_03_24_halt_delays_the_order_to_the_next_real_bar(march_bars, spot_rules):
    assert march_bars.filter(pl.col("open_time") == at(24, 13)).height == 0  # the real halt
    result = run(march_bars, decide(march_bars, {("ETHUSDT", at(24, 12)): 0.4}), spot_rules)
    assert result.fills["open_time"].to_list() == [at(24, 14)]


def test_refused_orders_are_counted_with_their_reason(march_bars, spot_rules):
    bars = march_bars.filter(pl.col("open_time") < at(3, 0))
    decisions = {
        ("SOLUSDT", at(1, 0)): 0.0004,  # 4 USDT < the 5 USDT min notional
        ("SOLUSDT", at(1, 2)): -0.2,  # no shorts on spot
        ("BTCUSDT", at(1, 4)): 0.7,
        ("ETHUSDT", at(1, 4)): 0.35,  # 5% more than the cash left: cut to what fits
        ("SOLUSDT", at(2, 0)): 0.3,  # no cash left at all: margin
    }
    cfg = BacktestConfig(init_cash=10_000.0, rebalance_band=0.1)
    result = run(bars, decide(bars, decisions), spot_rules, cfg)
    rej = result.rejections
    assert rej["reason"].to_list() == ["min_notional", "short_not_allowed", "margin"]
    assert rej["symbol"].to_list() == ["SOLUSDT", "SOLUSDT", "SOLUSDT"]
    assert rej["open_time"].to_list() == [at(1, 1), at(1, 3), at(2, 1)]
    assert "min notional 5" in rej["detail"][0]
    assert result.stats["orders_cut_to_margin"] == 1
    assert result.stats["rejections"] == {
        "step_size": 0, "min_qty": 0, "min_notional": 1, "max_qty": 0, "margin": 1,
        "short_not_allowed": 1,
    }  # fmt: skip
    assert (result.equity["cash"] >= 0).all()  # spot is a cash account
    assert result.equity["gross_exposure"].max() <= result.equity["equity"].max()


def test_an_order_that_floors_to_zero_is_a_step_size_rejection(march_bars, spot_rules):
    bars = march_bars.filter(pl.col("open_time") < at(2, 0))
    cfg = BacktestConfig(init_cash=100.0)
    result = run(bars, decide(bars, {("BTCUSDT", at(1, 0)): 0.001}), spot_rules, cfg)
    assert result.rejections["reason"].to_list() == ["step_size"]
    assert result.fills.height == 0


def test_the_rebalance_band_skips_small_moves_but_not_exits(march_bars, spot_rules):
    bars = march_bars.filter(pl.col("open_time") < at(2, 0))
    decisions = {
        ("BTCUSDT", at(1, 0)): 0.50,
        ("BTCUSDT", at(1, 3)): 0.51,  # inside the 0.02 band: no order, not a rejection
        ("BTCUSDT", at(1, 6)): 0.56,
        ("BTCUSDT", at(1, 9)): 0.0,
    }
    result = run(bars, decide(bars, decisions), spot_rules)
    assert result.fills["open_time"].to_list() == [at(1, 1), at(1, 7), at(1, 10)]
    assert result.fills["side"].to_list() == ["BUY", "BUY", "SELL"]
    assert result.rejections.height == 0
    held = result.positions.filter(pl.col("symbol") == "BTCUSDT", pl.col("open_time") == at(1, 10))
    assert held["qty"][0] == 0.0


def test_fills_are_on_the_venue_grid_and_priced_against_the_taker(march_bars, spot_rules):
    targets = march_bars.select(
        "symbol", "open_time", ((pl.col("open_time").dt.hour() % 5) * 0.08).alias("target_weight")
    )
    result = run(march_bars, targets, spot_rules)
    fills = result.fills.join(
        march_bars.select("symbol", "open_time", "open"), on=["symbol", "open_time"]
    )
    buys, sells = fills.filter(pl.col("side") == "BUY"), fills.filter(pl.col("side") == "SELL")
    assert (buys["price"] > buys["open"]).all() and (sells["price"] < sells["open"]).all()
    ticks = (fills["price"] / 0.01).to_numpy()
    np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-6)
    np.testing.assert_allclose(fills["fee"], fills["notional"] * 0.001, rtol=1e-12)
    np.testing.assert_allclose(
        fills["slippage_cost"], fills["qty"] * (fills["price"] - fills["open"]).abs(), rtol=1e-12
    )


def test_the_kill_switch_flattens_holds_flat_and_resumes(march_bars, spot_rules):
    targets = march_bars.select("symbol", "open_time", pl.lit(0.33).alias("target_weight"))
    kill = KillSettings(kill_drawdown=0.03, kill_daily_loss=None, kill_cooldown_bars=4)
    result = run(march_bars, targets, spot_rules, kill=kill)
    assert result.kills.height > 0
    eq = result.equity["equity"].to_numpy()
    gross = result.equity["gross_exposure"].to_numpy()
    times = result.equity["open_time"].to_list()
    start, peak = 0, CFG.init_cash  # the peak resets when trading resumes
    for k in result.kills.iter_rows(named=True):
        i = times.index(k["open_time"])
        running = np.maximum.accumulate(np.concatenate([[peak], eq[start : i + 1]]))[1:]
        crossed = eq[start : i + 1] <= running * (1 - 0.03)
        assert crossed[-1] and not crossed[:-1].any()  # trips at the first close past 3%
        assert k["reason"] == "drawdown" and k["equity"] == eq[i]
        assert (gross[i + 1 : i + 5] == 0).all()  # flat from the next open, for 4 bars
        if i + 5 < len(eq):
            assert k["resume_time"] == times[i + 5]
            assert gross[i + 5] > 0  # the desired targets come back
        start, peak = i + 5, eq[i + 4]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (pl.DataFrame({"symbol": ["BTCUSDT"], "open_time": [at(1, 0)], "target_weight": [float("nan")]}), "NaN"),
        (pl.DataFrame({"symbol": ["BTCUSDT"] * 2, "open_time": [at(1, 0)] * 2, "target_weight": [0.1, 0.2]}), "one decision"),
        (pl.DataFrame({"symbol": ["BTCUSDT"], "open_time": [datetime(2020, 1, 1, tzinfo=UTC)], "target_weight": [0.1]}), "no matching bar"),
        (pl.DataFrame({"symbol": ["BTCUSDT"], "open_time": [at(1, 0)]}), "lacks column"),
    ],
)  # fmt: skip
def test_bad_targets_raise_a_schema_error_saying_what_to_do(
    march_bars, spot_rules, targets, message
):
    with pytest.raises(SchemaError, match=message):
        run(march_bars, targets, spot_rules)


def test_bars_of_a_symbol_without_filters_are_refused_naming_the_fix(march_bars):
    rules = venue_rules(spot_exchange_info(), ["BTCUSDT", "ETHUSDT", "SOLUSDT"], "spot")
    bars = pl.concat([march_bars, march_bars.head(1).with_columns(symbol=pl.lit("DOGEUSDT"))])
    with pytest.raises(DataError, match="DOGEUSDT"):
        run(bars, decide(bars, {}), rules)


def test_funding_on_spot_is_refused(march_bars, spot_rules, perp_funding):
    with pytest.raises(SchemaError, match="only futures_um"):
        run(march_bars, decide(march_bars, {}), spot_rules, funding_rates=perp_funding)


def test_usdm_orders_over_max_leverage_are_cut_to_fit(perp_bars, perp_rules):
    first = perp_bars["open_time"].min()
    targets = perp_bars.select(
        "symbol",
        "open_time",
        pl.when(pl.col("open_time") == first)
        .then(pl.when(pl.col("symbol") == "BTCUSDT").then(-0.8).otherwise(0.8))
        .alias("target_weight"),
    )
    cfg = BacktestConfig(init_cash=50_000.0, max_leverage=1.0, rebalance_band=0.5)
    result = run(perp_bars, targets, perp_rules, cfg, market="futures_um")
    first_fills = result.fills.filter(pl.col("open_time") == result.fills["open_time"][0])
    assert first_fills["side"].to_list() == ["SELL", "BUY"]  # a short is allowed on USD-M
    assert result.stats["orders_cut_to_margin"] >= 1  # ETH gets what is left, later more
    assert first_fills["notional"].sum() <= cfg.init_cash * cfg.max_leverage
    assert first_fills["notional"].sum() > 0.99 * cfg.init_cash * cfg.max_leverage
