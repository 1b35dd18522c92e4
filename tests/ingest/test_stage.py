"""The stage's `run_*` functions on the embedded default (a replay exchange over data/sample)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import SAMPLE
from ingest.support import HALT_OPEN, source_klines, stored
from quantlab import ingest
from quantlab.errors import ConfigError, PermanentExchangeError, TemporaryExchangeError
from quantlab.ingest.stage import resume_from
from quantlab.markets import load_markets
from quantlab.vocab import INTERVAL_MS


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


FEB_10 = utc(2026, 2, 10, 12)


def test_run_symbol_ingests_the_candles_closing_in_its_interval(ctx):
    # The 12:00 and 13:00 candles close in [12:00, 14:00); 13:00 is the real halt hour.
    first = ingest.run_symbol(
        ctx, "spot", "BTCUSDT", "1h", utc(2023, 3, 24, 12), utc(2023, 3, 24, 14)
    )
    assert first.rows_added == 1 and first.counts["gaps_recorded"] == 1
    table = stored(ctx.catalog)
    assert table["open_time"].dt.hour().to_list() == [12]
    gaps = ctx.catalog.load("klines_gaps")
    assert gaps["gap_start"].dt.epoch("ms").to_list() == [HALT_OPEN]
    # Cleared and run again: the same rows, the gap not asked for again.
    again = ingest.run_symbol(
        ctx, "spot", "BTCUSDT", "1h", utc(2023, 3, 24, 12), utc(2023, 3, 24, 14)
    )
    assert (
        again.rows_added == 0
        and again.counts["gaps_recorded"] == 0
        and again.counts["known_gaps"] == 1
    )
    assert_frame_equal(stored(ctx.catalog), table)


def test_run_symbol_futures_minutes_equal_the_source_rows(ctx):
    start, end = utc(2026, 2, 10, 0), utc(2026, 2, 10, 1)
    out = ingest.run_symbol(ctx, "futures_um", "AVAXUSDT", "1m", start, end)
    assert out.rows_added == 60
    expected = source_klines("futures_um", "AVAXUSDT", "1m").filter(
        pl.col("open_time").is_between(start, end, closed="left")
    )
    assert_frame_equal(stored(ctx.catalog), expected)


def test_run_symbol_refuses_a_window_the_exchange_has_not_closed(ctx):
    # The replay exchange's clock stops just after its last stored candle (2026-03-01).
    with pytest.raises(TemporaryExchangeError, match="not closed"):
        ingest.run_symbol(ctx, "spot", "BTCUSDT", "1h", utc(2026, 3, 1, 0), utc(2026, 3, 1, 2))


@pytest.mark.parametrize(
    ("next_ms", "want"),
    [
        (None, (100, None)),  # nothing stored: a new series starts at its interval
        (100, (100, None)),  # up to date
        (70, (70, None)),  # an outage within the lookback: resume from the first missing
        (50, (50, None)),
        (20, (50, (20, 50))),  # older than the lookback: the lookback, and the hole named
    ],
)
def test_resume_from(next_ms, want):
    assert resume_from(next_ms, 100, 50) == want


@pytest.mark.parametrize(
    ("market", "symbol", "interval", "end"),
    [("spot", "BTCUSDT", "1h", utc(2024, 6, 1, 12)), ("futures_um", "AVAXUSDT", "1m", FEB_10)],
)
def test_run_symbol_catches_up_a_six_hour_outage(ctx, market, symbol, interval, end):
    # Candles stored up to T-6h, then the scheduler was down: the run ending at T catches up.
    outage, day = end - timedelta(hours=6), timedelta(days=1)
    ingest.run_symbol(ctx, market, symbol, interval, outage - day, outage)
    assert stored(ctx.catalog)["close_time"].max() < outage
    start, lookback = end - timedelta(hours=1), timedelta(hours=24)
    out = ingest.run_symbol(ctx, market, symbol, interval, start, end, lookback=lookback)
    source = source_klines(market, symbol, interval)
    six_hours = source.filter(pl.col("open_time").is_between(outage, end, closed="left"))
    assert out.rows_added == six_hours.height == 6 * 3_600_000 // INTERVAL_MS[interval]
    assert out.caught_up_from == outage.isoformat() and out.not_fetched is None
    expected = source.filter(pl.col("open_time").is_between(outage - day, end, closed="left"))
    assert_frame_equal(stored(ctx.catalog), expected)
    # The next run resumes from its own interval: nothing to catch up, nothing added.
    again = ingest.run_symbol(ctx, market, symbol, interval, start, end, lookback=lookback)
    assert again.rows_added == 0 and again.caught_up_from is None


def test_run_symbol_without_history_ingests_only_its_interval(ctx):
    # A new series has nothing to resume from: its history is a backfill's job.
    end = utc(2024, 6, 1, 12)
    out = ingest.run_symbol(
        ctx, "spot", "ETHUSDT", "1h", end - timedelta(hours=1), end, lookback=timedelta(days=1)
    )
    assert out.rows_added == 1 and out.caught_up_from is None and out.not_fetched is None


def test_run_symbol_reports_a_hole_older_than_its_lookback(ctx, caplog):
    end = utc(2024, 6, 1, 12)
    start, outage = end - timedelta(hours=1), end - timedelta(hours=48)
    ingest.run_symbol(ctx, "spot", "BTCUSDT", "1h", outage - timedelta(hours=3), outage)
    with caplog.at_level(logging.WARNING, logger="quantlab.ingest"):
        out = ingest.run_symbol(
            ctx, "spot", "BTCUSDT", "1h", start, end, lookback=timedelta(hours=24)
        )
    # The lookback's candles are caught up; the older ones are named, with the backfill.
    source = source_klines("spot", "BTCUSDT", "1h")
    kept = source.filter(
        pl.col("open_time").is_between(outage - timedelta(hours=3), outage, "left")
    )
    caught = source.filter(pl.col("open_time").is_between(start - timedelta(hours=24), end, "left"))
    assert_frame_equal(stored(ctx.catalog), pl.concat([kept, caught]))
    hole = out.not_fetched
    assert (hole["start"], hole["end"]) == (
        outage.isoformat(),
        (start - timedelta(hours=24)).isoformat(),
    )
    command = (
        "quantlab data ingest --source rest --root "
        f"{ctx.config.exchange.replay_root} --market spot --symbols BTCUSDT --interval 1h "
        "--start 2024-05-30 --end 2024-06-01"
    )
    assert hole["backfill"] == command
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "spot BTCUSDT 1h" in record.getMessage() and command in record.getMessage()


def test_run_funding_catches_up_from_its_last_record_within_the_lookback(ctx, caplog):
    recorded = json.loads((SAMPLE / "api" / "fundingRate" / "BTCUSDT.json").read_text())
    times = [r["fundingTime"] for r in recorded]
    ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 1, 10))
    # The DAG's run for [Jan 12 00:00, 01:00) after two days down: Jan 10 and 11 come too.
    start, end = utc(2024, 1, 12), utc(2024, 1, 12, 1)
    out = ingest.run_funding(ctx, "BTCUSDT", start, end, refresh=True, lookback=timedelta(days=3))
    lo, hi = (int(t.timestamp() * 1000) for t in (utc(2024, 1, 1), end))
    table = ctx.catalog.load("funding_rates").sort("funding_time")
    assert table["funding_time"].dt.epoch("ms").to_list() == [t for t in times if lo <= t < hi]
    assert out.rows_added == 7 and out.not_fetched is None
    # Down longer than the lookback: the lookback is fetched, the older hole is named.
    start, end = utc(2024, 1, 20), utc(2024, 1, 20, 1)
    with caplog.at_level(logging.WARNING, logger="quantlab.ingest"):
        out = ingest.run_funding(ctx, "BTCUSDT", start, end, lookback=timedelta(days=3))
    assert out.rows_added == 3 * 3 + 1
    hole = out.not_fetched
    assert hole["end"] == utc(2024, 1, 17).isoformat()
    assert "run_funding" in hole["backfill"] and "BTCUSDT" in caplog.text


def test_run_funding_fetches_the_window_once(ctx):
    recorded = json.loads((SAMPLE / "api" / "fundingRate" / "BTCUSDT.json").read_text())
    lo, hi = int(utc(2024, 1, 1).timestamp() * 1000), int(utc(2024, 2, 1).timestamp() * 1000)
    want = [r for r in recorded if lo <= r["fundingTime"] < hi]
    out = ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 2, 1))
    assert out.rows_added == len(want) == 93
    table = ctx.catalog.load("funding_rates").sort("funding_time")
    assert table["funding_time"].dt.epoch("ms").to_list() == [r["fundingTime"] for r in want]
    assert table["funding_rate"].to_list() == [float(r["fundingRate"]) for r in want]
    version = ctx.catalog.latest("funding_rates")
    again = ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 2, 1))
    assert again.rows_added == 0 and ctx.catalog.latest("funding_rates") == version
    refreshed = ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 2, 1), refresh=True)
    assert refreshed.rows_added == 0
    assert ctx.catalog.load("funding_rates").height == 93


def test_run_funding_fetches_the_history_before_and_the_holes_between_stored_records(ctx):
    recorded = json.loads((SAMPLE / "api" / "fundingRate" / "BTCUSDT.json").read_text())
    lo, hi = int(utc(2024, 1, 1).timestamp() * 1000), int(utc(2024, 2, 1).timestamp() * 1000)
    want = [r["fundingTime"] for r in recorded if lo <= r["fundingTime"] < hi]
    # Recent records only (as the market-data DAG leaves them), with a two-day hole.
    ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 20), utc(2024, 1, 25))
    ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 27), utc(2024, 2, 1))
    before = ctx.catalog.load("funding_rates").height
    assert 0 < before < len(want)

    out = ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 2, 1))
    table = ctx.catalog.load("funding_rates").sort("funding_time")
    assert table["funding_time"].dt.epoch("ms").to_list() == want
    assert out.rows_added == len(want) - before
    version = ctx.catalog.latest("funding_rates")
    again = ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 2, 1))
    assert again.rows_added == 0 and ctx.catalog.latest("funding_rates") == version


def test_exchange_info_snapshots_are_written_when_they_change(ctx):
    spot = ingest.run_exchange_info(ctx, "spot")
    assert spot.counts["written"] and spot.counts["symbols"] == 9
    futures = ingest.run_exchange_info(ctx, "futures_um")
    assert futures.counts["written"] and futures.counts["symbols"] == 347
    again = ingest.run_exchange_info(ctx, "spot")
    assert not again.counts["written"] and again.ref == futures.ref
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
    assert default.catchup_lookback == timedelta(hours=24)
    days = tmp_path / "days.yaml"
    days.write_text("catchup_lookback: 2d\nmarkets: {spot: {symbols: [BTCUSDT]}}")
    assert load_markets(days).catchup_lookback == timedelta(days=2)
    bad = tmp_path / "markets.yaml"
    for text, message in [
        ("markets: {spot: {symbols: [BTCUSDT], intervalz: [1h]}}", "intervalz"),
        ("markets: {spot: {symbols: [BTCUSDT], funding_rates: true}}", "futures_um only"),
        ("markets: {spot: {symbols: [btc-usdt]}}", "not Binance symbols"),
        ("markets: {spot: {symbols: [BTCUSDT], intervals: [2m]}}", "unsupported"),
        ("markets: {}", "empty"),
        ("catchup_lookback: 1w\nmarkets: {spot: {symbols: [BTCUSDT]}}", "catchup_lookback"),
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


def test_a_mapped_run_reports_the_version_it_left_and_crosses_xcom_as_a_dict(ctx):
    klines = ingest.run_symbol(
        ctx, "spot", "BTCUSDT", "1h", utc(2023, 3, 24, 12), utc(2023, 3, 24, 14)
    )
    funding = ingest.run_funding(ctx, "BTCUSDT", utc(2024, 1, 1), utc(2024, 1, 3))
    assert klines.ref == ctx.catalog.latest("klines") and klines.dataset == "klines"
    assert funding.ref == ctx.catalog.latest("funding_rates") and funding.rows_added == 6
    for report in (klines, funding):
        assert ingest.IngestReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
