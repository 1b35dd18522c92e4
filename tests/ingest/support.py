"""Helpers of the ingest tests: the shipped real sample read independently of quantlab's readers."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import polars as pl

from helpers import SAMPLE
from quantlab.catalog import Catalog
from quantlab.schema import BINANCE_KLINE_FIELDS, KLINES_KEY, conform_klines, normalize_klines

MARKET_DIRS = {"spot": "data/spot", "futures_um": "data/futures/um"}
HOUR = 3_600_000
MINUTE = 60_000
JAN_2023 = 1672531200000
MAR_2023 = 1677628800000
APR_2023 = 1680307200000
JAN_2025 = 1735689600000
FEB_2026 = 1769904000000
MAR_2026 = 1772323200000
HALT_OPEN = 1679662800000  # 2023-03-24 13:00 UTC: the spot candle the halt removed


def source_klines(
    market: str, symbol: str, interval: str, root: Path = SAMPLE, months: tuple[str, ...] = ()
) -> pl.DataFrame:
    """Every row of the bulk zips of one series, read independently of quantlab's readers."""
    folder = root / MARKET_DIRS[market] / "monthly" / "klines" / symbol / interval
    parts = []
    for path in sorted(folder.glob("*.zip")):
        if months and not path.stem.endswith(months):
            continue
        with zipfile.ZipFile(path) as zf:
            text = zf.read(zf.namelist()[0])
        header = not text[:1].isdigit()
        raw = pl.read_csv(
            text,
            has_header=False,
            skip_rows=int(header),
            new_columns=list(BINANCE_KLINE_FIELDS),
            schema_overrides=dict.fromkeys(BINANCE_KLINE_FIELDS, pl.String()),
        )
        # Spot files store microseconds from 2025-01-01 on: back to milliseconds.
        us = pl.col("open_time").cast(pl.Int64) > 10**15
        raw = raw.with_columns(
            pl.when(us).then(pl.col(t).cast(pl.Int64) // 1000).otherwise(pl.col(t).cast(pl.Int64))
            for t in ("open_time", "close_time")
        )
        parts.append(raw)
    assert parts, f"no zips under {folder}"
    return sort(normalize_klines(pl.concat(parts), market, symbol, interval))


def sort(df: pl.DataFrame) -> pl.DataFrame:
    return conform_klines(df).sort(list(KLINES_KEY))


def stored(catalog: Catalog, market: str | None = None) -> pl.DataFrame:
    df = catalog.load("klines")
    return sort(df if market is None else df.filter(pl.col("market") == market))


def no_sleep(_: float) -> None:
    pass


def vision_without(
    dst: Path, symbol: str, month: str, drop: set[int], interval: str = "1h"
) -> Path:
    """A data.binance.vision tree at `dst` holding one real spot month of `symbol`, less the
    candles opening at `drop` (ms), with a matching `.CHECKSUM`: an exchange that lacks them."""
    name = f"{symbol}-{interval}-{month}"
    src = SAMPLE / MARKET_DIRS["spot"] / "monthly" / "klines" / symbol / interval / f"{name}.zip"
    with zipfile.ZipFile(src) as zf:
        lines = zf.read(f"{name}.csv").decode().splitlines(keepends=True)
    kept = [line for line in lines if int(line.split(",", 1)[0]) not in drop]
    assert len(kept) == len(lines) - len(drop), "every dropped candle is in the file"
    folder = dst / MARKET_DIRS["spot"] / "monthly" / "klines" / symbol / interval
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}.csv", "".join(kept))
    digest = hashlib.sha256((folder / f"{name}.zip").read_bytes()).hexdigest()
    (folder / f"{name}.zip.CHECKSUM").write_text(f"{digest}  {name}.zip\n")
    return dst


def ingest_march(catalog: Catalog, source, **kw):
    """Ingest BTCUSDT 1h spot candles of March 2023 from `source` (the halt month)."""
    from quantlab.ingest import ingest_klines

    return ingest_klines(
        catalog,
        source,
        market="spot",
        interval="1h",
        symbols=["BTCUSDT"],
        start_ms=MAR_2023,
        end_ms=APR_2023,
        **kw,
    )
