"""Every stage has the same shape: `quantlab/<stage>/stage.py` holds `run`, its package exports it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import quantlab

STAGES = ("ingest", "quality", "features", "labels", "train", "backtest", "risk", "execution")


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_is_a_package_whose_stage_module_holds_run(name):
    package = importlib.import_module(f"quantlab.{name}")
    stage = importlib.import_module(f"quantlab.{name}.stage")
    assert package.__path__  # a package, not a loose module
    assert package.run is stage.run
    assert next(iter(inspect.signature(stage.run).parameters)) == "ctx"


def test_no_loose_stage_modules_and_no_module_called_report():
    top = {m.name for m in pkgutil.iter_modules(quantlab.__path__)}
    assert not top & {"validate", "bars", "risk_", "signals", "report"}
    names = [m.name for m in pkgutil.walk_packages(quantlab.__path__, "quantlab.")]
    assert not [n for n in names if n.rsplit(".", 1)[-1] == "report"]


def test_pure_cores_are_verbs_not_run():
    """Only a stage's entry points may be called run*; the cores they call are named for what they do."""
    from quantlab import backtest, portfolio

    exported = {*backtest.__all__, *portfolio.__all__}
    assert not [n for n in exported if n.startswith("run_")]
    assert {"simulate", "directions_from_scores", "size_targets"} <= exported
