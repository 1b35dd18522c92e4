"""The stage's `run_*` functions on the embedded default (a replay exchange over data/sample)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ingest.support import HALT_OPEN, SAMPLE, source_klines, stored
from quantlab import ingest
from quantlab.errors import ConfigError, PermanentExchangeError, TemporaryExchangeError
from quantlab.markets import load_markets


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_run_symbol_ingests_the_candles_closing_in_its_interval(ctx):
    # The 12:00 and 13:00 candles close in [12:00, 14:00); 13:00 is the real halt hour.
    first = ingest.run_symbol(
        ctx, "spot", "BTCUSDT", "1h", utc(2023, 3, 24, 12), utc(2023, 3, 24, 14)
    )
    assert first["rows_added"] == 1 and first["gaps_recorded"] == 1
    table = stored(ctx.catalog)
    assert table["open_time"].dt.hour().to_list() == [12]
    gaps = ctx.catalog.load("klines_gaps")
    assert gaps["gap_start"].dt.epoch("ms").to_list() == [HALT_OPEN]
    # Cleared and run again: the same rows, the gap not asked for again.
    again = ingest.run_symbol(
        ctx, "spot", "BTCUSDT", "1h", utc(2023, 3, 24, 12), utc(2023, 3, 24, 14)
    )
    assert again["rows_added"] == 0 and again["gaps_recorded"] == 0 and again["known_gaps"] == 1
    assert_frame_equal(stored(ctx.catalog), table)


def test_run_symbol_futures_minutes_equal_the_source_rows(ctx):
    start, end = utc(2026, 2, 10, 0), utc(2026, 2, 10, 1)
    out = ingest.run_symbol(ctx, "futures_um", "AVAXUSDT", "1m", start, end)
    assert out["rows_added"] == 60
    expected = source_klines("futures_um", "AVAXUSDT", "1m").filter(
        pl.col("open_time").is_between(start, end, closed="left")
    )
    assert_frame_equal(stored(ctx.catalog), expected)


def test_run_symbol_refuses_a_window_the_exchange_has_not_closed(ctx):
    # The replay exchange's clock stops just after its last stored candle (2026-03-01).
    with pytest.raises(TemporaryExchangeError, match="not closed"):
        ingest.run_symbol(ctx, "spot", "BTCUSDT", "1h", utc(2026, 3, 1, 0), utc(2026, 3, 1, 2))


def test_run_funding_fetches_the_window_once(ctx):
    recorded = json.loads((SAMPLE / "api" / "fundingRate" / "BTCUSDT.json").read_text())
    lo, hi = int(utc(2024, 1, 1).timestamp() * 1000), int(utc(2024, 2, 1).timestamp() * 1000)
    want = [r for r in recorded if lo <= r["fundingTime"] < hi]
    out = ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 2, 1))
    assert out["rows_added"] == len(want) == 93
    table = ctx.catalog.load("funding_rates").sort("funding_time")
    assert table["funding_time"].dt.epoch("ms").to_list() == [r["fundingTime"] for r in want]
    assert table["funding_rate"].to_list() == [float(r["fundingRate"]) for r in want]
    version = ctx.catalog.latest("funding_rates")
    again = ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 2, 1))
    assert again["rows_added"] == 0 and ctx.catalog.latest("funding_rates") == version
    refreshed = ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 2, 1), refresh=True)
    assert refreshed["rows_added"] == 0
    assert ctx.catalog.load("funding_rates").height == 93


def test_exchange_info_snapshots_are_written_when_they_change(ctx):
    spot = ingest.run_exchange_info(ctx, "spot")
    assert spot["written"] and spot["symbols"] == 9
    futures = ingest.run_exchange_info(ctx, "futures_um")
    assert futures["written"] and futures["symbols"] == 347
    again = ingest.run_exchange_info(ctx, "spot")
    assert not again["written"] and again["exchange_info"] == futures["exchange_info"]
    table = ctx.catalog.load("exchange_info")
    assert table.height == 9 + 347
    btc = table.filter(pl.col("market") == "spot", pl.col("symbol") == "BTCUSDT").row(0, named=True)
    raw = json.loads((SAMPLE / "api" / "exchangeInfo" / "spot.json").read_text())
    (entry,) = [s for s in raw["symbols"] if s["symbol"] == "BTCUSDT"]
    filters = {f["filterType"]: f for f in entry["filters"]}
    assert btc["tick_size"] == float(filters["PRICE_FILTER"]["tickSize"])
    assert btc["step_size"] == float(filters["LOT_SIZE"]["stepSize"])
    assert btc["snapshot_time"].timestamp() * 1000 == raw["serverTime"]


def test_markets_config(tmp_path):
    default = load_markets()
    assert {t["symbol"] for t in default.symbol_tasks()} >= {"BTCUSDT", "ETHUSDT"}
    assert default.funding_symbols() == ["BTCUSDT"]
    bad = tmp_path / "markets.yaml"
    for text, message in [
        ("markets: {spot: {symbols: [BTCUSDT], intervalz: [1h]}}", "intervalz"),
        ("markets: {spot: {symbols: [BTCUSDT], funding_rates: true}}", "futures_um only"),
        ("markets: {spot: {symbols: [btc-usdt]}}", "not Binance symbols"),
        ("markets: {spot: {symbols: [BTCUSDT], intervals: [2m]}}", "unsupported"),
        ("markets: {}", "empty"),
    ]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_markets(bad)


def test_universe_funding_covers_the_perpetuals_and_the_features_warm_up(tmp_path):
    from helpers import write_config
    from quantlab.context import RunContext
    from quantlab.features import resolve

    for name in ("spot", "um", "none"):
        (tmp_path / name).mkdir()
    spot = RunContext.load(write_config(tmp_path / "spot"))
    assert ingest.run_universe_funding(spot) is None  # a spot universe has no funding

    universe = {"market": "futures_um", "symbols": ["BTCUSDT"], "start": "2024-01-01"}
    ctx = RunContext.load(write_config(tmp_path / "um", universe={**universe, "end": "2024-02-01"}))
    ref = ingest.run_universe_funding(ctx)
    assert ref is not None and ref.name == "funding_rates"
    table = ctx.catalog.load(ref.name, ref.version).sort("funding_time")
    # The funding features' longest window (funding_z_90 by default) is filled from the start.
    cfg = ctx.config.features
    warmup = max(resolve(name, cfg).warmup for name in cfg.funding)
    assert warmup >= 89
    first = table["funding_time"][0]
    assert utc(2023, 12, 1) < first < utc(2024, 1, 1)
    before = table.filter(pl.col("funding_time") < utc(2024, 1, 1)).height
    assert before >= warmup + 1
    assert table["funding_time"][-1] < utc(2024, 2, 1)
    recorded = json.loads((SAMPLE / "api" / "fundingRate" / "BTCUSDT.json").read_text())
    lo = int(first.timestamp() * 1000)
    hi = int(utc(2024, 2, 1).timestamp() * 1000)
    assert table.height == len([r for r in recorded if lo <= r["fundingTime"] < hi])

    # The replay exchange lists AVAXUSDT but has no funding recorded for it, and says so:
    # the run fails at once with that message (not -1121, which would call it unknown).
    other = {**universe, "symbols": ["AVAXUSDT"], "end": "2024-02-01"}
    unknown = RunContext.load(write_config(tmp_path / "none", universe=other))
    with pytest.raises(PermanentExchangeError, match=r"no funding rates recorded for AVAXUSDT"):
        ingest.run_universe_funding(unknown)
