"""The train stage with a non-default target: per-symbol 3-class models through the whole
research pipeline on real sample data, registered one per symbol, traded from `score`."""

from __future__ import annotations

import pytest

from helpers import write_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from quantlab.context import RunContext
    from quantlab.pipeline import run_research

    tmp = tmp_path_factory.mktemp("targets")
    train = {"target": "direction", "per_symbol": True, "trials": 1, "register_as": "qt"}
    ctx = RunContext.load(write_config(tmp, train=train))
    return ctx, run_research(ctx)


def test_direction_predictions_carry_class_probabilities_and_reach_the_backtest(trained):
    ctx, refs = trained
    preds = ctx.catalog.read(refs["predictions"])
    assert preds["prob_down"].is_not_null().all() and preds["pred_ret"].is_null().all()
    folds = ctx.catalog.lineage(refs["predictions"]).extra["fold_metrics"]
    assert all(m["macro_f1"] is not None and "auc" not in m for m in folds)
    assert "backtest" in refs and "targets" in refs  # the score drove the rest of the run


def test_each_symbol_model_is_registered_under_its_own_name(trained):
    import mlflow

    ctx, _ = trained
    client = mlflow.MlflowClient(tracking_uri=ctx.config.tracking.uri)
    names = {m.name for m in client.search_registered_models()}
    assert {"qt-BTCUSDT", "qt-ETHUSDT"} <= names and "qt" not in names
