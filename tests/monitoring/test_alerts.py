"""The alert plan: a condition fires once, stays quiet while it holds, repeats after the rate
limit, resolves when its check stops judging it bad; retries send only what was not sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantlab.catalog.datasets import DATASETS
from quantlab.monitoring.alerts import mark_sent, plan_alerts, undelivered
from quantlab.monitoring.findings import COMMON

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
REPEAT = timedelta(hours=6)
EMPTY = pl.DataFrame(schema=DATASETS["monitor_alerts"].schema)


def finding(check: str, subject: str, level: str, as_of: datetime = T0, value: float = 5.0):
    return {
        "as_of": as_of,
        "check": check,
        "subject": subject,
        "level": level,
        "value": value,
        "threshold": 3.0,
        "message": f"{subject} is {level}; look at it",
    }


def frame(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=COMMON, orient="row")


def plan(findings, history, as_of=T0, min_level="alert"):
    out = plan_alerts(findings, history, as_of, min_level=min_level, repeat_after=REPEAT)
    DATASETS["monitor_alerts"].check(out)
    return out


def upsert(history: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """What the catalog's merge on (key, at, status) does."""
    both = pl.concat([history, rows])
    return both.unique(["key", "at", "status"], keep="last", maintain_order=True)


STALE = finding("freshness", "spot:BTCUSDT:1h", "alert")


@pytest.mark.parametrize(
    ("level", "min_level", "fires"),
    [
        ("alert", "alert", True),
        ("warn", "alert", False),
        ("warn", "warn", True),
        ("ok", "warn", False),
        ("n/a", "warn", False),
    ],
)
def test_a_finding_fires_at_or_above_the_minimum_level(level, min_level, fires):
    out = plan(frame(finding("drift", "m/ret_1", level)), EMPTY, min_level=min_level)
    assert out.height == int(fires)
    if fires:
        row = out.row(0, named=True)
        assert row["key"] == "drift:m/ret_1"
        assert (row["status"], row["level"], row["at"]) == ("fired", level, T0)
        assert row["sent_at"] is None and row["channel"] is None
        assert row["message"] == "m/ret_1 is " + level + "; look at it"


def test_two_runs_with_the_same_stale_series_fire_once():
    history = upsert(EMPTY, plan(frame(STALE), EMPTY))
    assert history.height == 1
    # the very same run again (an Airflow retry) and the next hourly run: nothing new
    assert plan(frame(STALE), history).height == 0
    later = finding("freshness", "spot:BTCUSDT:1h", "alert", T0 + HOUR, value=6.0)
    assert plan(frame(later), history, T0 + HOUR).height == 0


def test_a_condition_still_true_repeats_after_the_rate_limit():
    history = upsert(EMPTY, plan(frame(STALE), EMPTY))
    assert plan(frame(STALE), history, T0 + REPEAT - timedelta(minutes=1)).height == 0
    again = plan(frame(STALE), history, T0 + REPEAT)
    assert again["status"].to_list() == ["fired"]
    assert "still true; last alerted 2024-03-01 12:00 UTC" in again["message"][0]
    # and is then quiet again for the next window, counted from the repeat
    history = upsert(history, again)
    assert plan(frame(STALE), history, T0 + REPEAT + HOUR).height == 0


def test_a_condition_resolves_once_then_fires_again_when_it_comes_back():
    history = upsert(EMPTY, plan(frame(STALE), EMPTY))
    fresh = finding("freshness", "spot:BTCUSDT:1h", "ok", T0 + HOUR, value=0.0)
    resolved = plan(frame(fresh), history, T0 + HOUR)
    assert resolved.select("key", "status", "level").rows() == [
        ("freshness:spot:BTCUSDT:1h", "resolved", "ok")
    ]
    assert resolved["message"][0].startswith("resolved (now ok")
    history = upsert(history, resolved)
    assert plan(frame(fresh), history, T0 + 2 * HOUR).height == 0
    # stale again an hour after resolving: fires at once, the rate limit counts open alerts only
    back = plan(frame(STALE), history, T0 + 2 * HOUR)
    assert back.select("status", "at").rows() == [("fired", T0 + 2 * HOUR)]


def test_a_subject_its_check_no_longer_reports_resolves_but_a_check_that_did_not_run_does_not():
    history = upsert(EMPTY, plan(frame(STALE, finding("drift", "m/ret_1", "alert")), EMPTY))
    assert history.height == 2
    # this run: freshness judged another series only, drift did not run at all
    other = finding("freshness", "spot:ETHUSDT:1h", "ok", T0 + HOUR)
    out = plan(frame(other), history, T0 + HOUR)
    assert out.select("key", "status", "level").rows() == [
        ("freshness:spot:BTCUSDT:1h", "resolved", "n/a")
    ]
    assert "no longer reported" in out["message"][0]


def test_several_findings_of_one_condition_count_once_at_their_worst():
    out = plan(frame(finding("tasks", "d.t", "ok"), finding("tasks", "d.t", "alert")), EMPTY)
    assert out.select("key", "level").rows() == [("tasks:d.t", "alert")]


def test_a_naive_as_of_is_utc_and_a_bad_min_level_is_refused():
    naive = plan(frame(STALE), EMPTY, as_of=T0.replace(tzinfo=None))
    assert naive["at"][0] == T0
    with pytest.raises(ValueError, match="min_level"):
        plan_alerts(frame(STALE), EMPTY, T0, min_level="ok", repeat_after=REPEAT)


def test_undelivered_holds_the_fired_rows_not_sent_and_mark_sent_records_delivery():
    fired = plan(frame(STALE, finding("drift", "m/ret_1", "alert")), EMPTY)
    history = upsert(EMPTY, fired)
    assert undelivered(EMPTY).height == 0
    assert sorted(undelivered(history)["key"]) == ["drift:m/ret_1", "freshness:spot:BTCUSDT:1h"]
    sent_at = T0 + timedelta(seconds=3)
    sent = mark_sent(undelivered(history).head(1), sent_at, "webhook")
    DATASETS["monitor_alerts"].check(sent)
    assert sent.select("sent_at", "channel").rows() == [(sent_at, "webhook")]
    history = upsert(history, sent)
    assert history.height == 2  # the same (key, at, status): replaced, not added
    assert undelivered(history)["key"].to_list() == ["freshness:spot:BTCUSDT:1h"]
    # a resolved row is never resent
    fresh = finding("freshness", "spot:BTCUSDT:1h", "ok", T0 + HOUR)
    history = upsert(history, mark_sent(undelivered(history), sent_at, "log"))
    history = upsert(
        history, plan(frame(fresh, finding("drift", "m/ret_1", "alert")), history, T0 + HOUR)
    )
    assert "resolved" in history["status"].to_list()
    assert undelivered(history).height == 0
