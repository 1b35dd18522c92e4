"""Holes the exchange does not fill: asked again once, without repeating a candle in a batch."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from ingest.support import (
    HALT_OPEN,
    HOUR,
    MAR_2023,
    no_sleep,
    source_klines,
    stored,
    vision_without,
)
from ingest.support import (
    ingest_march as march,
)
from quantlab.exchange.replay import ReplayServer
from quantlab.ingest import RestSource
from quantlab.ingest._writer import BatchWriter

# Two candles of BTCUSDT 1h, 127 candles apart (fewer than a page of 1000), both before the
# real halt hour: the holes and the halt are asked for again as one coalesced range.
HOLE_A = MAR_2023 + (9 * 24 + 5) * HOUR  # 2023-03-10 05:00 UTC
HOLE_B = MAR_2023 + (14 * 24 + 12) * HOUR  # 2023-03-15 12:00 UTC


def gap_rows(catalog) -> list[tuple]:
    df = catalog.load("klines_gaps").sort("symbol", "gap_start")
    return [
        (r["symbol"], r["gap_start"], r["gap_end"], r["bars_missing"])
        for r in df.with_columns(
            pl.col("gap_start").dt.epoch("ms"), pl.col("gap_end").dt.epoch("ms")
        ).iter_rows(named=True)
    ]


def test_two_holes_fewer_than_a_page_apart_land_once_and_a_rerun_adds_nothing(catalog, tmp_path):
    root = vision_without(tmp_path / "exchange", "BTCUSDT", "2023-03", {HOLE_A, HOLE_B})
    want = source_klines("spot", "BTCUSDT", "1h", months=("2023-03",)).filter(
        ~pl.col("open_time").dt.epoch("ms").is_in([HOLE_A, HOLE_B])
    )
    with ReplayServer(root) as server:
        source = RestSource(server.base_url, {"sleep": no_sleep})
        try:
            first = march(catalog, source)
            assert first.ok, first.errors
            version = catalog.latest("klines")
            before = source.usage()[0]
            again = march(catalog, source)
            asked = source.usage()[0] - before
        finally:
            source.close()
    assert first.rows_added == first.series[0].rows_added == 31 * 24 - 3 == want.height
    assert_frame_equal(stored(catalog), want)
    assert first.gaps_recorded == first.known_gaps == 3
    assert gap_rows(catalog) == [
        ("BTCUSDT", HOLE_A, HOLE_A, 1),
        ("BTCUSDT", HOLE_B, HOLE_B, 1),
        ("BTCUSDT", HALT_OPEN, HALT_OPEN, 1),
    ]
    assert again.ok and again.rows_added == 0 and again.gaps_recorded == 0
    assert again.known_gaps == 3 and again.series[0].known_gap_bars == 3
    assert catalog.latest("klines") == version  # nothing written
    assert asked == 0  # the clock is read once per source: no klines asked for


def test_the_writer_never_hands_a_repeated_candle_to_the_catalog(catalog):
    rows = source_klines("spot", "BTCUSDT", "1h", months=("2023-03",))
    writer = BatchWriter(
        catalog, market="spot", interval="1h", config_hash="", batch_rows=10**6, flush_s=60
    )
    writer.add(rows.slice(0, 400))
    writer.add(rows.slice(300, 200))  # 100 candles again, in the same batch
    writer.add(rows.slice(450, 294))
    writer.flush()
    assert_frame_equal(stored(catalog), rows)
    assert catalog.lineage(catalog.latest("klines")).row_count == rows.height
