"""Real market data for the engine tests: shipped spot klines and filters, shared USD-M perps.

Spot: `data/sample` (BTC/ETH/SOL 1h, 2023-2024, with the 2023-03-24 halt). USD-M: the real
freqtrade download shipped in `data/freqtrade` (BTC/ETH perp bars, mark klines and funding,
2022-11 to 2024-12, cut from ../shared/data/binance/freqtrade-futures; see its README).
"""

from __future__ import annotations

import json
import zipfile

import polars as pl

from helpers import ROOT, SAMPLE
from quantlab.exchange.exchange_info import parse_exchange_info
from quantlab.portfolio.venue import venue_rules
from quantlab.schema import BINANCE_KLINE_FIELDS, normalize_klines

KLINES = SAMPLE / "data/spot/monthly/klines"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
FT = ROOT / "data" / "freqtrade"
FT_FIXTURES = ROOT / "tests" / "fixtures" / "freqtrade"
PERP_SYMBOLS = ["BTCUSDT", "ETHUSDT"]
MS_UTC = pl.Datetime("ms", "UTC")


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


def spot_rules(symbols=SYMBOLS):
    return venue_rules(spot_exchange_info(), list(symbols), "spot")


def perp_rules(symbols=PERP_SYMBOLS):
    raw = json.loads((SAMPLE / "api/exchangeInfo/futures_um.json").read_text())
    return venue_rules(parse_exchange_info(raw, "futures_um"), list(symbols), "futures_um")


def read_feather(name: str) -> pl.DataFrame:
    """A freqtrade feather file (date, open, high, low, close, volume) with ms-UTC dates, from
    the shipped sample or, for February 2025's funding, tests/fixtures/freqtrade."""
    paths = [p for p in (FT / name, FT_FIXTURES / name) if p.exists()]
    assert paths, f"{FT / name} is missing: the shipped USD-M sample (data/freqtrade) is needed"
    # The two hold disjoint spans (to 2024-12, and 2025-02): one series.
    frames = [pl.read_ipc(p).with_columns(pl.col("date").cast(MS_UTC)) for p in paths]
    return pl.concat(frames).sort("date")


def utc(text: str) -> pl.Expr:
    return pl.lit(text).str.to_datetime(time_zone="UTC").cast(MS_UTC)


def perp_frames(kind: str, start: str, end: str, symbols=PERP_SYMBOLS, tf: str = "1h"):
    """Real USD-M `futures` bars, `mark` klines or `funding_rate` records in [start, end)."""
    out = []
    for s in symbols:
        base = s.removesuffix("USDT")
        df = read_feather(f"{base}_USDT_USDT-{tf}-{kind}.feather")
        df = df.filter(pl.col("date") >= utc(start), pl.col("date") < utc(end))
        if kind == "funding_rate":  # freqtrade keeps the rate in `open`
            df = df.select(
                pl.lit(s).alias("symbol"),
                pl.col("date").alias("funding_time"),
                pl.col("open").alias("funding_rate"),
            )
        else:  # freqtrade has no quote volume: null, never invented
            df = df.select(
                pl.lit(s).alias("symbol"),
                pl.col("date").alias("open_time"),
                "open", "high", "low", "close", "volume",
                pl.lit(None, pl.Float64).alias("quote_volume"),
            )  # fmt: skip
        out.append(df)
    return pl.concat(out)


# weight by symbol, per 6-hour block of the day: the band (0.5 -> 0.51), a min-notional order
# (0.0002), a book over 100% on spot (margin), a short on a long-only symbol (-0.1)
PATTERN = {
    "BTCUSDT": [0.5, 0.51, 0.2, 0.0],
    "ETHUSDT": [0.3, 0.0002, 0.6, -0.1],
    "SOLUSDT": [0.3, 0.4, 0.5, 0.0],
}


def pattern_targets(bars: pl.DataFrame, pattern: dict[str, list[float]]) -> pl.DataFrame:
    block = (pl.col("open_time").dt.hour() // 6 + pl.col("open_time").dt.day()) % 4
    weight = pl.lit(None, pl.Float64)
    for symbol, ws in pattern.items():
        for b, w in enumerate(ws):
            weight = pl.when((pl.col("symbol") == symbol) & (block == b)).then(w).otherwise(weight)
    return bars.select("symbol", "open_time", weight.alias("target_weight"))
