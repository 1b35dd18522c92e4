"""Binance's REST klines (JSON arrays of 12 fields) straight into polars columns.

A page of 1000 klines becomes 12 typed columns with one `zip`, never 1000 Python rows; the
pages of one fetch are deduplicated, filtered and cast to the klines schema once, at the end.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from quantlab.errors import SchemaError
from quantlab.exchange._http import parse_json
from quantlab.schema import BINANCE_KLINE_FIELDS, normalize_klines

_INTS = frozenset({"open_time", "close_time", "trades"})
_FIELDS = len(BINANCE_KLINE_FIELDS)
# As Binance sends them: integer times and trade counts, decimals as exact text. The last
# field ("ignore") is left out.
RAW_SCHEMA: dict[str, pl.DataType] = {
    f: pl.Int64() if f in _INTS else pl.String() for f in BINANCE_KLINE_FIELDS[:-1]
}


def page_frame(body: bytes, path: str, params: dict[str, Any]) -> pl.DataFrame:
    """One page of klines as `RAW_SCHEMA` columns.

    A body that is not a JSON list (cut short, say) is a `BadBody`, fetched again; a kline
    that is not 12 numbers is a `SchemaError` naming the request.
    """
    rows = parse_json(body, list)
    # Checked a page at a time (C loops), not a row at a time in Python.
    if set(map(type, rows)) - {list} or set(map(len, rows)) - {_FIELDS}:
        bad = next(r for r in rows if not (isinstance(r, list) and len(r) == _FIELDS))
        raise SchemaError(
            f"GET {path} {params} returned a kline that is not Binance's 12-field array: "
            f"{bad!r}; check base_url."
        )
    if not rows:
        return pl.DataFrame(schema=RAW_SCHEMA)
    columns = list(zip(*rows, strict=True))[: len(RAW_SCHEMA)]
    # Free the 1000 row lists now: while they live, the garbage collector keeps them
    # moving to older generations, and then scans the whole heap far more often.
    del rows
    fields = zip(RAW_SCHEMA.items(), columns, strict=True)
    series = [_column(name, dtype, values) for (name, dtype), values in fields]
    page = pl.DataFrame(series)
    if any(s.null_count() for s in series):
        raise _not_numbers(page.filter(pl.any_horizontal(pl.all().is_null())), path, params)
    return page


def closed_klines(
    pages: list[pl.DataFrame],
    market: str,
    symbol: str,
    interval: str,
    window: tuple[int, int],
    now_ms: int,
) -> pl.DataFrame:
    """The klines schema from the pages of one fetch, sorted, one row per open time (the
    later page's when pages overlap): candles opening within `window` (inclusive ms) that
    closed before `now_ms`."""
    raw = pl.concat(pages, rechunk=True) if pages else pl.DataFrame(schema=RAW_SCHEMA)
    first, last = window
    raw = raw.filter(pl.col("open_time").is_between(first, last), pl.col("close_time") < now_ms)
    if not (raw["open_time"].diff().drop_nulls() > 0).all():  # pages overlap or come unsorted
        raw = raw.unique("open_time", keep="last").sort("open_time")
    try:
        return normalize_klines(raw, market, symbol, interval)
    except pl.exceptions.InvalidOperationError as exc:
        raise SchemaError(
            f"the exchange returned {symbol} {interval} klines with a value that is not a "
            f"number ({str(exc).splitlines()[0]}); check base_url."
        ) from None


def _column(name: str, dtype: pl.DataType, values: tuple[Any, ...]) -> pl.Series:
    try:
        return pl.Series(name, values, dtype=dtype)
    except (TypeError, OverflowError):
        # Not Binance's usual types (a time as text, a decimal as a number): read via text;
        # what is then not a number comes out null, and the caller reports it.
        return pl.Series(name, values, dtype=pl.String(), strict=False).cast(dtype, strict=False)


def _not_numbers(bad: pl.DataFrame, path: str, params: dict[str, Any]) -> SchemaError:
    return SchemaError(
        f"GET {path} {params} returned {bad.height} kline(s) with a value missing or not "
        f"a number, first {bad.row(0)}; check base_url."
    )
