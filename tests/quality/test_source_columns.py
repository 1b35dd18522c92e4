"""The gate on klines whose source lacks columns (freqtrade: OHLCV only, the rest null).

Such checks are skipped and listed, not failed and not passed on zeros; a column null on
some rows only is still a defect.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from helpers import ROOT, load_sample_klines, write_config
from quantlab.catalog import GateVerdict
from quantlab.context import RunContext
from quantlab.errors import SchemaError
from quantlab.ingest import to_ms
from quantlab.ingest.freqtrade import read_series
from quantlab.quality import check_klines, check_version
from quantlab.schema import KLINES_PARTITIONS, SOURCE_OPTIONAL, absent_columns

FREQTRADE = ROOT / "data" / "freqtrade"
AS_OF = datetime(2023, 3, 1, tzinfo=UTC)


def _perp(symbol: str = "BTCUSDT") -> pl.DataFrame:
    start, end = to_ms(date(2023, 2, 1)), to_ms(date(2023, 3, 1))
    return read_series(FREQTRADE, symbol, "1h", start_ms=start, end_ms=end).klines


def test_absent_columns_are_those_null_on_every_row():
    perp = _perp()
    assert absent_columns(perp) == SOURCE_OPTIONAL
    spot = load_sample_klines("BTCUSDT", ("2023-02",))
    assert absent_columns(spot) == ()
    # Null on one row only: a defect, not a column the source lacks.
    holed = spot.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("trades")).alias("trades")
    )
    assert absent_columns(holed) == ()
    assert absent_columns(perp.head(0)) == ()


def test_checks_on_absent_columns_are_skipped_and_listed():
    report = check_klines(_perp(), "1h", as_of=AS_OF)
    assert report.passed, report.summary()
    ran = {c.check for c in report.checks}
    assert set(report.skipped) == {
        *(f"{k}.{c}" for c in SOURCE_OPTIONAL for k in ("not_null", "non_negative")),
        "taker_volume_within_total",
    }
    assert not ran & set(report.skipped)
    assert {"not_null.volume", "non_negative.volume", "close_time_exact", "zero_volume"} <= ran
    assert report.record()["skipped"] == report.skipped
    assert "skipped (the source lacks their columns)" in report.summary()


def test_a_column_null_on_some_rows_still_fails_not_null():
    spot = load_sample_klines("BTCUSDT", ("2023-02",))
    holed = spot.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(None)
        .otherwise(pl.col("quote_volume"))
        .alias("quote_volume")
    )
    report = check_klines(holed, "1h", as_of=AS_OF)
    assert not report.passed and report.skipped == {}
    assert [c.check for c in report.by_severity("error")] == ["not_null.quote_volume"]


def test_series_lacking_different_columns_are_not_validated_as_one():
    spot = load_sample_klines("BTCUSDT", ("2023-02",))
    with pytest.raises(SchemaError, match="differ in the columns their source lacks"):
        check_klines(iter([spot, _perp("ETHUSDT")]), "1h", as_of=AS_OF)


def test_the_stage_validates_each_source_on_its_own_and_records_the_skips(tmp_path: Path):
    ctx = RunContext.load(
        write_config(tmp_path, universe={"start": "2023-02-01", "end": "2023-03-01"})
    )
    spot = load_sample_klines("BTCUSDT", ("2023-02",))
    both = pl.concat([spot, _perp("BTCUSDT"), _perp("ETHUSDT")])
    ref = ctx.catalog.write("klines", both, stage="ingest", partition_by=list(KLINES_PARTITIONS))
    result = check_version(ctx, ref, data_docs=False)
    assert result.report.passed, result.report.summary()
    verdict = GateVerdict.of(ctx.catalog.lineage(result.checks))
    assert set(verdict.skipped) >= {f"not_null.{c}" for c in SOURCE_OPTIONAL}
    # The spot series had every check: its not_null.trades ran and passed.
    (spot_part,) = [r for label, r in result.report.parts if label == "1h"]
    assert "not_null.trades" in {c.check for c in spot_part.checks}
    assert spot_part.row_count == spot.height
