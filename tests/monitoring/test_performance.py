"""The accuracy and paper checks on tiny frames; the day's start agrees with the breakers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantlab.catalog.datasets import DATASETS
from quantlab.config.monitoring import AccuracyMonitorConfig, PaperMonitorConfig
from quantlab.execution import breakers
from quantlab.monitoring.performance import check_accuracy, check_paper
from quantlab.portfolio.orders import TradingState

AS_OF = datetime(2023, 3, 24, 2, 30, tzinfo=UTC)
ACC = AccuracyMonitorConfig(warn_below=0.5, alert_below=0.45, min_rows=24)


def _accuracy_rows(cases: list[tuple[int, str, int, float | None]]) -> pl.DataFrame:
    end = AS_OF - timedelta(hours=2)
    rows = [
        {
            "model": "main_pooled",
            "version": 3,
            "window_days": days,
            "symbol": symbol,
            "rows": n,
            "accuracy": acc,
            "metric": "log_loss",
            "value": None if acc is None else 1.0 - acc,
            "source": "live" if days == 7 else "oos",
            "start": end - timedelta(days=days),
            "end": end,
            "as_of": AS_OF,
        }
        for days, symbol, n, acc in cases
    ]
    return pl.DataFrame(rows, schema=dict(DATASETS["live_accuracy"].schema))


@pytest.mark.parametrize(
    ("n", "acc", "level", "threshold"),
    [
        (100, 0.55, "ok", 0.45),
        (100, 0.50, "ok", 0.45),  # at the floor is not below it
        (100, 0.49, "warn", 0.5),
        (100, 0.45, "warn", 0.5),
        (100, 0.30, "alert", 0.45),
        (24, 0.30, "alert", 0.45),
        (23, 0.30, "n/a", 0.45),  # too few resolved rows to judge
        (0, None, "n/a", 0.45),
    ],
)
def test_check_accuracy_levels(n, acc, level, threshold):
    got = check_accuracy(_accuracy_rows([(7, "BTCUSDT", n, acc)]), AS_OF, ACC)
    DATASETS["monitor_accuracy"].check(got)
    row = got.row(0, named=True)
    assert (row["level"], row["threshold"], row["value"], row["accuracy"]) == (
        level,
        threshold,
        acc,
        acc,
    )
    assert row["subject"] == "main_pooled/7d/BTCUSDT" and row["check"] == "accuracy"
    assert (row["model_version"], row["rows"], row["source"]) == (3, n, "live")
    assert row["metric"] == "log_loss" and row["metric_value"] == (None if acc is None else 1 - acc)
    assert ("min_rows" in row["message"]) == (level == "n/a")


def test_check_accuracy_keeps_every_window_and_symbol():
    rows = _accuracy_rows(
        [
            (30, "ALL", 700, 0.52),
            (7, "ALL", 160, 0.44),
            (7, "BTCUSDT", 80, 0.47),
            (14, "ALL", 330, 0.5),
        ]
    )
    got = check_accuracy(rows, AS_OF, ACC)
    assert got["subject"].to_list() == [
        "main_pooled/7d/ALL",
        "main_pooled/7d/BTCUSDT",
        "main_pooled/14d/ALL",
        "main_pooled/30d/ALL",
    ]
    assert got["level"].to_list() == ["alert", "warn", "ok", "ok"]
    assert (got["as_of"] == AS_OF).all()


def test_check_accuracy_of_nothing_is_empty():
    got = check_accuracy(_accuracy_rows([]), AS_OF, ACC)
    assert got.height == 0
    DATASETS["monitor_accuracy"].check(got)


def _t(day: int, hour: int) -> datetime:
    return datetime(2023, 3, day, hour, tzinfo=UTC)


# Marks at bar closes: the 23:00 bar closes at 00:00 and is the day's start for the breaker.
MARKS = [
    ("paper", _t(23, 22), 1000.0, 500.0),
    ("paper", _t(23, 23), 1100.0, 500.0),  # the peak
    ("paper", _t(24, 0), 1050.0, 500.0),  # 00:00: the day starts here
    ("paper", _t(24, 1), 1000.0, 500.0),
    ("paper", _t(24, 2), 990.0, 495.0),  # the newest mark at 02:30
    ("paper", _t(24, 3), 100.0, 0.0),  # after as_of: ignored
]


def _equity(marks: list[tuple]) -> pl.DataFrame:
    rows = [
        {"account": a, "time": t, "equity": e, "cash": e - g, "gross_exposure": g}
        for a, t, e, g in marks
    ]
    return pl.DataFrame(rows, schema=dict(DATASETS["paper_equity"].schema))


def _paper(marks, *, kill_dd=0.12, kill_daily=0.05, max_gross=1.0, cfg=None) -> pl.DataFrame:
    got = check_paper(
        _equity(marks),
        AS_OF,
        kill_drawdown=kill_dd,
        kill_daily_loss=kill_daily,
        max_gross=max_gross,
        cfg=cfg or PaperMonitorConfig(warn_fraction=0.75),
    )
    DATASETS["monitor_paper"].check(got)
    return got


def _by_measure(got: pl.DataFrame) -> dict[str, dict]:
    return {r["measure"]: r for r in got.iter_rows(named=True)}


def test_check_paper_measures_against_the_breakers():
    got = _by_measure(_paper(MARKS))
    assert list(got) == ["pnl", "drawdown", "daily_loss", "exposure"]
    pnl, dd, daily, exp = got["pnl"], got["drawdown"], got["daily_loss"], got["exposure"]
    assert (pnl["level"], pnl["threshold"], pnl["value"]) == ("ok", None, pytest.approx(-10.0))
    assert dd["value"] == pytest.approx(1 - 990 / 1100)  # 9.1%: past 0.75 x 12%
    assert (dd["level"], dd["threshold"]) == ("warn", pytest.approx(0.09))
    assert daily["value"] == pytest.approx(1 - 990 / 1050)  # 5.7% since 00:00
    assert (daily["level"], daily["threshold"]) == ("alert", 0.05)
    assert "quantlab paper resume" in daily["message"]
    assert exp["value"] == pytest.approx(495 / 990)
    assert (exp["level"], exp["threshold"]) == ("ok", 1.0)
    for row in got.values():
        assert row["subject"] == f"paper/{row['measure']}" and row["check"] == "paper"
        assert (row["time"], row["equity"], row["peak_equity"]) == (_t(24, 2), 990.0, 1100.0)
        assert row["gross_exposure"] == 495.0 and row["as_of"] == AS_OF


def test_the_day_start_is_the_breakers():
    # Replay the marks through the breaker's own tracking (keyed by bar open, as the session
    # does) and compare its day start with the one the check's daily loss uses.
    state, prev = TradingState(), None
    for _, close, equity, _ in MARKS[:5]:
        open_ms = int((close - timedelta(hours=1)).timestamp() * 1000)
        state, prev = breakers.track(state, equity, open_ms, prev), equity
    daily = _by_measure(_paper(MARKS))["daily_loss"]["value"]
    assert daily == pytest.approx(1 - 990 / state.day_start_equity)


def test_an_account_started_today_starts_from_its_first_mark():
    got = _by_measure(_paper([m for m in MARKS if m[1] > _t(24, 0)]))
    assert got["daily_loss"]["value"] == pytest.approx(1 - 990 / 1000)
    assert got["drawdown"]["value"] == pytest.approx(1 - 990 / 1000)
    assert got["pnl"]["value"] == pytest.approx(-10.0)


@pytest.mark.parametrize(
    ("max_gross", "cfg_cap", "gross", "level", "threshold"),
    [
        (1.0, None, 990.0, "ok", 1.0),  # fully invested is at the cap, not above it
        (1.0, None, 1000.0, "alert", 1.0),
        (1.0, 2.0, 1500.0, "ok", 2.0),  # the monitoring cap wins over max_gross
        (3.0, 0.4, 495.0, "alert", 0.4),
    ],
)
def test_exposure_against_its_cap(max_gross, cfg_cap, gross, level, threshold):
    marks = [*MARKS[:4], ("paper", _t(24, 2), 990.0, gross)]
    cfg = PaperMonitorConfig(max_gross_exposure=cfg_cap)
    row = _by_measure(_paper(marks, max_gross=max_gross, cfg=cfg))["exposure"]
    assert (row["level"], row["threshold"]) == (level, threshold)
    assert row["value"] == pytest.approx(gross / 990)


def test_breakers_that_are_off_are_not_judged():
    got = _by_measure(_paper(MARKS, kill_dd=None, kill_daily=None))
    for measure in ("drawdown", "daily_loss"):
        assert (got[measure]["level"], got[measure]["threshold"]) == ("ok", None)
        assert "off" in got[measure]["message"]


def test_each_account_gets_its_rows_and_late_accounts_none():
    other = [("shadow", _t(24, 1), 500.0, 0.0), ("late", _t(24, 3), 1.0, 0.0)]
    got = _paper([*MARKS, *other])
    assert got["subject"].to_list() == [
        f"{a}/{m}"
        for a in ("paper", "shadow")
        for m in ("pnl", "drawdown", "daily_loss", "exposure")
    ]
    shadow = _by_measure(got.filter(pl.col("account") == "shadow"))
    assert [r["level"] for r in shadow.values()] == ["ok"] * 4


def test_no_marks_no_rows():
    assert _paper([]).height == 0
