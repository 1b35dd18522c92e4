"""USD-M funding-rate records (`GET /fapi/v1/fundingRate`) as a typed frame."""

from __future__ import annotations

from typing import Any

import polars as pl

from quantlab.errors import SchemaError
from quantlab.schema import UTC_MS

_RAW = {"fundingTime": pl.Int64(), "fundingRate": pl.String(), "markPrice": pl.String()}


def parse_funding_rates(records: list[dict[str, Any]], symbol: str) -> pl.DataFrame:
    """Binance's funding records (decimal strings) in `FUNDING_RATES_SCHEMA`, sorted by time.

    `markPrice` is null where the record has none (older records, or an empty string).
    """
    try:
        raw = pl.from_dicts(records, schema=_RAW) if records else pl.DataFrame(schema=_RAW)
        df = raw.select(
            pl.lit("futures_um").alias("market"),
            pl.lit(symbol).alias("symbol"),
            pl.col("fundingTime").cast(UTC_MS).alias("funding_time"),
            pl.col("fundingRate").cast(pl.Float64).alias("funding_rate"),
            pl.when(pl.col("markPrice").str.strip_chars() != "")
            .then(pl.col("markPrice"))
            .cast(pl.Float64)
            .alias("mark_price"),
        )
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise SchemaError(
            f"funding records of {symbol} are not Binance's fundingRate objects "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); check the base URL"
        ) from None
    if df["funding_time"].null_count() or df["funding_rate"].null_count():
        raise SchemaError(
            f"funding records of {symbol} lack fundingTime or fundingRate; check the base URL"
        )
    return df.unique("funding_time", keep="last").sort("funding_time")
