"""The data checks of `quantlab health`, each with a planted fault: no catalog or a missing
dataset, stale or missing klines (judged against now or universe.end), a failed or outdated gate."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.health import FAIL, OK, WARN
from quantlab.health.data import (
    check_catalog,
    check_freshness,
    check_gate,
    judge_freshness,
    reference_time,
)

HOUR = 3_600_000
REF = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)  # the last closed 1h candle opened at 11:00


def candle(hours_before_last: int) -> datetime:
    return datetime(2024, 6, 1, 11, tzinfo=UTC) - timedelta(hours=hours_before_last)


@pytest.mark.parametrize(
    ("lags", "status", "words"),
    [
        ({"BTCUSDT": 0, "ETHUSDT": 2}, OK, "within 2 bar(s)"),  # max_stale_bars=2: still fresh
        ({"BTCUSDT": 0, "ETHUSDT": 3}, WARN, "ETHUSDT: 3 bars behind"),
        ({"BTCUSDT": 20, "ETHUSDT": 0}, WARN, "BTCUSDT: 20 bars behind"),  # 10 x 2 bars: still WARN
        ({"BTCUSDT": 21, "ETHUSDT": 0}, FAIL, "BTCUSDT: 21 bars behind"),
        ({"BTCUSDT": 0, "ETHUSDT": None}, FAIL, "ETHUSDT: no candles"),
    ],
)
def test_freshness_verdicts(lags, status, words):
    newest = {s: None if lag is None else candle(lag) for s, lag in lags.items()}
    got = judge_freshness(newest, HOUR, REF, "now", 2)
    assert got.status == status, got.reason
    assert words in got.reason and "judged against now" in got.reason
    assert got.details["lag_bars"] == lags


def test_freshness_is_judged_against_universe_end_when_the_range_ended():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ref, label = reference_time(date(2025, 1, 1), now)
    assert ref == datetime(2025, 1, 1, tzinfo=UTC) and "universe.end 2025-01-01" in label
    ref, label = reference_time(date(2027, 1, 1), now)
    assert (ref, label) == (now, "now")


@pytest.fixture
def klines(ctx):
    """BTC Feb-Apr 2023, ETH Feb-Mar 2023 (its April missing): universe.end 2023-05-01."""
    bars = pl.concat(
        [
            load_sample_klines("BTCUSDT", ("2023-02", "2023-03", "2023-04")),
            load_sample_klines("ETHUSDT", ("2023-02", "2023-03")),
        ]
    )
    return ctx.catalog.upsert("klines", bars, stage="ingest")


def test_freshness_on_the_catalog_names_the_symbol_that_stopped(ctx, klines):
    got = check_freshness(ctx.catalog, ctx.config, datetime(2030, 1, 1, tzinfo=UTC))
    assert got.status == FAIL
    assert got.details["lag_bars"]["BTCUSDT"] == 0  # the sample's April ends 2023-04-30 23:00
    assert got.details["lag_bars"]["ETHUSDT"] == 30 * 24
    assert "ETHUSDT: 720 bars behind" in got.reason and "universe.end 2023-05-01" in got.reason


def test_freshness_ok_and_against_now_while_the_range_is_open(ctx, klines):
    cfg = ctx.config.model_copy(
        update={
            "universe": ctx.config.universe.model_copy(
                update={"symbols": ("BTCUSDT",), "end": date(2030, 1, 1)}
            )
        }
    )
    now = datetime(2023, 5, 1, 0, 40, tzinfo=UTC)
    got = check_freshness(ctx.catalog, cfg, now)
    assert got.status == OK and "judged against now" in got.reason
    later = check_freshness(ctx.catalog, cfg, now + timedelta(hours=5))
    assert later.status == WARN and "5 bars behind" in later.reason


def test_catalog_check(ctx, klines):
    missing = check_catalog(ctx.catalog)
    assert missing.status == FAIL
    assert missing.details["missing"] == ["klines_checks", "features", "labels", "predictions"]
    assert "make run" in missing.reason
    empty = check_catalog(type(ctx.catalog)(ctx.catalog.root / "nowhere"))
    assert empty.status == FAIL and "no catalog at" in empty.reason
    got = check_catalog(ctx.catalog, required=("klines",))
    assert got.status == OK and got.details["klines"] == klines.version


def _verdict(ctx, klines, passed: bool):
    frame = pl.DataFrame(
        {
            "check": ["ohlc_consistent"],
            "severity": ["error"],
            "success": [passed],
            "unexpected_count": [0 if passed else 3],
            "examples": [""],
            "dataset": ["klines"],
            "version": [klines.version],
        },
        schema_overrides={"version": pl.Int32},
    )
    extra = {"passed": passed, "failed_checks": [] if passed else ["ohlc_consistent"]}
    return ctx.catalog.write(
        "klines_checks",
        frame,
        stage="validate",
        inputs=[klines],
        config_hash=str(passed),
        extra=extra,
    )


def test_gate_check(ctx, klines):
    assert check_gate(ctx.catalog).status == FAIL  # never validated
    _verdict(ctx, klines, passed=False)
    failed = check_gate(ctx.catalog)
    assert failed.status == FAIL and "ohlc_consistent" in failed.reason
    _verdict(ctx, klines, passed=True)
    assert check_gate(ctx.catalog).status == OK
    more = load_sample_klines("ETHUSDT", ("2023-04",))
    newer = ctx.catalog.upsert("klines", more, stage="ingest")
    stale = check_gate(ctx.catalog)
    assert stale.status == WARN and f"klines@v{newer.version} is not validated" in stale.reason
