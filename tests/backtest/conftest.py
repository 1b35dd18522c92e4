"""Real shipped data for the engine tests: a month of BTC/ETH/SOL spot bars and their filters."""

from __future__ import annotations

import json
import zipfile

import polars as pl
import pytest

from helpers import ROOT, SAMPLE
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


FT = ROOT.parent / "shared" / "data" / "binance" / "freqtrade-futures"
PERP_SYMBOLS = ["BTCUSDT", "ETHUSDT"]
PERP_START, PERP_END = "2024-03-01", "2024-04-01"


def read_feather(name: str) -> pl.DataFrame:
    """A freqtrade feather file (date, open, high, low, close, volume) with ms-UTC dates."""
    path = FT / name
    if not path.exists():
        pytest.skip(f"{path} is not here; the shared freqtrade-futures data is needed")
    return pl.read_ipc(path).with_columns(pl.col("date").cast(pl.Datetime("ms", "UTC")))


def _window(df: pl.DataFrame, start: str = PERP_START, end: str = PERP_END) -> pl.DataFrame:
    lo = pl.lit(start).str.to_datetime(time_zone="UTC").cast(pl.Datetime("ms", "UTC"))
    hi = pl.lit(end).str.to_datetime(time_zone="UTC").cast(pl.Datetime("ms", "UTC"))
    return df.filter(pl.col("date") >= lo, pl.col("date") < hi)


def perp_frames(kind: str, symbols=PERP_SYMBOLS, start=PERP_START, end=PERP_END) -> pl.DataFrame:
    """Real USD-M 1h `futures` bars, `mark` klines or `funding_rate` records of `symbols`."""
    out = []
    for s in symbols:
        base = s.removesuffix("USDT")
        df = _window(read_feather(f"{base}_USDT_USDT-1h-{kind}.feather"), start, end)
        if kind == "funding_rate":
            df = df.select(
                pl.lit(s).alias("symbol"),
                pl.col("date").alias("funding_time"),
                pl.col("open").alias("funding_rate"),
            )
        else:
            df = df.select(
                pl.lit(s).alias("symbol"),
                pl.col("date").alias("open_time"),
                "open", "high", "low", "close", "volume",
                pl.lit(None, pl.Float64).alias("quote_volume"),
            )  # fmt: skip
        out.append(df)
    return pl.concat(out)


@pytest.fixture(scope="session")
def perp_bars() -> pl.DataFrame:
    return perp_frames("futures")


@pytest.fixture(scope="session")
def perp_marks() -> pl.DataFrame:
    return perp_frames("mark")


@pytest.fixture(scope="session")
def perp_funding() -> pl.DataFrame:
    return perp_frames("funding_rate")


@pytest.fixture(scope="session")
def perp_rules():
    raw = json.loads((SAMPLE / "api/exchangeInfo/futures_um.json").read_text())
    return venue_rules(parse_exchange_info(raw, "futures_um"), PERP_SYMBOLS, "futures_um")
