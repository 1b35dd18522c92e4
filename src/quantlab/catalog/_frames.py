"""How frames are shaped for Delta: storage timestamps and the partitions a merge touches."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def partitions_of(df: pl.DataFrame, columns: Sequence[str]) -> tuple[pl.Expr, list[str]]:
    """The partitions holding `df`'s rows, as a polars filter and as merge predicate terms.

    Only string partition columns without nulls are narrowed (the tables partition by
    market, interval and symbol); any other column is left unconstrained, which is exact,
    only slower.
    """
    within, sql = pl.lit(True), []
    for c in columns:
        if c not in df.columns or df[c].dtype != pl.String or df[c].null_count():
            continue
        values = df[c].unique().sort().to_list()
        within &= pl.col(c).is_in(values)
        quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
        sql.append(f"t.{c} IN ({quoted})")
    return within, sql


def to_storage(df: pl.DataFrame) -> pl.DataFrame:
    """Delta stores timestamps in microseconds; cast up front so merges compare like with like.

    quantlab's timestamps have millisecond precision (Binance's), and `scan` casts them back.
    """
    casts = [
        pl.col(name).cast(pl.Datetime("us", dtype.time_zone))
        for name, dtype in df.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_unit != "us"
    ]
    return df.with_columns(casts) if casts else df
