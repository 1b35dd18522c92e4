"""Missing candles: an error unless a known outage or a gap the exchange confirmed empty explains them."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from quantlab.config import ValidateConfig
from quantlab.quality import CheckReport, check_klines, load_outages
from quantlab.schema import UTC_MS

OUTAGES = load_outages(ValidateConfig().known_outages)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def at(day: int, hour: int) -> datetime:
    return datetime(2023, 3, day, hour, tzinfo=UTC)


def confirmed(*rows: tuple[str, str, str, datetime, datetime]) -> pl.DataFrame:
    """`klines_gaps` rows: market, symbol, interval, first and last missing open time."""
    return pl.DataFrame(
        rows,
        schema={
            "market": pl.String,
            "symbol": pl.String,
            "interval": pl.String,
            "gap_start": UTC_MS,
            "gap_end": UTC_MS,
        },
        orient="row",
    )


HALT_GAPS = confirmed(*[("spot", s, "1h", at(24, 13), at(24, 13)) for s in SYMBOLS])


def result(report: CheckReport, name: str):
    (found,) = [c for c in report.checks if c.check == name]
    return found


@pytest.fixture(scope="module")
def march(real_klines: pl.DataFrame) -> pl.DataFrame:
    return real_klines.filter(
        pl.col("open_time").is_between(at(1, 0), datetime(2023, 4, 1, tzinfo=UTC), closed="left")
    )


def test_a_missing_candle_is_an_error_naming_it(march: pl.DataFrame) -> None:
    cut = march.filter(~((pl.col("symbol") == "ETHUSDT") & (pl.col("open_time") == at(10, 5))))
    report = check_klines(cut, "1h", outages=OUTAGES)
    assert not report.passed
    gaps = result(report, "calendar_gaps")
    assert (gaps.severity, gaps.unexpected_count) == ("error", 1)
    assert gaps.examples == [
        {
            "symbol": "ETHUSDT",
            "first_missing": "2023-03-10T05:00:00+00:00",
            "last_missing": "2023-03-10T05:00:00+00:00",
            "missing": 1,
            "next_open_time": "2023-03-10T06:00:00+00:00",
        }
    ]
    assert report.record()["failed_checks"] == ["calendar_gaps"]


@pytest.mark.parametrize("row_order", [True, False])
def test_gaps_the_exchange_confirmed_empty_are_known(march: pl.DataFrame, row_order: bool) -> None:
    """No outage list at all: the halt hour passes because ingest recorded it as confirmed."""
    report = check_klines(march, "1h", confirmed_gaps=HALT_GAPS, row_order=row_order)
    assert report.passed, report.summary()
    assert result(report, "calendar_gaps").success
    known = result(report, "known_gaps")
    assert known.unexpected_count == 3
    assert {e["symbol"] for e in known.examples} == set(SYMBOLS)
    assert all("confirmed empty by the exchange" in e["outage"] for e in known.examples)
    everything = check_klines(
        march, "1h", confirmed_gaps=HALT_GAPS, row_order=row_order, screen=False
    )
    assert report.checks == everything.checks


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(("futures_um", "BTCUSDT", "1h"), id="another_market"),
        pytest.param(("spot", "DOGEUSDT", "1h"), id="another_symbol"),
        pytest.param(("spot", "BTCUSDT", "4h"), id="another_interval"),
    ],
)
def test_a_confirmed_gap_of_another_series_explains_nothing(march, other) -> None:
    btc = march.filter(pl.col("symbol") == "BTCUSDT")
    report = check_klines(btc, "1h", confirmed_gaps=confirmed((*other, at(24, 12), at(24, 14))))
    assert not report.passed
    assert result(report, "calendar_gaps").unexpected_count == 1
    assert result(report, "known_gaps").success


def test_outages_and_confirmed_gaps_explain_a_bar_once(march: pl.DataFrame) -> None:
    """BTC misses 10:00 to 14:00 (five bars; 13:00 is the real halt). The outage covers
    12:00-13:00, the confirmed gap 13:00-14:00: three bars explained, not four."""
    hours = [at(24, h) for h in (10, 11, 12, 14)]
    cut = march.filter(~pl.col("open_time").is_in(hours) | (pl.col("symbol") != "BTCUSDT"))
    gaps = confirmed(("spot", "BTCUSDT", "1h", at(24, 13), at(24, 14)))
    report = check_klines(cut, "1h", outages=OUTAGES, confirmed_gaps=gaps)
    # BTC: 3 of 5 known; ETH and SOL: 13:00 through the outage.
    assert result(report, "known_gaps").unexpected_count == 3 + 1 + 1
    unknown = result(report, "calendar_gaps")
    assert unknown.unexpected_count == 2
    (btc,) = unknown.examples
    assert (btc["first_missing"], btc["last_missing"], btc["missing"]) == (
        "2023-03-24T10:00:00+00:00",
        "2023-03-24T14:00:00+00:00",
        2,
    )
    everything = check_klines(cut, "1h", outages=OUTAGES, confirmed_gaps=gaps, screen=False)
    assert report.checks == everything.checks


def test_a_confirmed_gap_inside_a_longer_hole_explains_only_its_bars(march: pl.DataFrame) -> None:
    start = at(10, 0)
    hole = [start.replace(hour=h) for h in range(6)]
    cut = march.filter(~pl.col("open_time").is_in(hole) | (pl.col("symbol") != "SOLUSDT"))
    gaps = confirmed(("spot", "SOLUSDT", "1h", at(10, 2), at(10, 3)))
    report = check_klines(cut, "1h", outages=OUTAGES, confirmed_gaps=gaps)
    assert result(report, "calendar_gaps").unexpected_count == 4
    assert result(report, "known_gaps").unexpected_count == 2 + 3  # + the halt, per symbol
