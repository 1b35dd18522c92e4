"""Column schemas of the market-data datasets, and Binance's raw kline layout."""

from __future__ import annotations

import polars as pl

from quantlab.errors import SchemaError

UTC_MS = pl.Datetime("ms", "UTC")

# Binance's 12 kline fields, in the order the REST API and bulk files use.
BINANCE_KLINE_FIELDS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)

KLINES_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.String(),
    "symbol": pl.String(),
    "interval": pl.String(),
    "open_time": UTC_MS,
    "close_time": UTC_MS,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "quote_volume": pl.Float64(),
    "trades": pl.Int64(),
    "taker_buy_base_volume": pl.Float64(),
    "taker_buy_quote_volume": pl.Float64(),
}
KLINES_KEY = ("market", "symbol", "interval", "open_time")
# Kline columns a source may not have (freqtrade keeps OHLCV only): such a source stores them
# null on every row of its series, never zero. The gate skips the checks that need them and
# the features stage leaves out the features that read them (see `absent_columns`).
SOURCE_OPTIONAL = ("quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume")
# How `ingest` lays klines out on disk: one folder per series.
KLINES_PARTITIONS = ("market", "interval", "symbol")

# Mark-price klines (USD-M `markPriceKlines`): prices only; the exchange sends no volume.
_MARK_COLUMNS = ("market", "symbol", "interval", "open_time", "close_time", "open", "high")
MARK_KLINES_SCHEMA: dict[str, pl.DataType] = {
    name: KLINES_SCHEMA[name] for name in (*_MARK_COLUMNS, "low", "close")
}

# Known missing candles (`klines_gaps`); `source` is null on rows written before it was kept.
GAPS_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.String(),
    "symbol": pl.String(),
    "interval": pl.String(),
    "gap_start": UTC_MS,
    "gap_end": UTC_MS,
    "bars_missing": pl.Int64(),
    "source": pl.String(),
    "confirmed_at": UTC_MS,
}
GAPS_KEY = ("market", "symbol", "interval", "gap_start")

# exchangeInfo's symbols and filters, one row per symbol of a snapshot.
EXCHANGE_INFO_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.String(),
    "symbol": pl.String(),
    "status": pl.String(),
    "base_asset": pl.String(),
    "quote_asset": pl.String(),
    "tick_size": pl.Float64(),
    "min_price": pl.Float64(),
    "max_price": pl.Float64(),
    "step_size": pl.Float64(),
    "min_qty": pl.Float64(),
    "max_qty": pl.Float64(),
    "min_notional": pl.Float64(),
}
EXCHANGE_INFO_KEY = ("market", "symbol")

# USD-M funding-rate records.
FUNDING_RATES_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.String(),
    "symbol": pl.String(),
    "funding_time": UTC_MS,
    "funding_rate": pl.Float64(),
    "mark_price": pl.Float64(),
}
FUNDING_RATES_KEY = ("market", "symbol", "funding_time")


def klines_from_rows(rows: list[list], market: str, symbol: str, interval: str) -> pl.DataFrame:
    """Turn Binance kline arrays (ints for times, strings for decimals) into the klines schema."""
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in BINANCE_KLINE_FIELDS]
    raw = pl.DataFrame(
        {name: list(col) for name, col in zip(BINANCE_KLINE_FIELDS, cols, strict=True)},
        schema={name: pl.String() for name in BINANCE_KLINE_FIELDS},
        strict=False,
    )
    return normalize_klines(raw, market, symbol, interval)


def normalize_klines(raw: pl.DataFrame, market: str, symbol: str, interval: str) -> pl.DataFrame:
    """Cast a frame with Binance's 12 kline columns (ms timestamps) to the klines schema."""
    return raw.select(
        pl.lit(market).alias("market"),
        pl.lit(symbol).alias("symbol"),
        pl.lit(interval).alias("interval"),
        pl.col("open_time").cast(pl.Int64).cast(UTC_MS),
        pl.col("close_time").cast(pl.Int64).cast(UTC_MS),
        *[
            pl.col(c).cast(pl.Float64)
            for c in ("open", "high", "low", "close", "volume", "quote_volume")
        ],
        pl.col("trades").cast(pl.Int64),
        pl.col("taker_buy_base_volume").cast(pl.Float64),
        pl.col("taker_buy_quote_volume").cast(pl.Float64),
    )


def conform_klines(df: pl.DataFrame) -> pl.DataFrame:
    """Cast a klines frame read back from storage (Delta keeps µs) to the exact schema.

    A frame that already has it comes back as it is: selecting would copy every column.
    """
    if list(df.schema.items()) == list(KLINES_SCHEMA.items()):
        return df
    return df.select([pl.col(name).cast(dtype) for name, dtype in KLINES_SCHEMA.items()])


def absent_columns(df: pl.DataFrame | pl.LazyFrame) -> tuple[str, ...]:
    """The `SOURCE_OPTIONAL` columns `df` lacks: not there, or null on every row (a frame
    with no rows lacks none). A column null on some rows only is a defect, not absent."""
    lf = df.lazy()
    names = lf.collect_schema().names()
    present = [c for c in SOURCE_OPTIONAL if c in names]
    counts = lf.select(pl.len().alias("_n"), *[pl.col(c).count() for c in present]).collect()
    if counts["_n"][0] == 0:
        return ()
    return tuple(c for c in SOURCE_OPTIONAL if c not in present or counts[c][0] == 0)


def require_columns(df: pl.DataFrame, columns: tuple[str, ...], name: str) -> None:
    """Raise SchemaError naming what `df` lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{name} lacks column(s) {missing}; it needs {list(columns)} (has {df.columns})"
        )
