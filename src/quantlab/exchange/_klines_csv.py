"""Binance's 12-column kline CSVs, as data.binance.vision zips them, read by polars.

Spot files store µs from 2025-01-01 and ms before; futures files store ms and start with a
header line. Both come out the same: 12 columns named like `BINANCE_KLINE_FIELDS`, times in ms.
"""

from __future__ import annotations

import io
import zipfile
import zlib

import polars as pl

from quantlab.errors import SchemaError
from quantlab.schema import BINANCE_KLINE_FIELDS

# An open time above this is in µs: 1e14 ms is the year 5138, 1e14 µs is 1973.
US_THRESHOLD = 10**14
_TIMES = ("open_time", "close_time")
_INTS = (*_TIMES, "trades")
_TYPED = {
    f: pl.Int64() if f in _INTS else pl.String() if f == "ignore" else pl.Float64()
    for f in BINANCE_KLINE_FIELDS
}
_TEXT = dict.fromkeys(BINANCE_KLINE_FIELDS, pl.String())
_NUMBER = r"^-?[0-9]+(?:\.[0-9]+)?$"
# The most a zipped CSV may inflate to. The largest file Binance publishes that a user may
# bring is a month of 1s klines, 2,678,400 rows of about 150 bytes (~400 MB); a month of 1m
# klines is ~7 MB. Past this a zip is a zip bomb, not klines, and is refused before it fills
# memory.
MAX_INFLATED_BYTES = 512 * 1024**2


def unzip_csv(blob: bytes, source: str) -> bytes:
    """The one CSV inside a bulk zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise SchemaError(
                    f"{source} holds {names or 'no CSV'}, not the one CSV data.binance.vision "
                    "zips; delete it and download it again"
                )
            return read_zip_member(zf, names[0], source)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise SchemaError(
            f"{source} is not a readable zip ({exc}); delete it and download it again"
        ) from None


def read_zip_member(zf: zipfile.ZipFile, name: str, source: str) -> bytes:
    """Member `name` of `zf`, refused when it inflates past `MAX_INFLATED_BYTES`.

    The size the zip declares is checked before inflating, and the read stops one byte past
    the cap whatever the zip declares, so a crafted zip never fills memory.
    """
    limit = MAX_INFLATED_BYTES
    declared = zf.getinfo(name).file_size
    data = b""
    if declared <= limit:
        with zf.open(name) as member:
            data = member.read(limit + 1)
    if declared > limit or len(data) > limit:
        raise SchemaError(
            f"{source}: {name} inflates to more than {limit:,} bytes, the cap for one klines "
            "file (a month of 1s klines is about 400 MB); it is not a data.binance.vision "
            "file: delete it"
        )
    return data


def read_kline_csv(data: bytes, source: str, *, text: bool = False) -> pl.DataFrame:
    """Rows of a kline CSV: Int64 ms times and trades, and Float64 decimals (or, with `text`,
    every value but the times as the file's exact text, as the REST API sends them).

    Blank lines are skipped; any other line that is not 12 numbers is a `SchemaError`
    naming `source` and the line.
    """
    schema = _TEXT if text else _TYPED
    header = not data.lstrip()[:1].isdigit()
    if not data.strip() or (header and b"\n" not in data.strip()):
        return pl.DataFrame(schema={**schema, **dict.fromkeys(_TIMES, pl.Int64())})
    try:
        df = pl.read_csv(
            data,
            has_header=False,
            skip_rows=int(header),
            new_columns=list(BINANCE_KLINE_FIELDS),
            schema=schema,
        )
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(
            f"{source} is not Binance's 12-column kline CSV ({str(exc).splitlines()[0]}); "
            "delete it and download it again"
        ) from None
    blank = pl.all_horizontal(pl.col(f).is_null() for f in BINANCE_KLINE_FIELDS)
    ok = pl.all_horizontal(pl.col(f).is_not_null() for f in BINANCE_KLINE_FIELDS)
    if text:
        ok = pl.all_horizontal(pl.col(f).str.contains(_NUMBER) for f in BINANCE_KLINE_FIELDS)
    bad = df.with_row_index("_line").filter(~blank & ~ok.fill_null(False))
    if bad.height:
        line = int(bad["_line"][0]) + 1 + int(header)
        values = [str(v) for v in bad.row(0)[1:] if v is not None]
        raise SchemaError(
            f"{source}:{line} is not a row of 12 plain numbers: {','.join(values)[:80]!r}"
        )
    df = df.filter(~blank)
    return df.with_columns(
        pl.when(pl.col(t).cast(pl.Int64) >= US_THRESHOLD)
        .then(pl.col(t).cast(pl.Int64) // 1000)
        .otherwise(pl.col(t).cast(pl.Int64))
        .alias(t)
        for t in _TIMES
    )
