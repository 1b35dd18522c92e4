"""Real Binance klines shipped under data/sample, loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import helpers

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


SAMPLE_MONTHS = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))


def load_sample_klines(symbol: str) -> pl.DataFrame:
    """The 2023-2024 monthly bulk zips of one spot symbol (later files are tested in test_files.py)."""
    return helpers.load_sample_klines(symbol, SAMPLE_MONTHS)


@pytest.fixture(scope="session")
def real_klines() -> pl.DataFrame:
    """BTC, ETH and SOL spot 1h, 2023-01-01 to 2024-12-31, one series after the other."""
    return pl.concat([load_sample_klines(s) for s in SYMBOLS])
