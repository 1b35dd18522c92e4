"""One vocabulary: scores become directions, directions become target weights, a venue reports fills."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from quantlab.backtest import simulate
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


def test_backtest_reports_fills_in_the_venue_spelling_and_the_target_weights_it_held():
    bars = _frame(open=[10.0, 11.0, 12.0, 13.0], close=[10.5, 11.5, 12.5, 13.5])
    directions = _frame(direction=[1.0, 1.0, 0.0, 0.0])
    cfg = BacktestConfig(init_cash=1000.0, fees=0.001, slippage=0.0)
    result = simulate(bars.drop("symbol").with_columns(symbol=pl.lit("A")), directions, cfg)
    assert result.fills.columns == ["symbol", "open_time", "side", "qty", "price", "fee"]
    assert result.fills["side"].to_list() == [Side.BUY, Side.SELL]
    assert result.fills["fee"].sum() == pytest.approx(result.stats["fees_paid"])
    assert result.targets["target_weight"].to_list() == [0.0, 1.0, 1.0, 0.0]
