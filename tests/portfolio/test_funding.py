"""USD-M funding on real Binance perp data: sign, jitter, timing, and 1h vs 1d bars.

Data: ../shared/data/binance/freqtrade-futures (real bars, mark klines and funding rates).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine_data as data
from quantlab.backtest.engine import simulate
from quantlab.config import BacktestConfig
from quantlab.errors import SchemaError
from quantlab.portfolio.funding import funding_events

# August 2024: BTC funding was positive and negative in the same month.
START, END = "2024-08-01", "2024-09-01"
NO_SLIP = {"half_spread_bps": 0.0, "impact_coef": 0.0}


@pytest.fixture(scope="module")
def august():
    bars = data.perp_frames("futures", START, END, ["BTCUSDT"])
    marks = data.perp_frames("mark", START, END, ["BTCUSDT"])
    rates = data.perp_frames("funding_rate", START, END, ["BTCUSDT"])
    return bars, marks, rates


def hold(bars: pl.DataFrame, weight: float) -> pl.DataFrame:
    """Decide `weight` at the first bar's close and never change it."""
    first = bars["open_time"].min()
    return bars.select(
        "symbol", "open_time",
        pl.when(pl.col("open_time") == first).then(weight).alias("target_weight"),
    )  # fmt: skip


@pytest.mark.parametrize("weight", [0.5, -0.5], ids=["long", "short"])
def test_funding_sign_table_on_real_rates(august, weight):
    bars, marks, rates = august
    cfg = BacktestConfig(init_cash=10_000.0, rebalance_band=0.99)
    result = simulate(
        bars, hold(bars, weight), cfg, data.perp_rules(["BTCUSDT"]), market="futures_um",
        periods_per_year=8760, funding_rates=rates, mark_klines=marks,
    )  # fmt: skip
    fund = result.funding
    assert (fund["rate"] > 0).sum() > 5 and (fund["rate"] < 0).sum() > 5  # both signs happen
    assert (np.sign(fund["qty"]) == np.sign(weight)).all()
    # positive rate: longs pay (payment < 0), shorts receive; negative rate: the reverse
    expected_sign = -np.sign(fund["qty"]) * np.sign(fund["rate"])
    assert (np.sign(fund["payment"]) == expected_sign).all()
    mark_at = dict(zip(marks["open_time"], marks["open"], strict=True))
    for row in fund.iter_rows(named=True):
        assert row["mark_price"] == mark_at[row["funding_time"]]
        assert row["payment"] == pytest.approx(-row["qty"] * row["mark_price"] * row["rate"])
    assert set(fund["price_source"]) == {"mark"}


def test_jittered_funding_times_bucket_to_the_hour():
    """The 8h file keeps Binance's raw fundingTime (ms jitter); it lands on the same hours as
    the 1h file's floored dates, and an event at a bar's open is flagged as such."""
    raw = data.perp_frames("funding_rate", "2025-02-01", "2025-03-01", ["BTCUSDT"], tf="8h")
    assert (raw["funding_time"].dt.millisecond() > 0).any()  # the jitter is really there
    floored = data.perp_frames("funding_rate", "2025-02-01", "2025-03-01", ["BTCUSDT"])
    grid = floored["funding_time"].dt.epoch("ms").to_numpy()
    ev = funding_events(
        raw.with_columns(mark_price=pl.lit(95_000.0)), grid, ["BTCUSDT"], end_ms=int(grid[-1]) + 1
    )
    assert ev["funding_time"].to_list() == floored["funding_time"].to_list()
    assert ev["at_open"].all()
    assert set(ev["price_source"]) == {"funding_rates"}
    assert ev["t"].to_list() == list(range(len(grid)))


def test_an_event_with_no_price_at_all_is_an_error_not_a_guess():
    raw = data.perp_frames("funding_rate", "2025-02-01", "2025-02-02", ["BTCUSDT"], tf="8h")
    grid = np.array([raw["funding_time"].dt.epoch("ms").min() // 3_600_000 * 3_600_000])
    with pytest.raises(SchemaError, match="no price"):
        funding_events(raw, grid, ["BTCUSDT"], end_ms=int(grid[0]) + 86_400_000)


def daily(bars: pl.DataFrame) -> pl.DataFrame:
    return (
        bars.sort("open_time")
        .group_by_dynamic("open_time", every="1d", group_by="symbol")
        .agg(
            pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
            pl.col("close").last(), pl.col("volume").sum(),
            pl.col("quote_volume").first(),
        )
    )  # fmt: skip


def test_the_same_positions_on_1h_and_1d_bars_pay_the_same_funding(august):
    bars, marks, rates = august
    days = daily(bars)
    plan = {"2024-08-01": 0.5, "2024-08-09": 0.0, "2024-08-12": -0.5, "2024-08-25": 0.0}
    cfg = BacktestConfig(init_cash=10_000.0, rebalance_band=0.99, slippage=NO_SLIP)

    def targets(frame: pl.DataFrame, hour: int) -> pl.DataFrame:
        # decided at the day's last bar (1h: 23:00; 1d: the daily bar) -> filled at next 00:00
        when = {f"{d} {hour:02d}": w for d, w in plan.items()}
        key = pl.col("open_time").dt.strftime("%Y-%m-%d %H")
        return frame.select(
            "symbol", "open_time", key.replace_strict(when, default=None, return_dtype=pl.Float64)
            .alias("target_weight"),
        )  # fmt: skip

    hourly_t = targets(bars, 23)
    daily_t = targets(days, 0)
    kw = dict(market="futures_um", periods_per_year=8760, funding_rates=rates, mark_klines=marks)
    rules = data.perp_rules(["BTCUSDT"])
    hourly = simulate(bars, hourly_t, cfg, rules, **kw)
    dly = simulate(days, daily_t, cfg, rules, **kw)
    assert hourly.fills.select("open_time", "qty").equals(dly.fills.select("open_time", "qty"))
    assert hourly.funding.height == dly.funding.height > 40  # every 8h event, not 1 a day
    assert hourly.funding["payment"].sum() == pytest.approx(dly.funding["payment"].sum(), rel=1e-12)
    assert hourly.stats["funding_total"] == pytest.approx(dly.stats["funding_total"], rel=1e-12)


def test_without_mark_prices_the_bar_open_is_used_and_flagged(august):
    bars, _, rates = august
    result = simulate(
        bars, hold(bars, 0.5), BacktestConfig(init_cash=10_000.0), data.perp_rules(["BTCUSDT"]),
        market="futures_um", periods_per_year=8760, funding_rates=rates,
    )  # fmt: skip
    assert set(result.funding["price_source"]) == {"bar"}
    assert result.stats["funding_price_bar"] == result.funding.height > 0
    opens = dict(zip(bars["open_time"], bars["open"], strict=True))
    for row in result.funding.iter_rows(named=True):
        assert row["mark_price"] == opens[row["funding_time"]]
