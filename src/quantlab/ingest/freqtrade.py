"""Read a freqtrade data folder: USD-M perpetual candles, mark-price candles and funding rates.

`freqtrade download-data --trading-mode futures` writes, per pair and timeframe,
`<BASE>_<QUOTE>_<QUOTE>-<tf>-futures.feather` (last-price candles), `-<tf>-mark.feather`
(mark-price candles) and `-<tf>-funding_rate.feather` (the rate in `open`), each with the
columns `date, open, high, low, close, volume` (`date`: the candle's open time, UTC).

freqtrade keeps OHLCV only. What the klines schema holds beyond it is derived only where
it is exact: `close_time = open_time + interval - 1 ms`. Quote volume, trade count and
taker volumes are stored null (never zero): the gate and the features stage treat them as
absent for these series (`quantlab.schema.SOURCE_OPTIONAL`). Mark candles carry no volume
(freqtrade's is always 0), so `mark_klines` has none. A funding record's `funding_time` is
the file's `date`: the fundingTime floored to the hour in the `-1h-` files, the raw
fundingTime (with its ms jitter) in the `-8h-` ones; its `mark_price` is the open of the
mark candle opening at that time (within a minute of jitter), null where there is none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

from quantlab.errors import DataError, SchemaError
from quantlab.schema import (
    FUNDING_RATES_SCHEMA,
    KLINES_SCHEMA,
    MARK_KLINES_SCHEMA,
    SOURCE_OPTIONAL,
    UTC_MS,
)
from quantlab.vocab import INTERVAL_MS

COLUMNS = ("date", "open", "high", "low", "close", "volume")
# Quote assets freqtrade pairs end in on Binance USD-M, longest first (FDUSD before USD...).
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD")
# How far after a mark candle's open a funding time may fall and still take its open:
# Binance stamps fundingTime a few ms after the hour.
_JITTER = timedelta(minutes=1)
_DOWNLOAD = (
    "freqtrade download-data --exchange binance --trading-mode futures --pairs {pair} "
    "--timeframes {tf} --candle-types futures mark funding_rate --data-format-ohlcv feather"
)


@dataclass(frozen=True)
class FreqtradeSeries:
    """One symbol's frames in quantlab's schemas; `files` are the paths read."""

    klines: pl.DataFrame
    mark_klines: pl.DataFrame
    funding_rates: pl.DataFrame
    files: tuple[Path, ...]


def pair_name(symbol: str) -> str:
    """freqtrade's file stem of a USD-M perpetual: BTCUSDT -> BTC_USDT_USDT."""
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            base = symbol[: -len(quote)]
            return f"{base}_{quote}_{quote}"
    raise SchemaError(
        f"cannot tell the quote asset of {symbol!r}; freqtrade files of USD-M perpetuals are "
        f"named <BASE>_<QUOTE>_<QUOTE> with QUOTE one of {list(QUOTES)}"
    )


def data_folder(root: Path) -> Path:
    """The folder holding the feather files: `root`, or freqtrade's `root/futures`."""
    root = Path(root)
    nested = root / "futures"
    if not any(root.glob("*-futures.feather")) and nested.is_dir():
        return nested
    return root


def candle_file(root: Path, symbol: str, interval: str, kind: str) -> Path:
    """The file of one candle type ("futures" or "mark"); DataError naming the fix if absent."""
    folder, pair = data_folder(root), pair_name(symbol)
    path = folder / f"{pair}-{interval}-{kind}.feather"
    if not path.is_file():
        raise DataError(
            f"{path} does not exist: the freqtrade folder {folder} has no {interval} {kind} "
            f"candles of {symbol}. Download them with `{_download(symbol, interval)}` (files "
            f"there: {_listing(folder, pair)})"
        )
    return path


def funding_file(root: Path, symbol: str, interval: str) -> Path:
    """The funding-rate file: the `interval` one, else the 1h one, else the 8h one."""
    folder, pair = data_folder(root), pair_name(symbol)
    for tf in dict.fromkeys((interval, "1h", "8h")):
        path = folder / f"{pair}-{tf}-funding_rate.feather"
        if path.is_file():
            return path
    raise DataError(
        f"{folder} has no funding_rate file of {symbol} ({pair}-{interval}-funding_rate.feather, "
        f"-1h- or -8h-). Download it with `{_download(symbol, interval)}` (files there: "
        f"{_listing(folder, pair)})"
    )


def read_feather(path: Path) -> pl.DataFrame:
    """A freqtrade OHLCV file: its six columns, `date` as ms UTC, strictly increasing."""
    try:
        raw = pl.read_ipc(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(
            f"{path} is not a readable Feather (Arrow IPC) file ({exc}); download it again "
            "with freqtrade (`--data-format-ohlcv feather`)"
        ) from exc
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"{path} lacks column(s) {missing}: a freqtrade OHLCV file has {list(COLUMNS)} "
            f"(it has {raw.columns}); point --root at freqtrade's data folder "
            "(user_data/data/binance) and do not convert the files"
        )
    date = raw.schema["date"]
    if not isinstance(date, pl.Datetime):
        raise SchemaError(
            f"{path}: column date is {date}, not a timestamp; freqtrade writes the candle's "
            "open time as a UTC timestamp: download the file again"
        )
    when = pl.col("date")
    if date.time_zone is None:  # freqtrade writes UTC; a naive stamp is read as UTC
        when = when.dt.replace_time_zone("UTC")
    df = raw.select(
        when.dt.convert_time_zone("UTC").cast(UTC_MS).alias("date"),
        *[pl.col(c).cast(pl.Float64) for c in COLUMNS[1:]],
    )
    ms = df["date"].dt.epoch("ms")
    bad = (ms.diff() <= 0).arg_true()
    if bad.len():
        i = int(bad[0])
        raise DataError(
            f"{path}: date is not strictly increasing at row {i} ({df['date'][i - 1]} then "
            f"{df['date'][i]}; {bad.len()} such row(s)); the file was appended to or edited. "
            "Download it again with freqtrade (`--erase` rewrites it)"
        )
    if df["date"].null_count():
        raise DataError(f"{path}: date has {df['date'].null_count()} null(s); download it again")
    return df


def read_series(
    root: Path,
    symbol: str,
    interval: str,
    *,
    market: str = "futures_um",
    start_ms: int | None = None,
    end_ms: int | None = None,
    funding_start_ms: int | None = None,
) -> FreqtradeSeries:
    """One symbol's klines, mark klines and funding rates, open/funding times in
    `[start_ms, end_ms)` (funding from `funding_start_ms` when given: the funding features'
    warm-up reaches back before the bars)."""
    if interval not in INTERVAL_MS:
        raise SchemaError(f"interval {interval!r} is not supported; use one of {list(INTERVAL_MS)}")
    step = timedelta(milliseconds=INTERVAL_MS[interval])
    paths = (
        candle_file(root, symbol, interval, "futures"),
        candle_file(root, symbol, interval, "mark"),
        funding_file(root, symbol, interval),
    )
    trades, mark, funding = (read_feather(p) for p in paths)
    keys = [pl.lit(market).alias("market"), pl.lit(symbol).alias("symbol")]
    bar = [*keys, pl.lit(interval).alias("interval"), pl.col("date").alias("open_time")]
    close_time = (pl.col("date") + step - timedelta(milliseconds=1)).alias("close_time")
    klines = _window(trades, start_ms, end_ms).select(
        *bar,
        close_time,
        *[pl.col(c) for c in ("open", "high", "low", "close", "volume")],
        *[pl.lit(None, KLINES_SCHEMA[c]).alias(c) for c in SOURCE_OPTIONAL],
    )
    marks = mark.select(*bar, close_time, "open", "high", "low", "close")
    rates = _window(funding, funding_start_ms or start_ms, end_ms).select(
        *keys, pl.col("date").alias("funding_time"), pl.col("open").alias("funding_rate")
    )
    return FreqtradeSeries(
        klines.select(list(KLINES_SCHEMA)),
        _window(marks.rename({"open_time": "date"}), start_ms, end_ms)
        .rename({"date": "open_time"})
        .select(list(MARK_KLINES_SCHEMA)),
        with_mark_price(rates, marks).select(list(FUNDING_RATES_SCHEMA)),
        paths,
    )


def with_mark_price(rates: pl.DataFrame, marks: pl.DataFrame) -> pl.DataFrame:
    """`rates` with `mark_price`: the open of the mark candle opening at (up to a minute of
    jitter before) each funding time; null where no mark candle opens there."""
    found = rates.sort("funding_time").join_asof(
        marks.select(pl.col("open_time"), pl.col("open").alias("mark_price")).sort("open_time"),
        left_on="funding_time",
        right_on="open_time",
        strategy="backward",
        tolerance=_JITTER,
    )
    return found.drop("open_time")


def _window(df: pl.DataFrame, start_ms: int | None, end_ms: int | None) -> pl.DataFrame:
    ms = pl.col("date").dt.epoch("ms")
    if start_ms is not None:
        df = df.filter(ms >= start_ms)
    if end_ms is not None:
        df = df.filter(ms < end_ms)
    return df


def _download(symbol: str, interval: str) -> str:
    pair = pair_name(symbol)
    base, quote, _ = pair.split("_")
    return _DOWNLOAD.format(pair=f"{base}/{quote}:{quote}", tf=interval)


def _listing(folder: Path, pair: str) -> str:
    names = sorted(p.name for p in folder.glob(f"{pair}-*.feather")) if folder.is_dir() else []
    return ", ".join(names) or "none of this pair"
