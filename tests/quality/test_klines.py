"""check_klines on the shipped real klines, clean and with one defect planted at a time."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl
import pytest

from quantlab.config import ValidateConfig
from quantlab.errors import ConfigError, QualityError, SchemaError
from quantlab.quality import CheckReport, CheckResult, Outage, check_klines, load_outages
from quantlab.schema import UTC_MS

HALT = datetime(2023, 3, 24, 12, tzinfo=UTC)
OUTAGES = load_outages(ValidateConfig().known_outages)


def errors_failed(report: CheckReport) -> set[str]:
    return {c.check for c in report.failed() if c.severity == "error"}


def check(report: CheckReport, name: str) -> CheckResult:
    (found,) = [c for c in report.checks if c.check == name]
    return found


@pytest.fixture(scope="module")
def clean_report(real_klines: pl.DataFrame) -> CheckReport:
    """Without the outage list: the halt's missing candle is then unexplained."""
    return check_klines(real_klines, "1h")


@pytest.fixture(scope="module")
def march(real_klines: pl.DataFrame) -> pl.DataFrame:
    """March 2023 of all three symbols: small, and it holds the 2023-03-24 halt."""
    return real_klines.filter(
        pl.col("open_time").is_between(
            datetime(2023, 3, 1, tzinfo=UTC), datetime(2023, 4, 1, tzinfo=UTC), closed="left"
        )
    )


def test_clean_real_data_passes_with_the_shipped_outage_list(real_klines: pl.DataFrame) -> None:
    report = check_klines(real_klines, "1h", outages=OUTAGES)
    assert report.passed, report.summary()
    assert report.row_count == 3 * 17_543
    assert errors_failed(report) == set()


def test_without_the_outage_list_the_halt_hour_is_a_missing_candle_error(
    clean_report: CheckReport,
) -> None:
    gaps = check(clean_report, "calendar_gaps")
    assert gaps.severity == "error"
    assert not gaps.success
    assert not clean_report.passed
    assert errors_failed(clean_report) == {"calendar_gaps"}
    assert gaps.unexpected_count == 3  # 2023-03-24 13:00, once per symbol
    assert {(e["symbol"], e["first_missing"], e["missing"]) for e in gaps.examples} == {
        (s, "2023-03-24T13:00:00+00:00", 1) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    }


def test_halt_candle_is_zero_volume_and_short_close_warnings(
    clean_report: CheckReport,
) -> None:
    for name in ("zero_volume", "close_time_exact"):
        result = check(clean_report, name)
        assert result.severity == "warning"
        assert result.unexpected_count == 3, name
        assert {e["open_time"] for e in result.examples} == {HALT.isoformat()}
    closes = {
        e["symbol"]: e["close_time"] for e in check(clean_report, "close_time_exact").examples
    }
    assert closes["BTCUSDT"] == "2023-03-24T12:39:41.646+00:00"  # 1679661581646 ms
    assert check(clean_report, "close_time_within_bar").success


def test_interleaved_series_are_checked_per_series(real_klines: pl.DataFrame) -> None:
    interleaved = real_klines.sort("open_time", "symbol")
    report = check_klines(interleaved, "1h", outages=OUTAGES)
    assert report.passed, report.summary()
    assert check(report, "known_gaps").unexpected_count == 3
    assert check(check_klines(interleaved, "1h"), "calendar_gaps").unexpected_count == 3


def _set(column: str, value: Callable[[], pl.Expr]) -> Callable[[pl.DataFrame, int], pl.DataFrame]:
    """A corruption that replaces one cell of row `i` with `value()`."""

    def corrupt(df: pl.DataFrame, i: int) -> pl.DataFrame:
        hit = pl.int_range(pl.len()) == i
        return df.with_columns(
            pl.when(hit)
            .then(value())
            .otherwise(pl.col(column))
            .cast(df.schema[column])
            .alias(column)
        )

    return corrupt


def _duplicate(df: pl.DataFrame, i: int) -> pl.DataFrame:
    return pl.concat([df.head(i + 1), df.slice(i, 1), df.slice(i + 1)])


def _shuffle(df: pl.DataFrame, i: int) -> pl.DataFrame:
    return df.sample(fraction=1.0, shuffle=True, seed=7)


def _swap_with_next(df: pl.DataFrame, i: int) -> pl.DataFrame:
    return pl.concat([df.head(i), df.slice(i + 1, 1), df.slice(i, 1), df.slice(i + 2)])


OT_MS = pl.col("open_time").dt.epoch("ms")
# A µs open time takes its candle off the grid, so its hour is missing from the calendar too.
ALSO = {"open_time_in_range": {"calendar_gaps"}}

# (defect, corruption of row i, the one error check it must fail, rows its examples must name)
DEFECTS = [
    ("duplicated_row", _duplicate, "unique_key", {0, 1}),
    ("high_below_close", _set("high", lambda: pl.col("close") * 0.999), "ohlc_consistent", {0}),
    ("negative_volume", _set("volume", lambda: -pl.col("volume")), "non_negative.volume", {0}),
    ("null_close", _set("close", lambda: pl.lit(None)), "not_null.close", {0}),
    ("zero_open", _set("open", lambda: pl.lit(0.0)), "price_positive.open", {0}),
    (
        "microseconds_in_open_time",
        _set("open_time", lambda: (OT_MS * 1000).cast(UTC_MS)),
        "open_time_in_range",
        {0},
    ),
    (
        "misaligned_open_time",
        _set("open_time", lambda: pl.col("open_time") + pl.duration(minutes=1)),
        "open_time_aligned",
        {0},
    ),
    ("shuffled_order", _shuffle, "open_time_increasing", None),
    ("two_rows_swapped", _swap_with_next, "open_time_increasing", {1}),
    (
        "taker_volume_above_volume",
        _set("taker_buy_base_volume", lambda: pl.col("volume") * 1.5),
        "taker_volume_within_total",
        {0},
    ),
    (
        "close_time_one_ms_late",
        _set("close_time", lambda: pl.col("open_time") + pl.duration(hours=1)),
        "close_time_within_bar",
        {0},
    ),
    (
        "close_time_before_open",
        _set("close_time", lambda: pl.col("open_time")),
        "close_time_within_bar",
        {0},
    ),
    ("wrong_interval_label", _set("interval", lambda: pl.lit("4h")), "interval_matches", {0}),
]


@pytest.mark.parametrize(
    ("corrupt", "expected", "rows"),
    [pytest.param(c, e, r, id=name) for name, c, e, r in DEFECTS],
)
def test_each_defect_fails_exactly_its_check(
    march: pl.DataFrame,
    corrupt: Callable[[pl.DataFrame, int], pl.DataFrame],
    expected: str,
    rows: set[int] | None,
) -> None:
    # An ordinary BTCUSDT hour in the middle of the slice, away from the halt.
    i = (
        march.with_row_index("i")
        .filter(
            pl.col("symbol") == "BTCUSDT",
            pl.col("open_time") == datetime(2023, 3, 10, 5, tzinfo=UTC),
        )["i"]
        .item()
    )
    assert march["volume"][i] > 0 and march["close"][i] > march["low"][i]

    bad = corrupt(march, i)
    report = check_klines(bad, "1h", outages=OUTAGES)
    # GX sees only the rows the polars screen picks; validating every row must agree.
    everything = check_klines(bad, "1h", outages=OUTAGES, screen=False)
    assert report.checks == everything.checks

    def results(rep: CheckReport) -> dict[str, str]:  # as text: NaN != NaN
        return {
            r.expectation_config.meta["check"]: json.dumps(r.result, sort_keys=True, default=str)
            for r in rep.gx_result.results
        }

    assert results(report) == results(everything)
    assert report.gx_result.meta["quantlab"]["rows_given_to_gx"] < bad.height / 10 or (
        expected == "open_time_increasing"
    )

    assert not report.passed
    assert errors_failed(report) - ALSO.get(expected, set()) == {expected}, report.summary()
    result = check(report, expected)
    assert result.unexpected_count >= 1
    assert 1 <= len(result.examples) <= 5
    if rows is not None:
        assert {e["row"] for e in result.examples} == {i + r for r in rows}


@pytest.mark.parametrize(
    ("corrupt", "expected", "rows"),
    [
        pytest.param(c, e, r, id=name)
        for name, c, e, r in DEFECTS
        if e != "open_time_increasing"  # without row order, order is no check
    ],
)
def test_each_defect_in_a_shuffled_version_fails_its_check_at_its_rows(
    march: pl.DataFrame,
    corrupt: Callable[[pl.DataFrame, int], pl.DataFrame],
    expected: str,
    rows: set[int] | None,
) -> None:
    """A catalog version (no row order) is regrouped by series and time before the checks;
    the examples still name rows of the frame as it was given."""
    i = march.height // 3
    bad = corrupt(march, i).with_row_index("_was")
    shuffled = bad.sample(fraction=1.0, shuffle=True, seed=11)
    report = check_klines(shuffled.drop("_was"), "1h", outages=OUTAGES, row_order=False)
    assert errors_failed(report) == {expected}, report.summary()
    everything = check_klines(
        shuffled.drop("_was"), "1h", outages=OUTAGES, row_order=False, screen=False
    )
    assert report.checks == everything.checks
    if rows is not None:
        was = shuffled["_was"]
        assert {was[e["row"]] for e in check(report, expected).examples} == {i + r for r in rows}


def test_microsecond_open_time_example_keeps_the_raw_number(march: pl.DataFrame) -> None:
    bad = _set("open_time", lambda: (OT_MS * 1000).cast(UTC_MS))(march, 5)
    (example,) = check(check_klines(bad, "1h"), "open_time_in_range").examples
    assert example["open_time"] == march["open_time"][5].timestamp() * 1_000_000


def test_config_bounds_are_used(march: pl.DataFrame) -> None:
    report = check_klines(march, "1h", ValidateConfig(max_year=2022), outages=OUTAGES)
    assert errors_failed(report) == {"open_time_in_range", "close_time_in_range"}
    assert check(report, "open_time_in_range").unexpected_count == march.height

    calm = check_klines(march, "1h", ValidateConfig(max_return_sigmas=1000), outages=OUTAGES)
    assert check(calm, "return_outlier").success
    strict = check_klines(march, "1h", ValidateConfig(max_return_sigmas=3), outages=OUTAGES)
    assert check(strict, "return_outlier").unexpected_count > 0
    assert strict.passed  # outliers only warn


def test_wrong_interval_argument_fails(march: pl.DataFrame) -> None:
    report = check_klines(march, "15m")
    assert "interval_matches" in errors_failed(report)
    assert "close_time_within_bar" in errors_failed(report)


def test_missing_column_reports_the_schema_only(march: pl.DataFrame) -> None:
    report = check_klines(march.drop("trades"), "1h")
    assert not report.passed
    assert [c.check for c in report.checks] == ["columns_match"]
    assert report.checks[0].examples == [{"missing": ["trades"]}]


def test_extra_column_fails_only_the_schema_check(march: pl.DataFrame) -> None:
    report = check_klines(march.with_columns(pl.lit(1).alias("ignore")), "1h", outages=OUTAGES)
    assert errors_failed(report) == {"columns_match"}
    assert check(report, "columns_match").examples == [{"unexpected": ["ignore"]}]


def test_wrong_dtype_and_unknown_interval_raise(march: pl.DataFrame) -> None:
    with pytest.raises(SchemaError, match="close"):
        check_klines(march.with_columns(pl.col("close").cast(pl.String)), "1h")
    with pytest.raises(ConfigError, match="2w"):
        check_klines(march, "2w")


def test_empty_frame_passes(march: pl.DataFrame) -> None:
    report = check_klines(march.head(0), "1h")
    assert report.passed
    assert report.row_count == 0


def test_report_outputs(march: pl.DataFrame) -> None:
    report = check_klines(_set("close", lambda: pl.lit(None))(march, 3), "1h", outages=OUTAGES)

    frame = report.to_frame()
    assert frame.columns == ["check", "severity", "success", "unexpected_count", "examples"]
    assert frame.height == len(report.checks)
    row = frame.filter(pl.col("check") == "not_null.close").row(0, named=True)
    assert (row["success"], row["unexpected_count"]) == (False, 1)
    assert json.loads(row["examples"])[0]["row"] == 3

    text = report.summary()
    assert "FAILED" in text
    assert "not_null.close: 1 unexpected" in text
    assert "zero_volume" in text and "known_gaps" in text  # warnings and known gaps too

    with pytest.raises(QualityError) as caught:
        report.raise_for_errors()
    assert caught.value.failed_checks == ["not_null.close"]
    check_klines(march, "1h", outages=OUTAGES).raise_for_errors()  # passing: no raise


def test_the_halt_gap_is_known_with_the_outage_list(clean_report: CheckReport, real_klines):
    report = check_klines(real_klines, "1h", outages=OUTAGES)
    assert report.passed
    assert check(report, "calendar_gaps").success
    known = check(report, "known_gaps")
    assert (known.severity, known.success, known.unexpected_count) == ("info", False, 3)
    assert {e["first_missing"] for e in known.examples} == {"2023-03-24T13:00:00+00:00"}
    assert all("spot trading halt" in e["outage"] for e in known.examples)
    assert "KNOWN   known_gaps: 3" in report.summary()
    assert report.record()["known"] == ["known_gaps"]


def test_only_the_bars_inside_an_outage_are_known(march: pl.DataFrame) -> None:
    """A gap from 2023-03-24 10:00 to 15:00: 13:00 is in the outage, the others are not."""
    hours = [datetime(2023, 3, 24, h, tzinfo=UTC) for h in (10, 11, 12, 14)]
    cut = march.filter(~pl.col("open_time").is_in(hours) | (pl.col("symbol") != "BTCUSDT"))
    report = check_klines(cut, "1h", outages=OUTAGES)
    known, unknown = check(report, "known_gaps"), check(report, "calendar_gaps")
    # BTC: 10-14 missing (5 bars), 12 and 13 overlap the outage; ETH and SOL: 13 only.
    assert known.unexpected_count == 2 + 1 + 1
    assert unknown.unexpected_count == 3
    (btc,) = [e for e in unknown.examples if e["symbol"] == "BTCUSDT"]
    assert (btc["first_missing"], btc["missing"]) == ("2023-03-24T10:00:00+00:00", 3)


def test_an_outage_of_another_market_or_symbol_explains_nothing(march: pl.DataFrame) -> None:
    other = Outage(
        market="spot",
        symbols=("DOGEUSDT",),
        start=HALT,
        end=datetime(2023, 3, 24, 14, tzinfo=UTC),
        reason="r",
        source="s",
    )
    futures = other.model_copy(update={"market": "futures_um", "symbols": "*"})
    report = check_klines(march, "1h", outages=(other, futures))
    assert check(report, "calendar_gaps").unexpected_count == 3
    assert check(report, "known_gaps").success


def test_a_stale_series_warns(march: pl.DataFrame) -> None:
    as_of = datetime(2023, 4, 1, 3, 30, tzinfo=UTC)  # last closed bar: 02:00; data ends 03-31 23:00
    report = check_klines(
        march, "1h", ValidateConfig(max_stale_bars=2), outages=OUTAGES, as_of=as_of
    )
    stale = check(report, "stale_series")
    assert (stale.severity, stale.unexpected_count) == ("warning", 3)
    assert stale.examples[0]["bars_behind"] == 3
    assert stale.examples[0]["expected_last_open_time"] == "2023-04-01T02:00:00+00:00"
    assert report.passed
    fresh = check_klines(march, "1h", ValidateConfig(max_stale_bars=3), as_of=as_of)
    assert check(fresh, "stale_series").success
    assert "stale_series" not in {c.check for c in check_klines(march, "1h").checks}
    with pytest.raises(ConfigError, match="time zone"):
        check_klines(march, "1h", as_of=datetime(2023, 4, 1))


def test_nan_is_missing_not_an_extra_defect(march: pl.DataFrame) -> None:
    bad = _set("close", lambda: pl.lit(float("nan")))(march, 7)
    report = check_klines(bad, "1h", outages=OUTAGES)
    assert errors_failed(report) == {"not_null.close"}
    assert check(report, "not_null.close").examples[0]["row"] == 7


def test_merged_reports_name_their_slice(march: pl.DataFrame) -> None:
    good = check_klines(march, "1h")
    bad = check_klines(_set("close", lambda: pl.lit(None))(march, 3), "1h")
    merged = CheckReport.merge([("1h", good), ("4h", bad)], key="interval")
    assert not merged.passed and merged.row_count == 2 * march.height
    assert check(merged, "not_null.close").examples[0] == {
        "interval": "4h",
        **check(bad, "not_null.close").examples[0],
    }
    assert check(merged, "zero_volume").unexpected_count == 6


@pytest.mark.parametrize("symbols", [("BTCUSDT",), ("BTCUSDT", "ETHUSDT", "SOLUSDT")])
def test_without_row_order_a_shuffled_version_reports_as_the_sorted_one(
    march: pl.DataFrame, symbols: tuple[str, ...]
) -> None:
    """A catalog version keeps no row order: gaps, returns and staleness are per series in time."""
    march = march.filter(pl.col("symbol").is_in(symbols))
    as_of = datetime(2023, 4, 1, tzinfo=UTC)
    sorted_report = check_klines(march, "1h", outages=OUTAGES, as_of=as_of, row_order=False)
    shuffled = _shuffle(march, 0)
    report = check_klines(shuffled, "1h", outages=OUTAGES, as_of=as_of, row_order=False)
    assert report.passed, report.summary()
    counts = {c.check: (c.success, c.unexpected_count) for c in report.checks}
    assert counts == {c.check: (c.success, c.unexpected_count) for c in sorted_report.checks}
    assert counts["known_gaps"] == (False, len(symbols))
    # Examples name rows of the shuffled frame: the halt candles, wherever they landed.
    for e in check(report, "zero_volume").examples:
        assert shuffled["open_time"][e["row"]] == HALT


@pytest.mark.parametrize("column", ["symbol", "market"])
def test_a_missing_series_key_fails_not_null_only(march: pl.DataFrame, column: str) -> None:
    i = march.height // 2
    bad = _set(column, lambda: pl.lit(None))(march, i)
    report = check_klines(bad, "1h", outages=OUTAGES, row_order=False)
    # The row without a series leaves a one-bar hole in its own series' calendar.
    assert errors_failed(report) == {f"not_null.{column}", "calendar_gaps"}
    assert check(report, f"not_null.{column}").examples[0]["row"] == i
    assert check(report, "calendar_gaps").unexpected_count == 1


def test_frames_validated_one_at_a_time_report_as_the_stacked_frame(march: pl.DataFrame) -> None:
    """Series by series (the gate's way), counts and examples are those of the whole frame,
    row numbers included; one GX validation covers them all."""
    btc, eth, sol = (march.filter(pl.col("symbol") == s) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    eth = _set("high", lambda: pl.col("close") * 0.999)(eth, 100)
    sol = _set("volume", lambda: -pl.col("volume"))(sol, 7)
    whole = check_klines(pl.concat([btc, eth, sol]), "1h", outages=OUTAGES, row_order=False)
    parts = check_klines([btc, eth, sol], "1h", outages=OUTAGES, row_order=False)

    def outline(report: CheckReport) -> list:  # return_z may differ in its last bit
        return [
            (c.check, c.success, c.unexpected_count, [e.get("row", e) for e in c.examples])
            for c in report.checks
        ]

    assert outline(parts) == outline(whole)
    assert parts.row_count == march.height
    assert errors_failed(parts) == {"ohlc_consistent", "non_negative.volume"}
    assert check(parts, "ohlc_consistent").examples[0]["row"] == btc.height + 100
    assert check(parts, "non_negative.volume").examples[0]["row"] == btc.height + eth.height + 7


def test_frames_validated_together_need_the_same_columns(march: pl.DataFrame) -> None:
    with pytest.raises(SchemaError, match="differ in columns"):
        check_klines([march, march.drop("trades")], "1h")
    empty = check_klines(iter([]), "1h")
    assert empty.passed and empty.row_count == 0
