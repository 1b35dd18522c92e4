"""Triple-barrier labels: which of take-profit, stop-loss or the vertical barrier a trade meets first.

A trade entered at bar t's close gets a take-profit at close * exp(tp * w) and a
stop-loss at close * exp(-sl * w), where w = sigma * sqrt(vertical) and sigma is
the sd of the last `vol_window` one-bar log returns up to t (known at entry).
Bars t+1 .. t+vertical are scanned; with `touch: high_low` a bar touches a
barrier with its high or low, and a bar touching both counts as the stop (the
pessimistic reading, since the path inside a bar is unknown).

- `tb_label`: 1 take-profit, -1 stop-loss, 0 the vertical barrier came first.
- `tb_ret`: the log return at exit (at the barrier price, or the close at the vertical).
- `tb_bars`, `tb_time`: bars to exit and the close time of the exit bar. A label
  is known (non-null) only once resolved, so it depends on no bar after `tb_time`.
"""

from __future__ import annotations

import math

import polars as pl

from quantlab.config import BarrierConfig

BARRIER_COLUMNS = ("tb_label", "tb_ret", "tb_bars", "tb_time")


def with_barrier(bars: pl.LazyFrame, cfg: BarrierConfig, vertical: int) -> pl.LazyFrame:
    """Add the barrier columns to one symbol's time-sorted bars (with `_i`, the row number)."""
    close = pl.col("close")
    sigma = (close / close.shift(1)).log().rolling_std(cfg.vol_window)
    hi, lo = ("high", "low") if cfg.touch == "high_low" else ("close", "close")
    up, dn = pl.col("_tp"), pl.col("_sl")
    first_up, first_dn = pl.col("_first_up"), pl.col("_first_dn")
    label = pl.col("tb_label")
    at_vertical = close.shift(-vertical)
    return (
        bars.with_columns((sigma * math.sqrt(vertical)).alias("_w"))
        .with_columns(
            (cfg.tp_mult * pl.col("_w")).alias("_tp"), (-cfg.sl_mult * pl.col("_w")).alias("_sl")
        )
        .with_columns(
            pl.min_horizontal(
                pl.when((pl.col(hi).shift(-k) / close).log() >= up).then(k)
                for k in range(1, vertical + 1)
            ).alias("_first_up"),
            pl.min_horizontal(
                pl.when((pl.col(lo).shift(-k) / close).log() <= dn).then(k)
                for k in range(1, vertical + 1)
            ).alias("_first_dn"),
        )
        .with_columns(
            pl.when(pl.col("_w").is_null())
            .then(None)
            .when(first_dn.is_not_null() & (first_up.is_null() | (first_dn <= first_up)))
            .then(-1)
            .when(first_up.is_not_null())
            .then(1)
            .when(at_vertical.is_not_null())
            .then(0)
            .cast(pl.Int8)
            .alias("tb_label")
        )
        .with_columns(
            pl.when(label == 1)
            .then(up)
            .when(label == -1)
            .then(dn)
            .when(label == 0)
            .then((at_vertical / close).log())
            .alias("tb_ret"),
            pl.when(label == -1)
            .then(first_dn)
            .when(label == 1)
            .then(first_up)
            .when(label == 0)
            .then(vertical)
            .cast(pl.Int32)
            .alias("tb_bars"),
        )
        .with_columns(
            pl.col("close_time").gather(pl.col("_i") + pl.col("tb_bars")).alias("tb_time")
        )
    )
