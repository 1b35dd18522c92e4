"""One vocabulary: scores become directions, directions become target weights, a venue reports fills."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from engine_data import spot_bars, spot_rules
from quantlab.backtest.engine import simulate
from quantlab.config import BacktestConfig, SignalConfig
from quantlab.portfolio import Side, directions_from_scores
from quantlab.schema import UTC_MS

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = 3_600_000


def _frame(**columns):
    n = len(next(iter(columns.values())))
    times = pl.datetime_range(T0, T0.replace(hour=n - 1), "1h", eager=True).cast(UTC_MS)
    return pl.DataFrame({"symbol": ["A"] * n, "open_time": times, **columns})


def test_directions_from_scores_names_its_output_direction():
    scores = _frame(score=[0.9, -0.9, 0.0])
    out = directions_from_scores(scores, SignalConfig(threshold=0.5, allow_short=True))
    assert out.columns == ["symbol", "open_time", "direction"]
    assert out["direction"].to_list() == [1, -1, 0]


def test_backtest_reports_fills_in_the_venue_spelling_and_the_positions_it_held():
    bars = spot_bars("2023-03").filter(pl.col("symbol") == "BTCUSDT").head(4)
    targets = bars.select("symbol", "open_time").with_columns(
        target_weight=pl.Series([0.5, 0.5, 0.0, 0.0])
    )
    cfg = BacktestConfig(init_cash=1000.0)
    result = simulate(bars, targets, cfg, spot_rules(["BTCUSDT"]), market="spot",
                      periods_per_year=8760)  # fmt: skip
    assert result.fills.columns == [
        "symbol", "open_time", "side", "qty", "price", "fee", "slippage_cost", "notional",
    ]  # fmt: skip
    assert result.fills["side"].to_list() == [Side.BUY, Side.SELL]
    assert result.fills["fee"].sum() == pytest.approx(result.stats["fees_total"])
    assert result.positions["qty"].to_list()[0] == 0.0
    assert result.positions["qty"].to_list()[1:] == [result.fills["qty"][0]] * 2 + [0.0]
