"""Read a klines file a user brings (Binance CSV, a bulk zip, or parquet) into the klines schema.

Anything that cannot be read as klines at all raises SchemaError naming the line and
field (`line 17: expected 12 fields, got 9`); values that parse but are wrong (a
negative volume, an empty close) are left for the validation checks to report.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from quantlab.errors import SchemaError
from quantlab.exchange import read_zip_member
from quantlab.schema import BINANCE_KLINE_FIELDS, KLINES_SCHEMA, UTC_MS

_INTS = ("open_time", "close_time", "trades")
_FLOATS = tuple(f for f in BINANCE_KLINE_FIELDS if f not in (*_INTS, "ignore"))
_INT_TEXT = r"^-?[0-9]+$"
_FLOAT_TEXT = r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
US_THRESHOLD = 10**14  # an open time above this is in µs: 1e14 ms is the year 5138
_HEADER = r"^\s*[A-Za-z_][A-Za-z0-9_ ]*(?:,\s*[A-Za-z_][A-Za-z0-9_ ]*){11}\s*$"  # 12 names
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\d+[smhdwM])-")


@dataclass(frozen=True)
class KlinesFile:
    """A file read into the klines schema; `first_line` is the file line of row 0 (CSV only)."""

    frame: pl.DataFrame
    first_line: int | None
    notes: tuple[str, ...] = ()

    def row_label(self, row: int) -> str:
        return f"line {row + self.first_line}" if self.first_line is not None else f"row {row}"


def symbol_from_name(path: Path) -> str | None:
    """`BTCUSDT` from data.binance.vision's `BTCUSDT-1h-2023-03.csv` (or `.zip`)."""
    m = _NAME.match(path.name)
    return m["symbol"] if m else None


def read_klines_file(path: Path, *, market: str, symbol: str | None, interval: str) -> KlinesFile:
    """Read `path` by its content: a zip holding one CSV, parquet, or a kline CSV.

    Without `symbol`, a CSV's symbol comes from its data.binance.vision name
    (`BTCUSDT-1h-2023-03.csv`), else it is `UNKNOWN`. A parquet file's own symbol column
    wins; `symbol` then selects its rows.
    """
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise SchemaError(f"cannot read {path}: {exc.strerror or exc}") from None
    if blob[:4] == b"PAR1":
        return _read_parquet(blob, path, market=market, symbol=symbol, interval=interval)
    if blob[:4] == b"PK\x03\x04":
        blob = _unzip(blob, path)
    symbol = symbol or symbol_from_name(path) or "UNKNOWN"
    return read_klines_csv(blob, str(path), market=market, symbol=symbol, interval=interval)


def _unzip(blob: bytes, path: Path) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise SchemaError(f"{path} holds {len(names)} files; a klines zip holds one CSV")
            return read_zip_member(zf, names[0], str(path))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SchemaError(f"{path} is not a readable zip: {exc}") from None


def read_klines_csv(
    data: bytes, source: str, *, market: str, symbol: str, interval: str
) -> KlinesFile:
    """Binance's 12-column kline CSV, with or without a header line, times in ms or µs."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"{source} is not a text CSV (byte {exc.start} is not UTF-8); pass a kline CSV, "
            "a data.binance.vision zip or a parquet file"
        ) from None
    lines = pl.Series("line", text.split("\n"), pl.String).str.strip_suffix("\r")
    while lines.len() and lines[-1] == "":  # the newline that ends the last row
        lines = lines.head(-1)
    if lines.len() == 0:
        raise SchemaError(f"{source} is empty; it holds no kline rows")
    header = bool(re.match(_HEADER, lines[0]))
    body = lines.slice(1) if header else lines
    first_line = 2 if header else 1
    if body.len() == 0:
        raise SchemaError(f"{source} holds a header line and no kline rows")

    n = len(BINANCE_KLINE_FIELDS)
    fields = body.str.split(",")
    counts = fields.list.len()
    bad = (counts != n).arg_true()
    if bad.len():
        i = int(bad[0])
        where = f"{source} line {i + first_line}"
        if body[i] == "":
            raise SchemaError(f"{where}: the line is empty; expected {n} comma-separated fields")
        raise SchemaError(f"{where}: expected {n} fields, got {counts[i]}: {body[i][:80]!r}")
    raw = pl.DataFrame(
        {name: fields.list.get(i).str.strip_chars() for i, name in enumerate(BINANCE_KLINE_FIELDS)}
    )
    _check_numbers(raw, source, first_line)
    frame = raw.select(
        pl.lit(market).alias("market"),
        pl.lit(symbol).alias("symbol"),
        pl.lit(interval).alias("interval"),
        *[_number(c, pl.Int64) for c in ("open_time", "close_time")],
        *[_number(c, pl.Float64) for c in ("open", "high", "low", "close", "volume")],
        _number("quote_volume", pl.Float64),
        _number("trades", pl.Int64),
        _number("taker_buy_base_volume", pl.Float64),
        _number("taker_buy_quote_volume", pl.Float64),
    )
    frame, notes = _to_ms(frame)
    return KlinesFile(frame.select(list(KLINES_SCHEMA)), first_line, notes)


def _number(column: str, dtype: pl.DataType) -> pl.Expr:
    """An empty field is a missing value (null) for the checks to report; the rest parse."""
    col = pl.col(column)
    return pl.when(col != "").then(col).cast(dtype).alias(column)


def _check_numbers(raw: pl.DataFrame, source: str, first_line: int) -> None:
    """Raise at the first field that is neither empty nor a plain number of its kind."""
    wrong = [
        (
            ~pl.col(c).str.contains(_INT_TEXT if c in _INTS else _FLOAT_TEXT) & (pl.col(c) != "")
        ).alias(c)
        for c in (*_INTS, *_FLOATS)
    ]
    flags = raw.select(wrong)
    any_bad = flags.select(pl.any_horizontal(pl.all())).to_series()
    if not any_bad.any():
        return
    i = int(any_bad.arg_true()[0])
    column = next(c for c in flags.columns if flags[c][i])
    kind = "an integer" if column in _INTS else "a number"
    raise SchemaError(
        f"{source} line {i + first_line}, field {column}: {raw[column][i]!r} is not {kind}"
    )


def _to_ms(frame: pl.DataFrame) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Times as UTC datetimes; a file whose every open time is in µs (spot from 2025) is converted.

    A file mixing units is left alone: its µs rows fail `open_time_in_range`.
    """
    ot = frame["open_time"].drop_nulls()
    in_us = ot.len() > 0 and bool((ot >= US_THRESHOLD).all())
    notes: tuple[str, ...] = ()
    if in_us:
        frame = frame.with_columns(pl.col("open_time", "close_time") // 1000)
        notes = ("times are in microseconds (Binance spot files from 2025 on); read as ms",)
    return frame.with_columns(pl.col("open_time", "close_time").cast(UTC_MS)), notes


def _read_parquet(
    blob: bytes, path: Path, *, market: str, symbol: str | None, interval: str
) -> KlinesFile:
    """A parquet file in the klines schema; series columns it lacks come from the arguments."""
    try:
        df = pl.read_parquet(io.BytesIO(blob))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SchemaError(f"{path} is not a readable parquet file: {exc}") from None
    if symbol is not None and "symbol" in df.columns:
        df = df.filter(pl.col("symbol") == symbol)
        if df.is_empty():
            raise SchemaError(f"{path} holds no rows of symbol {symbol}")
    symbol = symbol or symbol_from_name(path) or "UNKNOWN"
    fill = {"market": market, "symbol": symbol, "interval": interval}
    df = df.with_columns(pl.lit(v).alias(k) for k, v in fill.items() if k not in df.columns)
    missing = [c for c in KLINES_SCHEMA if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{path} lacks klines column(s) {missing}; a klines parquet has {list(KLINES_SCHEMA)}"
        )
    casts = []
    for name, dtype in KLINES_SCHEMA.items():
        got = df.schema[name]
        if isinstance(dtype, pl.Datetime):
            if isinstance(got, pl.Datetime):
                col = pl.col(name)
                col = col.dt.replace_time_zone("UTC") if got.time_zone is None else col
                casts.append(col.dt.convert_time_zone("UTC").cast(UTC_MS))
            elif got.is_integer():
                casts.append(pl.col(name).cast(UTC_MS))
            else:
                raise SchemaError(
                    f"{path} column {name!r} is {got}; expected epoch ms or a datetime"
                )
        else:
            casts.append(pl.col(name).cast(dtype, strict=True))
    try:
        frame = df.with_columns(casts)
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(
            f"{path}: a column does not cast to the klines schema ({str(exc).splitlines()[0]})"
        ) from None
    extra = [c for c in frame.columns if c not in KLINES_SCHEMA]
    return KlinesFile(frame.select(*KLINES_SCHEMA, *extra), None)
