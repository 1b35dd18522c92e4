"""Bit-for-bit comparison of two predictions frames: the first row and column where they part.

Pure: no I/O. Floats are compared by their bits, so a difference in the last place (or a NaN
against a null) counts; reproduce promises bit-identical predictions, not close ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from quantlab.vocab import KEY

# One row per bar and booster kind (the `predictions` key in quantlab.catalog.datasets).
PREDICTION_KEY = (*KEY, "model")
ROW = "<row>"  # the `column` of a difference in which rows exist, not in a value


@dataclass(frozen=True)
class Difference:
    """Where two frames first differ: the row's key, the column, and both sides' values
    (`ROW` and present/absent when a row is in one frame only)."""

    row: dict[str, Any]
    column: str
    recorded: Any
    rerun: Any

    def __str__(self) -> str:
        where = " ".join(f"{k}={_show(v)}" for k, v in self.row.items())
        return f"{where} column {self.column}: recorded {_show(self.recorded)}, rerun {_show(self.rerun)}"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value!r} (bits {np.float64(value).view(np.uint64):#018x})"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def first_difference(
    recorded: pl.DataFrame, rerun: pl.DataFrame, key: tuple[str, ...] = PREDICTION_KEY
) -> Difference | None:
    """The first difference between `recorded` and `rerun` in key order, or None when they
    hold the same columns, the same keys and bit-identical values (row order aside)."""
    if set(recorded.columns) != set(rerun.columns):
        column = sorted(set(recorded.columns) ^ set(rerun.columns))[0]
        present = ("present", "absent") if column in recorded.columns else ("absent", "present")
        return Difference({}, column, *present)
    if (extra := _first_unmatched(recorded, rerun, key)) is not None:
        return extra
    rec = recorded.sort(key)
    new = rerun.select(recorded.columns).sort(key)
    first: tuple[int, int] | None = None  # (row, column position)
    for position, column in enumerate(recorded.columns):
        if column in key:
            continue
        differs = _differs(rec[column], new[column])
        if differs.any():
            row = int(np.argmax(differs))
            if first is None or row < first[0]:
                first = (row, position)
    if first is None:
        return None
    row, position = first
    column = recorded.columns[position]
    return Difference({k: rec[k][row] for k in key}, column, rec[column][row], new[column][row])


def _first_unmatched(
    recorded: pl.DataFrame, rerun: pl.DataFrame, key: tuple[str, ...]
) -> Difference | None:
    """The first key (in key order) that is in one frame only."""
    only = pl.concat(
        [
            recorded.select(key)
            .join(rerun.select(key), on=key, how="anti")
            .with_columns(pl.lit("present").alias("_recorded"), pl.lit("absent").alias("_rerun")),
            rerun.select(key)
            .join(recorded.select(key), on=key, how="anti")
            .with_columns(pl.lit("absent").alias("_recorded"), pl.lit("present").alias("_rerun")),
        ]
    ).sort(key)
    if only.is_empty():
        return None
    first = only.row(0, named=True)
    return Difference({k: first[k] for k in key}, ROW, first["_recorded"], first["_rerun"])


def _differs(a: pl.Series, b: pl.Series) -> np.ndarray:
    """Per row: whether `a` and `b` differ, floats by their bits, nulls equal only to nulls."""
    if a.dtype != b.dtype:
        return np.ones(len(a), dtype=bool)
    nulls = (a.is_null() != b.is_null()).to_numpy()
    if a.dtype.is_float():
        bits_a = a.cast(pl.Float64).fill_null(0.0).to_numpy().view(np.uint64)
        bits_b = b.cast(pl.Float64).fill_null(0.0).to_numpy().view(np.uint64)
        return nulls | (bits_a != bits_b)
    return nulls | a.ne_missing(b).fill_null(True).to_numpy()
