"""check_funding_rates on Binance's real BTCUSDT funding history, clean and with one defect each."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl
import pytest

from helpers import FIXTURES
from quantlab.config import ValidateConfig
from quantlab.errors import SchemaError
from quantlab.exchange.funding import parse_funding_rates
from quantlab.quality.funding_rates import check_funding_rates

AT = 500  # an ordinary settlement, 2023-04-19 00:00 UTC


@pytest.fixture(scope="module")
def funding() -> pl.DataFrame:
    """3,316 real settlements of 2022-11-03 to 2025-11-12; fundingTime carries ms jitter."""
    raw = json.loads((FIXTURES / "fundingRate_BTCUSDT_2022-11-03_2025-11-12.json").read_text())
    return parse_funding_rates(raw, "BTCUSDT")


def failed(report) -> dict[str, str]:
    return {c.check: c.severity for c in report.failed()}


def test_the_real_history_passes_with_its_jitter(funding: pl.DataFrame) -> None:
    assert (funding["funding_time"].dt.epoch("ms") % 1000).max() > 0  # jitter is there
    report = check_funding_rates(funding, as_of=datetime(2025, 11, 13, tzinfo=UTC))
    assert report.passed and failed(report) == {}, report.summary()
    assert report.dataset == "funding_rates" and report.row_count == 3_316


def _set(column: str, value: Callable[[], pl.Expr]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def corrupt(df: pl.DataFrame) -> pl.DataFrame:
        hit = pl.int_range(pl.len()) == AT
        return df.with_columns(
            pl.when(hit)
            .then(value())
            .otherwise(pl.col(column))
            .cast(df.schema[column])
            .alias(column)
        )

    return corrupt


def _rows(keep: Callable[[pl.DataFrame], list[int]]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda df: df[keep(df)]


DEFECTS = [
    ("duplicated", _rows(lambda d: [*range(AT + 1), AT, *range(AT + 1, d.height)]), "unique_key", {}),
    ("null_rate", _set("funding_rate", lambda: pl.lit(None)), "not_null.funding_rate", {}),
    ("rate_above_cap", _set("funding_rate", lambda: pl.lit(0.2)), "funding_rate_within_cap", {}),
    ("negative_mark_price", _set("mark_price", lambda: pl.lit(-1.0)), "mark_price_positive", {}),
    ("spot_market", _set("market", lambda: pl.lit("spot")), "market_is_futures", {}),
    (
        "swapped",
        _rows(lambda d: [*range(AT), AT + 1, AT, *range(AT + 2, d.height)]),
        "funding_time_increasing",
        {},
    ),
    (
        "year_2200",
        _set("funding_time", lambda: pl.lit(datetime(2200, 1, 1, tzinfo=UTC))),
        "funding_time_in_range",
        {"funding_interval": "warning"},  # its slot is now empty: 16h between neighbours
    ),
    # warnings
    ("extreme_rate", _set("funding_rate", lambda: pl.lit(-0.01)), "funding_rate_extreme", {}),
    ("missing_settlement", _rows(lambda d: [r for r in range(d.height) if r != AT]),
     "funding_interval", {}),
    ("off_schedule", _set("funding_time", lambda: pl.col("funding_time") + pl.duration(hours=1)),
     "funding_interval", {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("corrupt", "expected", "also"), [pytest.param(*d[1:], id=d[0]) for d in DEFECTS]
)
def test_each_defect_fails_its_check_alone(funding, corrupt, expected, also) -> None:
    bad = corrupt(funding)
    report = check_funding_rates(bad)
    assert report.checks == check_funding_rates(bad, screen=False).checks
    got = failed(report)
    severity = got.pop(expected)
    assert got == also, report.summary()
    assert report.passed == (severity == "warning")
    (hit,) = [c for c in report.checks if c.check == expected]
    assert hit.examples and hit.examples[0]["symbol"] == "BTCUSDT"


def test_a_stale_history_warns(funding: pl.DataFrame) -> None:
    as_of = datetime(2025, 11, 14, tzinfo=UTC)  # the last settlement is 2025-11-12 08:00
    report = check_funding_rates(funding, ValidateConfig(max_stale_bars=2), as_of=as_of)
    assert failed(report) == {"stale_series": "warning"} and report.passed
    fresh = check_funding_rates(funding, ValidateConfig(max_stale_bars=4), as_of=as_of)
    assert failed(fresh) == {}


def test_schema_problems(funding: pl.DataFrame) -> None:
    report = check_funding_rates(funding.drop("mark_price"))
    assert [c.check for c in report.checks] == ["columns_match"]
    assert report.checks[0].examples == [{"missing": ["mark_price"]}]
    with pytest.raises(SchemaError, match="funding_rate"):
        check_funding_rates(funding.with_columns(pl.col("funding_rate").cast(pl.String)))
