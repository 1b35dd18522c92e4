"""How a catalog version's rows are regrouped by series and time before the calendar checks."""

from __future__ import annotations

import polars as pl
import pytest

from quantlab.quality._kline_columns import _SID, _in_time_order, _series_id


def _frame(sid: list[int], ot: list[int | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {_SID: sid, "open_time": ot}, schema={_SID: pl.UInt64, "open_time": pl.Int64}
    ).with_row_index("at")


def _stable_sort(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(_SID, "open_time", nulls_last=True, maintain_order=True)


@pytest.mark.parametrize(
    ("sid", "ot"),
    [
        # Sorted runs of two series that do not overlap in time.
        ([2, 2, 1, 1, 2, 2, 1], [5, 6, 3, 4, 1, 2, 1]),
        # Runs that interleave in time (a file holding months 1, 2, 3, 5, another 4, 6).
        ([1, 1, 1, 1, 1, 1], [1, 2, 5, 3, 4, 6]),
        # A time in two runs: ties keep their input order, as a stable sort's do.
        ([1, 1, 1, 1], [3, 4, 1, 3]),
        # Rows without an open_time go last in their series.
        ([1, 1, 2, 1, 2], [2, None, 1, 1, None]),
        # A missing open_time between two times proves nothing about their order.
        ([1, 1, 1], [2, None, 1]),
        # Already in order, and a single row.
        ([1, 1, 2], [1, 2, 1]),
        ([1], [7]),
    ],
)
def test_rows_come_as_a_stable_sort_by_series_and_time(sid: list[int], ot: list) -> None:
    df = _frame(sid, ot)
    assert _in_time_order(df).equals(_stable_sort(df))


def test_many_random_runs_match_the_stable_sort() -> None:
    i = pl.int_range(3000)
    df = pl.select(
        (i * 7 % 3).cast(pl.UInt64).alias(_SID), (i * 37 % 101).cast(pl.Int64).alias("open_time")
    ).with_row_index("at")
    assert _in_time_order(df).equals(_stable_sort(df))


@pytest.mark.parametrize("interleave", [False, True])
def test_series_ids_are_equal_exactly_for_equal_market_and_symbol(interleave: bool) -> None:
    """Series in long runs or interleaved row by row, with a missing market or symbol as a
    value of its own."""
    pairs = [("spot", "BTCUSDT"), ("spot", "ETHUSDT"), ("futures_um", "BTCUSDT"), (None, "ETHUSDT"),
             ("spot", None)]  # fmt: skip
    rows = [p for p in pairs for _ in range(200)]
    if interleave:
        rows = rows[::2] + rows[1::2]
        rows = [rows[i] for i in sorted(range(len(rows)), key=lambda i: (i * 7919) % len(rows))]
    df = pl.DataFrame(rows, schema=["market", "symbol"], orient="row")
    ids = _series_id(df)
    assert ids.name == _SID and ids.dtype == pl.UInt64
    pairs_of = df.with_columns(ids).group_by(_SID).agg(pl.struct("market", "symbol").n_unique())
    assert pairs_of.height == len(pairs)
    assert pairs_of["market"].to_list() == [1] * len(pairs)
