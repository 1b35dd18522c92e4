"""Real shipped data for the engine tests: a month of BTC/ETH/SOL spot bars and their filters."""

from __future__ import annotations

import json
import zipfile

import polars as pl
import pytest

from helpers import SAMPLE
from quantlab.exchange.exchange_info import parse_exchange_info
from quantlab.portfolio.venue import venue_rules
from quantlab.schema import BINANCE_KLINE_FIELDS, normalize_klines

KLINES = SAMPLE / "data/spot/monthly/klines"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def load_klines(symbol: str, month: str) -> pl.DataFrame:
    path = KLINES / symbol / "1h" / f"{symbol}-1h-{month}.zip"
    with zipfile.ZipFile(path) as zf:
        payload = zf.read(zf.namelist()[0])
    raw = pl.read_csv(
        payload,
        has_header=False,
        new_columns=list(BINANCE_KLINE_FIELDS),
        schema_overrides=dict.fromkeys(BINANCE_KLINE_FIELDS, pl.String),
    )
    return normalize_klines(raw, "spot", symbol, "1h")


def spot_bars(month: str = "2023-03") -> pl.DataFrame:
    return pl.concat([load_klines(s, month) for s in SYMBOLS])


def spot_exchange_info() -> pl.DataFrame:
    raw = json.loads((SAMPLE / "api/exchangeInfo/spot.json").read_text())
    return parse_exchange_info(raw, "spot")


@pytest.fixture(scope="session")
def march_bars() -> pl.DataFrame:
    """March 2023 spot 1h bars of BTC/ETH/SOL (real; holds the 2023-03-24 halt)."""
    return spot_bars("2023-03")


@pytest.fixture(scope="session")
def spot_rules():
    return venue_rules(spot_exchange_info(), SYMBOLS, "spot")
