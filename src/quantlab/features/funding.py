"""Funding-rate features for perpetuals, from a `funding_rates` frame (symbol, funding_time, funding_rate).

They are computed over each symbol's funding events, then joined to every bar
whose close time is at or after the event: a rate is used only once it was paid.
"""

from __future__ import annotations

import polars as pl

from quantlab.errors import SchemaError
from quantlab.features._primitives import rolling_z
from quantlab.features._registry import Feature, indicator

FUNDING_COLUMNS = ("symbol", "funding_time", "funding_rate")
_rate = pl.col("funding_rate")


@indicator(
    "funding_rate",
    family="funding",
    describe="the last funding rate paid at or before the bar's close",
    warmup=lambda: 0,
    unit="funding events",
)
def funding_rate() -> pl.Expr:
    return _rate


@indicator(
    "funding_mean_{n}",
    family="funding",
    describe="mean of the last {n} funding rates (21 at 8h = one week)",
    warmup=lambda n: n - 1,
    library=[{"n": 21}],
    unit="funding events",
)
def funding_mean(n: int) -> pl.Expr:
    return _rate.rolling_mean(n)


@indicator(
    "funding_z_{n}",
    family="funding",
    describe="z-score of the last funding rate against the last {n} rates",
    warmup=lambda n: n - 1,
    library=[{"n": 90}],
    unit="funding events",
)
def funding_z(n: int) -> pl.Expr:
    return rolling_z(_rate, n)


def conform_funding(funding: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Check and cast a funding frame; times to the bars' UTC milliseconds.

    One payment per symbol and time: two markets' rates mixed would count twice.
    """
    lf = funding.lazy()
    missing = [c for c in FUNDING_COLUMNS if c not in lf.collect_schema().names()]
    if missing:
        raise SchemaError(
            f"funding_rates lacks column(s) {missing}; it needs {list(FUNDING_COLUMNS)}"
        )
    events = lf.select(
        pl.col("symbol").cast(pl.String),
        pl.col("funding_time").cast(pl.Datetime("ms", "UTC")),
        _rate.cast(pl.Float64),
    ).collect()
    repeated = events.filter(pl.struct("symbol", "funding_time").is_duplicated())
    if repeated.height:
        first = repeated.row(0, named=True)
        raise SchemaError(
            f"funding_rates repeat {first['symbol']}'s payment at {first['funding_time']}; "
            "pass the funding rates of one market, one row per symbol and funding_time"
        )
    return events


def join_funding(bars: pl.LazyFrame, events: pl.LazyFrame, features: list[Feature]) -> pl.LazyFrame:
    """Add `features` of one symbol's funding `events` to its bars, as of each bar's close time."""
    per_event = events.sort("funding_time").select("funding_time", *[f.expr for f in features])
    return bars.join_asof(
        per_event, left_on="close_time", right_on="funding_time", strategy="backward"
    ).drop("funding_time")
