"""`quantlab.train.tune_slots`, the `tune` DAG's side: the plan refuses what the storage cannot
share, the report is short before a slot ran and complete after, and a slot counts its own
trials."""

from __future__ import annotations

import pytest

from helpers import load_sample_klines, write_config
from quantlab.context import RunContext
from quantlab.errors import ConfigError
from quantlab.features import build_features
from quantlab.labels import build_labels
from quantlab.train.tune import report_lines
from quantlab.train.tune_slots import Slot, plan_slots, report_slots, run_slot

TRAIN = {
    "folds": 3,
    "trials": 3,
    "num_boost_round": 15,
    "embargo_bars": 6,
    "prune_warmup_rounds": 4,
    "prune_startup_trials": 2,
    "report_interval": 2,
}


@pytest.fixture
def tuned_ctx(tmp_path) -> RunContext:
    ctx = RunContext.load(write_config(tmp_path, train=TRAIN))
    bars = load_sample_klines("BTCUSDT", ("2023-02", "2023-03"))
    ctx.catalog.write(
        "features", build_features(bars, ctx.config.features), stage="features", config_hash="t"
    )
    ctx.catalog.write(
        "labels", build_labels(bars, ctx.config.labels), stage="labels", config_hash="t"
    )
    return ctx


def test_two_slots_on_sqlite_are_refused_with_the_fix(tuned_ctx):
    with pytest.raises(ConfigError, match="postgresql"):
        plan_slots(tuned_ctx, 2)
    with pytest.raises(ConfigError, match="trials is 0"):
        plan_slots(tuned_ctx, 1, trials=0)


def test_a_slot_fills_the_studies_the_report_found_short(tuned_ctx):
    (slot,) = plan_slots(tuned_ctx, 1, trials=2)
    assert slot == Slot.from_dict(slot.to_dict())
    assert (slot.features.version, slot.labels.version, slot.worker) == (0, 0, 0)

    before = report_slots(tuned_ctx, slot)
    assert len(before.studies) == 3 and not before.done
    assert [s.finished for s in before.short] == [0, 0, 0] and before.trials_per_minute is None

    ran = run_slot(tuned_ctx, slot)
    after = report_slots(tuned_ctx, slot)
    assert after.done and after.short == [] and after.target == 2
    assert ran["worker"] == 0 and ran["trials"] == sum(s.finished for s in after.studies) >= 6
    assert after.trials_per_minute is not None and after.trials_per_minute > 0
    lines = report_lines(after)
    assert len(lines) == 1 + 3 + 1 and "trials per minute" in lines[-1]
