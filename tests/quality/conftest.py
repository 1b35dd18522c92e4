"""Real Binance klines shipped under data/sample, loaded once per test session."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest

from quantlab.schema import BINANCE_KLINE_FIELDS, normalize_klines

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def load_sample_klines(symbol: str, interval: str = "1h") -> pl.DataFrame:
    """The 2023-2024 monthly bulk zips of one spot symbol (headerless 12-column CSVs, ms).

    Later spot files store µs (see test_files.py for those), so they are left out here.
    """
    folder = SAMPLE / "data" / "spot" / "monthly" / "klines" / symbol / interval
    zips = sorted(folder.glob(f"{symbol}-{interval}-202[34]-*.zip"))
    assert zips, f"no sample klines under {folder}"
    parts = []
    for path in zips:
        with zipfile.ZipFile(path) as zf:
            (name,) = zf.namelist()
            parts.append(
                pl.read_csv(
                    zf.read(name),
                    has_header=False,
                    new_columns=list(BINANCE_KLINE_FIELDS),
                    schema_overrides={f: pl.String() for f in BINANCE_KLINE_FIELDS},
                )
            )
    return normalize_klines(pl.concat(parts), "spot", symbol, interval)


@pytest.fixture(scope="session")
def real_klines() -> pl.DataFrame:
    """BTC, ETH and SOL spot 1h, 2023-01-01 to 2024-12-31, one series after the other."""
    return pl.concat([load_sample_klines(s) for s in SYMBOLS])
