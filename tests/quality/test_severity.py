"""`validate.severity`: each check's severity set in the config (error | warning | off)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest
import yaml
from pydantic import ValidationError

from helpers import FIXTURES
from quantlab.config import VALIDATE_CHECKS, ValidateConfig, load_config
from quantlab.errors import ConfigError
from quantlab.quality import (
    CheckReport,
    check_exchange_info,
    check_funding_rates,
    check_klines,
    load_outages,
)

OUTAGES = load_outages(ValidateConfig().known_outages)


@pytest.fixture(scope="module")
def march(real_klines: pl.DataFrame) -> pl.DataFrame:
    return real_klines.filter(
        pl.col("symbol") == "BTCUSDT", pl.col("open_time").dt.strftime("%Y-%m") == "2023-03"
    )


@pytest.fixture(scope="module")
def funding() -> pl.DataFrame:
    from quantlab.exchange.funding import parse_funding_rates

    raw = json.loads((FIXTURES / "fundingRate_BTCUSDT_2022-11-03_2025-11-12.json").read_text())
    return parse_funding_rates(raw, "BTCUSDT")


@pytest.fixture(scope="module")
def info() -> pl.DataFrame:
    from quantlab.exchange.exchange_info import parse_exchange_info

    raw = json.loads(
        (FIXTURES / "exchangeInfo_spot_2023-09-08_MAINNET_subset_DERIVED.json").read_text()
    )
    return parse_exchange_info(raw, "spot")


def names(report: CheckReport) -> set[str]:
    return {c.check for c in report.checks}


def test_the_config_knows_every_check_the_suites_run(march, funding, info) -> None:
    """The list the config accepts is exactly the union of the suites' checks."""
    as_of = datetime(2025, 11, 13, tzinfo=UTC)
    built = (
        names(check_klines(march, "1h", as_of=as_of))
        | names(check_funding_rates(funding, as_of=as_of))
        | names(check_exchange_info(info))
    )
    assert set(VALIDATE_CHECKS) == built
    assert len(VALIDATE_CHECKS) == len(set(VALIDATE_CHECKS))


def test_an_unknown_check_or_level_is_refused(tmp_path) -> None:
    with pytest.raises(ValidationError, match=r"(?s)unknown check 'calender_gaps'.*calendar_gaps"):
        ValidateConfig(severity={"calender_gaps": "warning"})
    with pytest.raises(ValidationError):
        ValidateConfig(severity={"calendar_gaps": "info"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"validate": {"severity": {"ohlc_consistant": "off"}}}))
    with pytest.raises(ConfigError, match=r"validate\.severity") as caught:
        load_config(path)
    assert "ohlc_consistant" in str(caught.value)
    assert all(name in str(caught.value) for name in ("ohlc_consistent", "funding_interval"))


def test_the_default_config_sets_no_severity() -> None:
    assert load_config().validate_.severity == {}


def test_checks_turned_off_are_not_run_and_the_report_says_so(march) -> None:
    cut = march.filter(pl.col("open_time") != datetime(2023, 3, 10, 5, tzinfo=UTC))
    assert not check_klines(cut, "1h", outages=OUTAGES).passed
    cfg = ValidateConfig(severity={"calendar_gaps": "off", "zero_volume": "off"})
    report = check_klines(cut, "1h", cfg, outages=OUTAGES)
    assert report.passed, report.summary()
    assert not names(report) & {"calendar_gaps", "zero_volume"}
    assert [(c.check, c.default, c.configured) for c in report.lowered] == [
        ("zero_volume", "warning", "off"),
        ("calendar_gaps", "error", "off"),
    ]
    assert report.record()["lowered"] == {
        "zero_volume": {"default": "warning", "configured": "off"},
        "calendar_gaps": {"default": "error", "configured": "off"},
    }
    assert report.record()["raised"] == {}
    assert report.summary().splitlines()[1] == (
        "  lowered by config: zero_volume (warning -> off), calendar_gaps (error -> off)"
    )
    assert "calendar_gaps" not in report.to_frame()["check"].to_list()


def test_a_lowered_check_still_reports_and_a_raised_one_fails(march) -> None:
    cut = march.filter(pl.col("open_time") != datetime(2023, 3, 10, 5, tzinfo=UTC))
    cfg = ValidateConfig(severity={"calendar_gaps": "warning", "known_gaps": "error"})
    report = check_klines(cut, "1h", cfg, outages=OUTAGES)
    by_name = {c.check: c for c in report.checks}
    assert by_name["calendar_gaps"].severity == "warning"
    assert by_name["calendar_gaps"].unexpected_count == 1
    assert by_name["known_gaps"].severity == "error"  # the halt hour, now an error
    assert not report.passed and report.record()["failed_checks"] == ["known_gaps"]
    assert report.record()["raised"] == {"known_gaps": {"default": "info", "configured": "error"}}
    assert "raised by config: known_gaps (info -> error)" in report.summary()
    expectation = next(
        r.expectation_config for r in report.gx_result.results
        if r.expectation_config.meta["check"] == "calendar_gaps"
    )  # fmt: skip
    assert expectation.severity == "warning"  # Data Docs show the configured severity


def test_each_suite_reports_only_the_changes_to_its_own_checks(march, funding, info) -> None:
    cfg = ValidateConfig(severity={"calendar_gaps": "warning", "funding_interval": "off"})
    assert [c.check for c in check_klines(march, "1h", cfg, outages=OUTAGES).lowered] == [
        "calendar_gaps"
    ]
    rates = check_funding_rates(funding, cfg)
    assert [c.check for c in rates.lowered] == ["funding_interval"]
    assert "funding_interval" not in names(rates)
    off = ValidateConfig(severity={"symbol_matches_assets": "off"})
    assert "symbol_matches_assets" not in names(check_exchange_info(info, off))


def test_a_merged_report_keeps_the_changes(march) -> None:
    cfg = ValidateConfig(severity={"return_outlier": "off"})
    one = check_klines(march, "1h", cfg, outages=OUTAGES)
    merged = CheckReport.merge([("1h", one), ("4h", one)], key="interval")
    assert [c.check for c in merged.lowered] == ["return_outlier"]
    assert "lowered by config: return_outlier (warning -> off)" in merged.summary()
