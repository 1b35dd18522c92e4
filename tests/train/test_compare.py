"""quantlab.train.compare: bit-for-bit equality of predictions and the first difference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quantlab.train.compare import ROW, first_difference

T0 = datetime(2023, 3, 1, tzinfo=UTC)


def _frame(n: int = 6) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    prob = rng.uniform(size=n)
    return pl.DataFrame(
        {
            "symbol": ["BTCUSDT", "ETHUSDT"] * (n // 2),
            "open_time": [T0 + timedelta(hours=i // 2) for i in range(n)],
            "model": ["lightgbm"] * n,
            "fold": pl.Series([0] * n, dtype=pl.Int32),
            "prob_up": prob,
            "score": prob * 2 - 1,
        }
    ).with_columns(pl.col("open_time").dt.cast_time_unit("ms"))


def _set(df: pl.DataFrame, row: int, column: str, value) -> pl.DataFrame:
    values = df[column].to_list()
    values[row] = value
    return df.with_columns(pl.Series(column, values, dtype=df.schema[column]))


def test_the_same_rows_in_another_order_are_identical():
    df = _frame()
    assert first_difference(df, df.reverse()) is None


def test_one_ulp_is_a_difference_named_by_row_column_and_both_values():
    df = _frame()
    sorted_ = df.sort("symbol", "open_time", "model")
    before = sorted_["prob_up"][3]
    after = float(np.nextafter(before, 1.0))
    diff = first_difference(df, _set(sorted_, 3, "prob_up", after))
    assert diff is not None and diff.column == "prob_up"
    assert diff.row == {k: sorted_[k][3] for k in ("symbol", "open_time", "model")}
    assert (diff.recorded, diff.rerun) == (before, after)
    assert "prob_up" in str(diff) and "bits 0x" in str(diff)


def test_the_earliest_row_wins_over_column_order():
    df = _frame().sort("symbol", "open_time", "model")
    tampered = _set(_set(df, 4, "prob_up", 0.123), 1, "score", 0.5)
    diff = first_difference(df, tampered)
    assert diff.column == "score" and diff.row["symbol"] == df["symbol"][1]


@pytest.mark.parametrize("value", [None, float("nan")])
def test_a_null_and_a_nan_differ_from_a_number_and_from_each_other(value):
    df = _frame().sort("symbol", "open_time", "model")
    assert first_difference(df, _set(df, 0, "prob_up", value)).column == "prob_up"
    nan, null = _set(df, 0, "prob_up", float("nan")), _set(df, 0, "prob_up", None)
    assert first_difference(nan, null).column == "prob_up"
    assert first_difference(nan, nan) is None


def test_a_row_in_one_frame_only_is_reported_as_a_row():
    df = _frame().sort("symbol", "open_time", "model")
    diff = first_difference(df, df.slice(1))
    assert diff.column == ROW and (diff.recorded, diff.rerun) == ("present", "absent")
    assert diff.row["open_time"] == df["open_time"][0]


def test_a_column_in_one_frame_only_is_reported():
    df = _frame()
    diff = first_difference(df, df.with_columns(pl.lit(1.0).alias("prob_down")))
    assert (diff.column, diff.recorded, diff.rerun) == ("prob_down", "absent", "present")


def test_an_integer_change_is_a_difference():
    df = _frame().sort("symbol", "open_time", "model")
    assert first_difference(df, _set(df, 2, "fold", 1)).column == "fold"
