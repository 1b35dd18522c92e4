"""The limits a book of targets must stay within, checked after sizing. Pure, no I/O.

`size_targets` builds targets inside every cap; `cap_breaches` is the independent check the
risk stage runs before writing, so a sizing bug fails loudly instead of reaching the venue.
"""

from __future__ import annotations

import polars as pl

from quantlab.config import RiskConfig

# Float slack for a cap reached by scaling (w * cap / total sums to cap within rounding).
TOLERANCE = 1e-9


def cap_breaches(targets: pl.DataFrame, cfg: RiskConfig) -> list[str]:
    """Each cap `targets` (symbol, open_time, target_weight, book_vol) breaks, in words."""
    w = pl.col("target_weight")
    per_bar = targets.group_by("open_time").agg(
        w.abs().max().alias("max_abs"),
        w.abs().sum().alias("gross"),
        w.sum().abs().alias("net"),
        pl.col("book_vol").max().alias("book_vol"),
    )
    caps = {
        "max_weight": ("max_abs", cfg.max_weight),
        "max_gross": ("gross", cfg.max_gross),
        "max_net": ("net", cfg.max_net),
        "max_book_vol": ("book_vol", cfg.max_book_vol),
    }
    found = []
    for key, (column, cap) in caps.items():
        if cap is None:
            continue
        worst = per_bar[column].max()
        if worst is not None and worst > cap * (1 + TOLERANCE) + TOLERANCE:
            found.append(f"risk.{key} {cap} exceeded: {column} reaches {worst:.6g}")
    return found
