"""The promotion rule, pure: which check decides, and that every decision carries its numbers."""

from __future__ import annotations

import json

import pytest

from quantlab.config.lifecycle import GateConfig
from quantlab.lifecycle.gate import Evidence, decide

CFG = GateConfig(
    metric="auc", margin=0.01, min_common_rows=100, dsr_floor=0.5, shap_stability_floor=0.2
)


def evidence(**kw) -> Evidence:
    base = dict(
        metric="auc",
        challenger_value=0.56,
        champion_value=0.54,
        common_rows=1000,
        champion_version=3,
        dsr=0.7,
        shap_stability=0.4,
    )
    return Evidence(**{**base, **kw})


def test_the_first_model_becomes_champion_with_its_checks_recorded():
    d = decide(CFG, evidence(champion_version=None, champion_value=None, dsr=0.1))
    assert d.decision == "first" and d.promote
    checks = {c.name: c for c in d.checks}
    assert checks["dsr"].passed is False and checks["dsr"].value == 0.1  # recorded, not binding


def test_a_challenger_that_beats_by_the_margin_on_every_check_is_promoted():
    d = decide(CFG, evidence())
    assert d.decision == "promoted" and d.promote
    assert "0.5600" in d.reason and "0.5400" in d.reason and "1000 common rows" in d.reason
    tags = d.tags()
    assert tags["gate.decision"] == "promoted" and tags["gate.champion_version"] == "3"
    assert float(tags["gate.challenger_value"]) == pytest.approx(0.56)
    assert {c["name"] for c in json.loads(tags["gate.checks"])} == {
        "auc vs champion v3",
        "dsr",
        "shap_stability",
    }


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"challenger_value": 0.545}, "does not beat the champion's 0.5400 by the margin 0.01"),
        ({"common_rows": 99}, "not comparable: 99 common out-of-sample rows"),
        ({"challenger_value": None}, "auc undefined"),
        ({"dsr": 0.3}, "dsr: 0.3000 < floor 0.5"),
        ({"shap_stability": 0.1}, "shap_stability: 0.1000 < floor 0.2"),
    ],
)
def test_a_failed_check_keeps_the_challenger_and_says_why(kw, why):
    d = decide(CFG, evidence(**kw))
    assert d.decision == "kept" and not d.promote
    assert d.reason.startswith("stays challenger: ") and why in d.reason


def test_a_missing_backtest_or_explanation_does_not_block_but_is_recorded():
    d = decide(
        CFG,
        evidence(
            dsr=None, shap_stability=None, notes={"dsr": "no backtest of these predictions yet"}
        ),
    )
    assert d.decision == "promoted"
    dsr = next(c for c in d.checks if c.name == "dsr")
    assert dsr.passed is None and dsr.note == "no backtest of these predictions yet"


def test_checks_off_in_config_are_not_applied():
    cfg = CFG.model_copy(update={"dsr_floor": None, "shap_stability_floor": None})
    d = decide(cfg, evidence(dsr=0.0, shap_stability=-1.0))
    assert d.decision == "promoted"
    assert all(c.passed is None for c in d.checks if c.name != "auc vs champion v3")


def test_lower_is_better_metrics_compare_the_other_way():
    cfg = CFG.model_copy(update={"metric": "logloss", "margin": 0.001})
    better = decide(cfg, evidence(metric="logloss", challenger_value=0.690, champion_value=0.693))
    worse = decide(cfg, evidence(metric="logloss", challenger_value=0.6925, champion_value=0.693))
    assert better.decision == "promoted" and worse.decision == "kept"
