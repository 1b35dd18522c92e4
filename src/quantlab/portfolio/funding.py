"""USD-M funding events on the bar grid: when each is paid, at which price, on which position.

Funding is driven by the funding calendar in `funding_rates`, never by bar times (a 1d bar
would otherwise see one of three 8-hourly payments). Binance's `funding_time` carries ms
jitter (1667462400016), so each is bucketed to the nearest whole hour; nothing keys on exact
equality. payment = -qty * price * rate: a positive rate makes longs pay shorts.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quantlab.errors import SchemaError
from quantlab.schema import UTC_MS, require_columns

HOUR_MS = 3_600_000

# price_source codes, in the engine's event array and the funding table.
PRICE_SOURCES = ("mark", "funding_rates", "bar")


def funding_events(
    funding_rates: pl.DataFrame,
    bar_open_times: np.ndarray,
    symbols: list[str] | tuple[str, ...],
    mark_klines: pl.DataFrame | None = None,
    bar_prices: pl.DataFrame | None = None,
    end_ms: int | None = None,
) -> pl.DataFrame:
    """One row per funding event of `symbols` inside the bars' span, mapped to a bar.

    `bar_open_times`: the bar grid's open times in ms (sorted, unique); `end_ms`: where the last
    bar ends (events at or after it are outside the span; default: one bar step past the last
    open). Price: the mark-price kline's open at the funding time (`mark_klines`: symbol,
    open_time, open), else `funding_rates.mark_price`, else the symbol's bar open at or just
    after the funding time (`bar_prices`: symbol, open_time, open, close; its last close when
    no later bar exists); `price_source` says which. `t` is the last bar with open <= the
    funding time, `at_open` whether the time is that bar's open: an event at a bar's open is
    paid on the position held before that bar's fills, any other on the position after them.

    Columns: symbol, sym (index in `symbols`), funding_time, rate, price, price_source, t, at_open.
    """
    require_columns(funding_rates, ("symbol", "funding_time", "funding_rate"), "funding_rates")
    grid = np.asarray(bar_open_times, dtype=np.int64)
    if grid.size == 0:
        raise SchemaError("funding_events needs at least one bar")
    if end_ms is None:
        steps = np.diff(grid)
        end_ms = int(grid[-1] + (steps[steps > 0].min() if steps.size else HOUR_MS))
    mark_col = pl.col("mark_price") if "mark_price" in funding_rates.columns else pl.lit(None)
    ev = (
        funding_rates.filter(pl.col("symbol").is_in(list(symbols)))
        .select(
            pl.col("symbol").cast(pl.String),
            _bucket(pl.col("funding_time")).alias("funding_time"),
            pl.col("funding_rate").cast(pl.Float64).alias("rate"),
            mark_col.cast(pl.Float64).alias("fr_mark"),
        )
        .filter(
            pl.col("funding_time").dt.epoch("ms").is_between(int(grid[0]), end_ms, closed="left")
        )
        .sort("symbol", "funding_time")
    )
    bad = ev.filter(pl.col("rate").is_null() | pl.col("rate").is_nan())
    if bad.height:
        raise SchemaError(
            f"funding_rates has {bad.height} null/NaN rate(s), first: {bad.row(0, named=True)}; "
            "run the data-quality gate on funding_rates"
        )
    dupes = ev.filter(pl.struct("symbol", "funding_time").is_duplicated())
    if dupes.height:
        raise SchemaError(
            f"funding_rates has two records for one symbol and hour, first: "
            f"{dupes.row(0, named=True)}; deduplicate funding_rates before backtesting"
        )
    ev = ev.with_columns(pl.lit(None, pl.Float64).alias("kl_mark"))
    if mark_klines is not None:
        require_columns(mark_klines, ("symbol", "open_time", "open"), "mark_klines")
        marks = mark_klines.select(
            pl.col("symbol").cast(pl.String),
            pl.col("open_time").cast(UTC_MS).alias("funding_time"),
            pl.col("open").cast(pl.Float64).alias("kl_mark2"),
        ).unique(["symbol", "funding_time"], keep="first")
        ev = (
            ev.join(marks, on=["symbol", "funding_time"], how="left")
            .with_columns(pl.col("kl_mark2").alias("kl_mark"))
            .drop("kl_mark2")
        )
    ev = ev.with_columns(pl.lit(None, pl.Float64).alias("bar_px"))
    if bar_prices is not None:
        ev = _bar_fallback(ev, bar_prices)
    ok = pl.col("kl_mark").is_not_null() & (pl.col("kl_mark") > 0)
    ok_fr = pl.col("fr_mark").is_not_null() & (pl.col("fr_mark") > 0)
    ev = ev.with_columns(
        pl.when(ok).then("kl_mark").when(ok_fr).then("fr_mark").otherwise("bar_px").alias("price"),
        pl.when(ok)
        .then(pl.lit("mark"))
        .when(ok_fr)
        .then(pl.lit("funding_rates"))
        .otherwise(pl.lit("bar"))
        .alias("price_source"),
    )
    no_price = ev.filter(pl.col("price").is_null())
    if no_price.height:
        raise SchemaError(
            f"{no_price.height} funding event(s) have no price (no mark kline, no mark_price, no "
            f"bar), first: {no_price.row(0, named=True)}; pass bar_prices or mark_klines"
        )
    times = ev["funding_time"].dt.epoch("ms").to_numpy()
    t = np.searchsorted(grid, times, side="right") - 1
    index = {s: i for i, s in enumerate(symbols)}
    return ev.select(
        "symbol",
        pl.col("symbol").replace_strict(index, return_dtype=pl.Int64).alias("sym"),
        "funding_time",
        "rate",
        "price",
        "price_source",
        pl.Series("t", t, dtype=pl.Int64),
        pl.Series("at_open", grid[t] == times, dtype=pl.Boolean),
    ).sort("t", pl.col("at_open").not_(), "sym", "funding_time")


def _bucket(col: pl.Expr) -> pl.Expr:
    """A timestamp rounded to the nearest whole hour (Binance's funding jitter is a few ms)."""
    ms = col.cast(UTC_MS).dt.epoch("ms")
    return ((ms + HOUR_MS // 2) // HOUR_MS * HOUR_MS).cast(pl.Int64).cast(UTC_MS)


def _bar_fallback(ev: pl.DataFrame, bar_prices: pl.DataFrame) -> pl.DataFrame:
    """The symbol's bar open at or after each event; its last close before when none follows."""
    require_columns(bar_prices, ("symbol", "open_time", "open", "close"), "bar_prices")
    bars = bar_prices.select(
        pl.col("symbol").cast(pl.String),
        pl.col("open_time").cast(UTC_MS).alias("funding_time"),
        pl.col("open").cast(pl.Float64).alias("next_open"),
        pl.col("close").cast(pl.Float64).alias("last_close"),
    ).sort("symbol", "funding_time")
    ev = ev.sort("symbol", "funding_time")
    fwd = ev.join_asof(
        bars.drop("last_close"),
        on="funding_time",
        by="symbol",
        strategy="forward",
        check_sortedness=False,
    )
    both = fwd.join_asof(
        bars.drop("next_open"),
        on="funding_time",
        by="symbol",
        strategy="backward",
        check_sortedness=False,
    )
    return both.with_columns(pl.coalesce("next_open", "last_close").alias("bar_px")).drop(
        "next_open", "last_close"
    )
