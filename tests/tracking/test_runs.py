"""quantlab.tracking.runs on a SQLite store: the parent's per-fold metrics, the nested
children, batched logging past one request's limits, and masking."""

from __future__ import annotations

import math

import pytest

from quantlab.tracking import Redactor
from quantlab.tracking.runs import log_batch, log_children, numeric_items, parent_metrics

FOLDS = [
    {"model": "lightgbm", "fold": 0, "auc": 0.55, "logloss": 0.69, "trials": 4, "ok": True},
    {"model": "lightgbm", "fold": 1, "auc": float("nan"), "logloss": 0.70, "trials": 4},
    {"model": "xgboost", "fold": 0, "auc": 0.52, "logloss": 0.71, "trials": 4, "macro_f1": 0.4},
    {"model": "xgboost", "fold": 1, "auc": 0.50, "logloss": 0.72, "trials": 4, "macro_f1": 0.3},
]


def test_numeric_items_keeps_every_number_a_target_adds_and_nothing_else():
    assert numeric_items(FOLDS[2]) == {"auc": 0.52, "logloss": 0.71, "trials": 4.0, "macro_f1": 0.4}


def test_parent_metrics_step_by_fold_with_the_primary_kind_unprefixed():
    got = {(k, s): v for k, v, s in parent_metrics(FOLDS, "lightgbm")}
    assert got[("auc", 0)] == 0.55 and math.isnan(got[("auc", 1)])
    assert got[("xgboost_macro_f1", 1)] == 0.3 and got[("xgboost_fold1_macro_f1", 0)] == 0.3
    assert got[("fold0_logloss", 0)] == 0.69
    # A mean over the folds where the metric is defined: the NaN fold is left out.
    assert got[("mean_auc", 0)] == 0.55
    assert got[("xgboost_mean_logloss", 0)] == pytest.approx(0.715)
    assert not any(k.startswith(("ok", "fold0_ok")) for k, _ in got)


def test_children_are_nested_under_the_parent_with_their_folds_metrics_and_params(store):
    client, experiment_id = store
    parent = client.create_run(experiment_id, run_name="walk-forward").info.run_id
    params = [
        {"model": r["model"], "fold": r["fold"], "num_leaves": 7 + i} for i, r in enumerate(FOLDS)
    ]
    ids = log_children(experiment_id, parent, FOLDS, params, {}, redactor=Redactor())
    assert set(ids) == {("lightgbm", 0), ("lightgbm", 1), ("xgboost", 0), ("xgboost", 1)}
    for (kind, fold), run_id in ids.items():
        run = client.get_run(run_id)
        assert run.data.tags["mlflow.parentRunId"] == parent
        assert run.info.run_name == f"{kind} fold {fold}" and run.info.status == "FINISHED"
        want = next(r for r in FOLDS if (r["model"], r["fold"]) == (kind, fold))
        assert run.data.metrics["logloss"] == want["logloss"]
        assert [m.step for m in client.get_metric_history(run_id, "logloss")] == [fold]
    assert client.get_run(ids[("xgboost", 1)]).data.params == {"num_leaves": "10"}


def test_log_batch_takes_more_than_one_requests_worth_and_masks_params_and_tags(store):
    client, experiment_id = store
    run_id = client.create_run(experiment_id).info.run_id
    metrics = [("m", float(i), i) for i in range(2500)]  # the server takes 1000 per request
    params = {f"p{i}": i for i in range(150)}  # and 100 params + tags
    log_batch(
        run_id,
        metrics=metrics,
        params={**params, "url": "postgresql://u:pw-xyz1@db/x"},
        tags={"note": "token tok-abc123"},
        redactor=Redactor(["tok-abc123"]),
        client=client,
    )
    assert len(client.get_metric_history(run_id, "m")) == 2500
    run = client.get_run(run_id)
    assert len(run.data.params) == 151
    assert run.data.params["url"] == "postgresql://u:***@db/x"
    assert run.data.tags["note"] == "token ***"
