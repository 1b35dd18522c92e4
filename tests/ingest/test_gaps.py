"""Known gaps: confirmed by the exchange (REST over a bulk file), recorded with their source,
asked for again on request, cleared, and cut to a window."""

from __future__ import annotations

from dataclasses import replace

import polars as pl
import pytest
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
from quantlab.catalog import DATASETS, Catalog
from quantlab.ingest import (
    BulkSource,
    GapWindow,
    RestSource,
    clear_gaps,
    ingest_klines,
    read_gaps,
)
from quantlab.ingest._gaps import cut_gaps, gaps_frame
from quantlab.schema import GAPS_SCHEMA

HOLE = MAR_2023 + (9 * 24 + 5) * HOUR  # 2023-03-10 05:00 UTC: on the exchange, not in the file
MARCH = source_klines("spot", "BTCUSDT", "1h", months=("2023-03",))


def rows(catalog) -> list[tuple]:
    """(start, end, bars, source) of each known gap."""
    df = read_gaps(catalog).with_columns(pl.col("gap_start", "gap_end").dt.epoch("ms"))
    return [(r[3], r[4], r[5], r[6]) for r in df.iter_rows()]


@pytest.fixture
def files(tmp_path):
    """A bulk file of BTCUSDT 2023-03 that lacks a candle the exchange has."""
    return vision_without(tmp_path / "files", "BTCUSDT", "2023-03", {HOLE})


@pytest.fixture
def exchange(replay):
    source = RestSource(replay.base_url, {"sleep": no_sleep})
    yield source
    source.close()


def test_a_bulk_hole_is_asked_of_rest_when_rest_is_configured(catalog, files, exchange):
    result = march(catalog, BulkSource(files, rest=exchange))
    assert result.ok and result.rows_added == MARCH.height == 31 * 24 - 1
    assert_frame_equal(stored(catalog), MARCH)  # the candle the file lacked came from REST
    assert rows(catalog) == [(HALT_OPEN, HALT_OPEN, 1, "rest")]  # the halt: REST's word
    confirmed = read_gaps(catalog)["confirmed_at"][0]
    assert confirmed is not None and confirmed.year >= 2025  # when the run confirmed it


def test_without_rest_the_file_confirms_its_holes_and_a_recheck_asks_again(
    catalog, files, exchange
):
    first = march(catalog, BulkSource(files))
    assert first.ok and first.rows_added == MARCH.height - 1
    assert rows(catalog) == [(HOLE, HOLE, 1, "vision"), (HALT_OPEN, HALT_OPEN, 1, "vision")]

    with_rest = BulkSource(files, rest=exchange)
    before = exchange.usage()[0]
    plain = march(catalog, with_rest)
    assert plain.rows_added == 0 and exchange.usage()[0] == before + 1  # the clock only
    assert [r[3] for r in rows(catalog)] == ["vision", "vision"]

    again = march(catalog, with_rest, recheck_gaps=True)
    assert again.ok and again.rows_added == 1 and again.gaps_recorded == 1
    assert_frame_equal(stored(catalog), MARCH)
    assert rows(catalog) == [(HALT_OPEN, HALT_OPEN, 1, "rest")]  # the filled hole is gone
    assert again.known_gaps == 1


def test_a_cleared_gap_is_asked_for_by_the_next_ingest(catalog, exchange):
    march(catalog, exchange)
    assert rows(catalog) == [(HALT_OPEN, HALT_OPEN, 1, "rest")]
    assert clear_gaps(catalog, GapWindow(market="futures_um"))[0].is_empty()  # none match
    cleared, ref = clear_gaps(catalog, GapWindow(symbols=("BTCUSDT",)))
    assert cleared.height == 1 and ref is not None
    assert read_gaps(catalog).is_empty()
    lineage = catalog.lineage(ref)
    assert lineage.inputs == {"klines_gaps": ref.version - 1} and lineage.row_count == 0

    before = exchange.usage()[0]
    again = march(catalog, exchange)
    assert again.ok and again.rows_added == 0 and again.gaps_recorded == 1
    assert exchange.usage()[0] - before == 4  # the hour asked twice, each with a clock read
    assert rows(catalog) == [(HALT_OPEN, HALT_OPEN, 1, "rest")]


def test_a_recheck_with_nothing_to_change_writes_nothing(catalog, exchange):
    march(catalog, exchange)
    gaps_version = catalog.latest("klines_gaps")
    narrow = ingest_klines(
        catalog,
        exchange,
        market="spot",
        interval="1h",
        symbols=["BTCUSDT"],
        start_ms=MAR_2023,
        end_ms=MAR_2023 + 24 * HOUR,
        recheck_gaps=True,
    )
    assert narrow.ok and narrow.gaps_recorded == 0
    assert catalog.latest("klines_gaps") == gaps_version


def test_gaps_written_before_sources_were_recorded_still_read_and_are_migrated(catalog, exchange):
    old = gaps_frame([("spot", "ETHUSDT", "1h", HALT_OPEN, HALT_OPEN, 1, "x", 0)]).drop("source")
    # The registry as it was then: klines_gaps without `source`.
    then = DATASETS.with_datasets(replace(DATASETS["klines_gaps"], schema=old.schema))
    Catalog(catalog.root, registry=then).upsert("klines_gaps", old, stage="t")
    assert read_gaps(catalog)["source"].to_list() == [None]
    march(catalog, exchange)
    gaps = read_gaps(catalog)
    assert list(gaps.schema) == list(GAPS_SCHEMA)
    assert gaps.select("symbol", "source").rows() == [("BTCUSDT", "rest"), ("ETHUSDT", None)]


D = 1679616000000  # 2023-03-24 00:00 UTC


@pytest.mark.parametrize(
    ("window", "left"),
    [
        (GapWindow(), []),
        (GapWindow(symbols=("ETHUSDT",)), [(D, D + 9 * HOUR)]),
        (GapWindow(interval="1m"), [(D, D + 9 * HOUR)]),
        (GapWindow(first=D + 3 * HOUR), [(D, D + 2 * HOUR)]),
        (GapWindow(last=D + 3 * HOUR), [(D + 4 * HOUR, D + 9 * HOUR)]),
        # a window inside the gap leaves both ends, each keyed by its own start
        (
            GapWindow(first=D + 3 * HOUR, last=D + 5 * HOUR),
            [(D, D + 2 * HOUR), (D + 6 * HOUR, D + 9 * HOUR)],
        ),
        # bounds off the hour: only whole candles opening inside are cut
        (
            GapWindow(first=D + 3 * HOUR - 1, last=D + 5 * HOUR + 1),
            [(D, D + 2 * HOUR), (D + 6 * HOUR, D + 9 * HOUR)],
        ),
        (GapWindow(first=D + 10 * HOUR), [(D, D + 9 * HOUR)]),
    ],
)
def test_cut_gaps_keeps_what_lies_outside_the_window(window, left):
    gap = gaps_frame([("spot", "BTCUSDT", "1h", D, D + 9 * HOUR, 10, "rest", 0)])
    out = cut_gaps(gap, [window]).with_columns(pl.col("gap_start", "gap_end").dt.epoch("ms"))
    assert [(lo, hi) for lo, hi in out.select("gap_start", "gap_end").rows()] == left
    assert out["bars_missing"].to_list() == [(hi - lo) // HOUR + 1 for lo, hi in left]
    assert out["source"].to_list() == ["rest"] * len(left)
