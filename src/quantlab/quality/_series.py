"""The series of a klines (or mark klines) version, read one at a time for the gate.

`ingest` partitions klines by (market, interval, symbol), so a series reads only its own
files; the next one is read while the gate checks the current one. `lacking` says which
columns each series' source does not have (null on every row), so the gate validates
such series apart from the others, without the checks that read those columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext
from quantlab.quality._absent import AMOUNTS
from quantlab.schema import KLINES_PARTITIONS, KLINES_SCHEMA, SOURCE_OPTIONAL, conform_klines

SeriesKey = dict[str, str | None]


def key_tuple(key: SeriesKey) -> tuple[str | None, ...]:
    return tuple(key[c] for c in KLINES_PARTITIONS)


def lacking(ctx: RunContext, ref: DatasetRef) -> dict[tuple[str | None, ...], tuple[str, ...]]:
    """The `SOURCE_OPTIONAL` columns each series of a klines version has on no row (one
    narrow scan of the version); series that lack none are left out."""
    counts = (
        ctx.catalog.scan(ref)
        .group_by(KLINES_PARTITIONS)
        .agg(*[pl.col(c).count() for c in SOURCE_OPTIONAL])
        .collect()
    )
    out = {}
    for row in counts.iter_rows(named=True):
        lacks = tuple(c for c in SOURCE_OPTIONAL if row[c] == 0)
        if lacks:
            out[tuple(row[c] for c in KLINES_PARTITIONS)] = lacks
    return out


def series_of(
    ctx: RunContext, ref: DatasetRef, *, pad: bool = False
) -> tuple[list[SeriesKey], Callable[[SeriesKey], pl.DataFrame]]:
    """The (market, interval, symbol) series a klines version holds, in order, and how to
    read one in the klines schema. `ingest` partitions klines by those columns, so a series
    reads only its own files; a version written otherwise is read once and split. With
    `pad` (mark-price candles), the volume columns they lack are added as nulls."""
    scan = ctx.catalog.scan(ref)
    if pad:
        have = scan.collect_schema().names()
        scan = scan.with_columns(
            pl.lit(None, KLINES_SCHEMA[c]).alias(c) for c in AMOUNTS if c not in have
        )
    keys = ctx.catalog.partitions(ref, KLINES_PARTITIONS)
    if keys is not None:

        def read(key: SeriesKey) -> pl.DataFrame:
            match = [pl.col(c).eq_missing(pl.lit(v, pl.String)) for c, v in key.items()]
            return conform_klines(scan.filter(match).collect())

    else:
        split = conform_klines(scan.collect()).partition_by(KLINES_PARTITIONS, as_dict=True)
        keys = [dict(zip(KLINES_PARTITIONS, k, strict=True)) for k in split]

        def read(key: SeriesKey) -> pl.DataFrame:
            return split[tuple(key.values())]

    return sorted(keys, key=lambda k: [(v is None, v or "") for v in k.values()]), read


def read_ahead(
    read: Callable[[SeriesKey], pl.DataFrame], keys: list[SeriesKey]
) -> Iterator[pl.DataFrame]:
    """`read(key)` for each key in turn, the next one read while the caller works on this one
    (reading one series' files uses fewer cores than checking it)."""
    with ThreadPoolExecutor(1) as pool:
        ahead = [pool.submit(read, key) for key in keys[:1]]
        for i in range(len(keys)):
            current = ahead.pop()
            ahead.extend(pool.submit(read, key) for key in keys[i + 1 : i + 2])
            yield current.result()
