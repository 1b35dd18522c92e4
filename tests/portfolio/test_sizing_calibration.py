"""The calibration check of prob_up: a reliability table and the Brier score per fold,
against hand counts; a calibrated model's table lies on the diagonal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quantlab.portfolio.sizing import calibration

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _frames(prob, up, fold):
    times = [T0 + timedelta(hours=i) for i in range(len(prob))]
    preds = pl.DataFrame({"symbol": "A", "open_time": times, "fold": fold, "prob_up": prob})
    outcomes = pl.DataFrame({"symbol": "A", "open_time": times, "up": up})
    return preds, outcomes


def test_the_reliability_table_and_brier_score_by_hand():
    prob = [0.05, 0.15, 0.12, 0.95, 0.55, 0.6, None]
    up = [0, 0, 1, 1, 1, None, 1]  # the last two: no outcome yet / no probability
    fold = [0, 0, 0, 0, 1, 1, 1]
    table, brier = calibration(*_frames(prob, up, fold), bins=10)
    assert table.select("fold", "bin", "count").rows() == [
        (0, 0, 1),
        (0, 1, 2),
        (0, 9, 1),
        (1, 5, 1),
    ]
    row = table.row(1, named=True)
    assert row["mean_predicted"] == pytest.approx(0.135)
    assert row["observed"] == pytest.approx(0.5)
    assert (row["lower"], row["upper"]) == (0.1, 0.2)
    want0 = (0.05**2 + 0.15**2 + 0.88**2 + 0.05**2) / 4
    assert brier.rows() == [(0, 4, pytest.approx(want0), 0.5), (1, 1, pytest.approx(0.45**2), 1.0)]


def test_a_calibrated_model_lies_on_the_diagonal_and_a_confident_one_does_not():
    """SYNTHETIC outcomes drawn with the stated probability."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    up = (rng.uniform(0, 1, p.size) < p).astype(int)
    honest, brier = calibration(*_frames(p, up, [0] * p.size), bins=5)
    gap = (honest["observed"] - honest["mean_predicted"]).abs().max()
    assert gap < 0.03
    bold = np.clip(0.5 + 2 * (p - 0.5), 0, 1)  # overconfident: same ranking, stretched
    table, bold_brier = calibration(*_frames(bold, up, [0] * p.size), bins=5)
    assert (table["observed"] - table["mean_predicted"]).abs().max() > 0.1
    assert bold_brier["brier"][0] > brier["brier"][0]
