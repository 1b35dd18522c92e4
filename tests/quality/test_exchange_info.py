"""check_exchange_info on real exchangeInfo bodies (spot 2023 subset, USD-M 2022), one defect each."""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl
import pytest

from helpers import FIXTURES
from quantlab.exchange.exchange_info import parse_exchange_info
from quantlab.quality.exchange_info import check_exchange_info


@pytest.fixture(scope="module")
def spot() -> pl.DataFrame:
    """9 real spot symbols of 2023-09-08, two of them in BREAK."""
    raw = json.loads(
        (FIXTURES / "exchangeInfo_spot_2023-09-08_MAINNET_subset_DERIVED.json").read_text()
    )
    return parse_exchange_info(raw, "spot")


@pytest.fixture(scope="module")
def futures() -> pl.DataFrame:
    """3 real USD-M symbols of 2022-02-19, one of them the delivery contract BTCUSDT_220325."""
    raw = json.loads((FIXTURES / "exchangeInfo_futures_um_2022-02-19_3symbols.json").read_text())
    return parse_exchange_info(raw, "futures_um")


def failed(report) -> dict[str, str]:
    return {c.check: c.severity for c in report.failed()}


def test_real_bodies_pass(spot: pl.DataFrame, futures: pl.DataFrame) -> None:
    assert set(spot["status"]) == {"TRADING", "BREAK"}
    for frame in (spot, futures, pl.concat([spot, futures])):
        report = check_exchange_info(frame)
        assert report.passed and failed(report) == {}, report.summary()


def _on(symbol: str, column: str, value: object) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def corrupt(df: pl.DataFrame) -> pl.DataFrame:
        hit = pl.col("symbol") == symbol
        return df.with_columns(
            pl.when(hit)
            .then(pl.lit(value))
            .otherwise(pl.col(column))
            .cast(df.schema[column])
            .alias(column)
        )

    return corrupt


DEFECTS = [
    ("duplicated_symbol", lambda d: pl.concat([d, d.filter(pl.col("symbol") == "ETHUSDT")]),
     "unique_key"),
    ("unknown_status", _on("ETHUSDT", "status", "LISTED"), "status_known"),
    ("unknown_market", _on("ETHUSDT", "market", "margin"), "market_known"),
    ("null_base_asset", _on("ETHUSDT", "base_asset", None), "not_null.base_asset"),
    ("zero_tick_size", _on("ETHUSDT", "tick_size", 0.0), "tick_size_positive"),
    ("negative_step_size", _on("ETHUSDT", "step_size", -0.001), "step_size_positive"),
    ("min_price_above_max", _on("ETHUSDT", "min_price", 1e9), "price_range"),
    ("min_qty_above_max", _on("ETHUSDT", "min_qty", 1e12), "qty_range"),
    ("negative_min_notional", _on("ETHUSDT", "min_notional", -5.0), "min_notional_non_negative"),
    ("symbol_not_its_assets", _on("ETHUSDT", "base_asset", "XRP"), "symbol_matches_assets"),
]  # fmt: skip


@pytest.mark.parametrize(("corrupt", "expected"), [pytest.param(*d[1:], id=d[0]) for d in DEFECTS])
def test_each_defect_fails_its_check_alone(spot, corrupt, expected) -> None:
    bad = corrupt(spot)
    report = check_exchange_info(bad)
    assert report.checks == check_exchange_info(bad, screen=False).checks
    assert list(failed(report)) == [expected], report.summary()
    (hit,) = [c for c in report.checks if c.check == expected]
    assert hit.unexpected_count >= 1
    assert "ETHUSDT" in json.dumps(hit.examples)


def test_a_zero_max_price_means_no_limit(spot: pl.DataFrame) -> None:
    unlimited = _on("ETHUSDT", "max_price", 0.0)(spot)
    assert check_exchange_info(unlimited).passed
