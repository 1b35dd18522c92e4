"""The retrain trigger rules (`quantlab.lifecycle.triggers.decide`), one row per rule and boundary."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from quantlab.config.lifecycle import TriggersConfig
from quantlab.lifecycle.triggers import Facts, Trigger, combine, decide, last_full, new_bars
from quantlab.tracking.registry import ModelRef

CFG = TriggersConfig(
    full_below=0.5,
    metric="accuracy",
    window_days=7,
    min_rows=48,
    full_after_bars=720,
    incremental_after_bars=12,
)


def facts(**kw) -> Facts:
    base = dict(
        model="m",
        family="main",
        champion_version=3,
        metric="accuracy",
        metric_value=0.55,
        metric_rows=100,
        bars_since_full=100,
        full_version=2,
        bars_since_champion=5,
    )
    return Facts(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "cfg", "action", "words"),
    [
        # accuracy below the level on enough live rows: full
        ({"metric_value": 0.49}, CFG, "full", "below 0.5"),
        # at the level exactly: not below
        ({"metric_value": 0.5}, CFG, "none", "no trigger"),
        # below, but one row short of min_rows: no accuracy trigger
        ({"metric_value": 0.40, "metric_rows": 47}, CFG, "none", "no trigger"),
        ({"metric_value": 0.40, "metric_rows": 48}, CFG, "full", "48 rows"),
        # no live rows (value None): the accuracy rule cannot fire
        ({"metric_value": None, "metric_rows": 0}, CFG, "none", "no live rows"),
        # the level off in config
        ({"metric_value": 0.1}, CFG.model_copy(update={"full_below": None}), "none", "no trigger"),
        # a regime model's six-class accuracy is not held to the main model's level
        ({"metric_value": 0.2, "family": "regime"}, CFG, "none", "no trigger"),
        # logloss: lower is better, so "worse than the level" is above it
        (
            {"metric": "logloss", "metric_value": 0.70},
            CFG.model_copy(update={"metric": "logloss", "full_below": 0.69}),
            "full",
            "above 0.69",
        ),
        (
            {"metric": "logloss", "metric_value": 0.60},
            CFG.model_copy(update={"metric": "logloss", "full_below": 0.69}),
            "none",
            "no trigger",
        ),
        # new labelled bars since the last full retrain: the boundary is inclusive
        ({"bars_since_full": 719}, CFG, "none", "no trigger"),
        ({"bars_since_full": 720}, CFG, "full", "since the last full retrain (v2) >= 720"),
        ({"bars_since_full": 5000}, CFG.model_copy(update={"full_after_bars": None}), "none", ""),
        # incremental: new labelled bars since the champion
        ({"bars_since_champion": 11}, CFG, "none", "no trigger"),
        ({"bars_since_champion": 12}, CFG, "incremental", "since the champion v3"),
        # full outranks incremental when both hold
        ({"bars_since_full": 800, "bars_since_champion": 800}, CFG, "full", "full retrain"),
        ({"metric_value": 0.3, "bars_since_champion": 800}, CFG, "full", "below"),
        # no champion at all: nothing to track; the scheduled full retrain trains one
        ({"champion_version": None, "bars_since_full": 5000}, CFG, "none", "no champion"),
    ],
)
def test_decide(kw, cfg, action, words):
    out = decide(cfg, facts(**kw))
    assert out.action == action, out.reason
    assert words in out.reason
    assert out.details["champion_version"] == facts(**kw).champion_version  # the numbers travel


def test_combine_takes_the_strongest_action_and_names_who_asked():
    got = combine(
        [
            Trigger("a", "none", "quiet", {}),
            Trigger("b", "incremental", "12 bars", {}),
            Trigger("c", "incremental", "20 bars", {}),
        ]
    )
    assert (got.model, got.action) == ("ALL", "incremental")
    assert got.reason == "b: 12 bars; c: 20 bars"
    assert got.details == {"a": "none", "b": "incremental", "c": "incremental"}
    assert (
        combine([Trigger("a", "full", "x", {}), Trigger("b", "incremental", "y", {})]).action
        == "full"
    )
    assert combine([]).action == "none"


def test_new_bars_counts_bar_times_resolved_after_the_cut():
    t = lambda h: datetime(2024, 1, 1, h, tzinfo=UTC)  # noqa: E731
    truth = pl.DataFrame(
        {
            "symbol": ["A", "B", "A", "B", "A"],
            "open_time": [t(0), t(0), t(1), t(1), t(2)],
            "label_time": [t(4), t(4), t(5), t(5), t(6)],
        }
    ).with_columns(pl.col("open_time", "label_time").dt.cast_time_unit("ms"))
    assert new_bars(truth, t(4)) == 2  # bars 1h and 2h; two symbols of one bar count once
    assert new_bars(truth, t(3)) == 3
    assert new_bars(truth, t(6)) == 0
    assert new_bars(truth, None) is None


def test_last_full_is_the_newest_version_trained_from_scratch():
    def ref(v: int, mode: str) -> ModelRef:
        return ModelRef("m", v, None, "", {"quantlab.mode": mode})

    assert (
        last_full(
            [ref(1, "full"), ref(2, "incremental"), ref(3, "full"), ref(4, "incremental")]
        ).version
        == 3
    )
    assert last_full([ref(1, "incremental")]) is None
