"""Higher-timeframe features: bars of a longer interval built from the base bars, joined back as of.

A higher-timeframe bar covering [T, T + tf) is used by a base bar only once it
has closed, i.e. when T + tf <= the base bar's open_time + base interval. So a
feature at base bar t never sees the half-built bar that t belongs to.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from quantlab.errors import ConfigError
from quantlab.features._primitives import with_deps, with_helpers
from quantlab.features._registry import Feature, merged_deps
from quantlab.vocab import INTERVAL_MS

_SUMMED = (
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)


def check_timeframe(tf: str, base: str) -> int:
    """How many base bars make one `tf` bar; ConfigError if `tf` is not a larger multiple."""
    tf_ms, base_ms = INTERVAL_MS[tf], INTERVAL_MS[base]
    if tf_ms <= base_ms or tf_ms % base_ms:
        raise ConfigError(
            f"features.timeframes has {tf!r}, which is not a larger multiple of the bars' "
            f"interval {base!r}; use e.g. 4h or 1d on 1h bars"
        )
    return tf_ms // base_ms


def resample(bars: pl.LazyFrame, tf: str, ratio: int) -> pl.LazyFrame:
    """One symbol's `tf` bars (UTC-aligned) from its time-sorted base bars.

    The first bar is dropped when the data starts inside it, so no feature is
    computed on a bar that was only partly seen.
    """
    # Grouping on the truncated time (not group_by_dynamic) makes only the buckets that hold bars.
    return (
        bars.with_columns(pl.col("open_time").dt.truncate(tf).alias("_bucket"))
        .group_by("_bucket", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            # A column the source lacks (null on every bar) stays null, not a sum of 0.
            *[pl.when(pl.col(c).count() > 0).then(pl.col(c).sum()).alias(c) for c in _SUMMED],
            pl.len().alias("_n"),
        )
        .rename({"_bucket": "open_time"})
        .filter((pl.int_range(pl.len()) > 0) | (pl.col("_n") == ratio))
    )


def join_timeframe(
    bars: pl.LazyFrame,
    raw: pl.LazyFrame,
    tf: str,
    ratio: int,
    features: list[Feature],
    base_ms: int,
) -> pl.LazyFrame:
    """Add `<feature>_<tf>` columns to one symbol's `bars` from its `raw` base bars."""
    deps = merged_deps(features)
    used = [*deps.values(), *(f.expr for f in features)]
    htf = with_deps(with_helpers(resample(raw, tf, ratio), used), deps).select(
        (pl.col("open_time") + timedelta(milliseconds=INTERVAL_MS[tf])).alias("_avail"),
        *[f.expr.alias(f"{f.name}_{tf}") for f in features],
    )
    return (
        bars.with_columns(
            (pl.col("open_time") + timedelta(milliseconds=base_ms)).alias("_close_at")
        )
        .join_asof(htf, left_on="_close_at", right_on="_avail", strategy="backward")
        .drop("_close_at", "_avail")
    )
