"""Scores to directions (moved here from the old backtest test file, unchanged)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantlab.config import SignalConfig
from quantlab.portfolio import directions_from_scores
from quantlab.schema import UTC_MS

T0 = datetime(2023, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("allow_short", "expected"),
    [
        (True, [1, 0, 0, 0, 0, -1, 0, 0]),
        (False, [1, 0, 0, 0, 0, 0, 0, 0]),
    ],
)
def test_directions_from_scores_thresholds(allow_short, expected):
    cfg = SignalConfig(threshold=0.02, allow_short=allow_short)
    scores = [0.5, 0.02, 0.01, 0.0, -0.02, -0.5, None, float("nan")]
    signals = pl.DataFrame(
        {
            "symbol": ["A"] * len(scores),
            "open_time": [T0 + i * HOUR for i in range(len(scores))],
            "score": scores,
        },
        schema={"symbol": pl.String, "open_time": UTC_MS, "score": pl.Float64},
    )
    out = directions_from_scores(signals, cfg)
    assert out.columns == ["symbol", "open_time", "direction"]
    assert out["direction"].to_list() == expected
