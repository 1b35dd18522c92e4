"""Cross-sectional features: each symbol against the others at the same timestamp.

`cs_rank_<f>` is the rank (ties averaged) among the symbols that have a value at
that time, scaled to [0, 1]; `cs_z_<f>` is the z-score against their mean and
population standard deviation. Both are null when fewer than `min_symbols` have
a value. They use only same-time values, which are known at that bar's close.

The symbols are laid on a (symbol x time) grid in numpy, one contiguous row per
symbol: a rank within each of hundreds of thousands of tiny groups is slow as a
polars window expression, and comparing a few rows element-wise is fast.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quantlab.config import CrossSectionConfig


def cross_section_names(cfg: CrossSectionConfig) -> list[str]:
    return [f"cs_rank_{f}" for f in cfg.rank] + [f"cs_z_{f}" for f in cfg.zscore]


def _ranks(grid: np.ndarray) -> np.ndarray:
    """Average ranks (0-based) down each column (one per time), ignoring NaN."""
    less = np.zeros(grid.shape, dtype=np.int16)  # counts up to the number of symbols
    equal = np.zeros(grid.shape, dtype=np.int16)
    for row in grid:  # a loop over symbols, each step vectorised over time
        less += row < grid
        equal += row == grid
    return np.where(np.isnan(grid), np.nan, less + (equal - 1) / 2)


def _grid_rows(stamps: list[np.ndarray], step: int | None) -> tuple[int, list[np.ndarray]]:
    """The grid's height and each symbol's row numbers in it, one row per distinct timestamp.

    Bars on the interval's own grid (Binance's are) are placed by arithmetic; anything
    else, or a span far longer than the data, falls back to sorting the distinct times.
    """
    lo = min(int(t.min()) for t in stamps)
    hi = max(int(t.max()) for t in stamps)
    longest = max(len(t) for t in stamps)
    if (
        step
        and (hi - lo) // step < 4 * longest
        and all(((t - lo) % step == 0).all() for t in stamps)
    ):
        return (hi - lo) // step + 1, [(t - lo) // step for t in stamps]
    times = pl.concat([pl.Series(t) for t in stamps]).unique().sort().to_numpy()
    return len(times), [np.searchsorted(times, t) for t in stamps]


def add_cross_section(
    parts: list[pl.DataFrame], cfg: CrossSectionConfig, step_ms: int | None = None
) -> list[pl.DataFrame]:
    """Add the cross-sectional columns to per-symbol frames (each sorted by open_time).

    `step_ms`, the bars' interval, lets the (symbol x time) grid be laid out without a sort.
    """
    names = cross_section_names(cfg)
    parts = [p for p in parts if p.height] or parts
    if not names or not parts or not parts[0].height:
        return [p.with_columns(pl.lit(None, pl.Float64).alias(n) for n in names) for p in parts]
    height, rows = _grid_rows([p["open_time"].to_physical().to_numpy() for p in parts], step_ms)
    # Every symbol on every row (the common case): plain slices instead of scattered indices.
    at = [slice(None) if len(r) == height else r for r in rows]

    def grid_of(column: str) -> np.ndarray:
        grid = np.full((len(parts), height), np.nan)
        for j, (part, r) in enumerate(zip(parts, at, strict=True)):
            grid[j, r] = part[column].cast(pl.Float64).to_numpy()  # null -> NaN
        return grid

    out: dict[str, np.ndarray] = {}
    for f in cfg.rank:
        grid = grid_of(f)
        n = (~np.isnan(grid)).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"cs_rank_{f}"] = np.where(n >= cfg.min_symbols, _ranks(grid) / (n - 1), np.nan)
    for f in cfg.zscore:
        grid = grid_of(f)
        n = (~np.isnan(grid)).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(grid, axis=0) / n
            sd = np.sqrt(np.nansum((grid - mean) ** 2, axis=0) / n)
            z = np.where(sd > 0, (grid - mean) / sd, np.nan)
        out[f"cs_z_{f}"] = np.where(n >= cfg.min_symbols, z, np.nan)
    return [
        part.with_columns(
            pl.Series(name, values[j, r], nan_to_null=True) for name, values in out.items()
        )
        for j, (part, r) in enumerate(zip(parts, at, strict=True))
    ]
