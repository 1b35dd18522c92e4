"""The train stage writes `feature_importance` beside `predictions` and logs SHAP to MLflow; a
rerun skips only when both versions hold the training (on two months of the shipped sample)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from helpers import load_sample_klines, write_config
from quantlab.catalog import DATASETS, ExplainRun
from quantlab.context import RunContext
from quantlab.features import build_features
from quantlab.labels import build_labels

TRAIN = {"models": ["lightgbm", "xgboost"], "trials": 1, "num_boost_round": 20}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Train three times on one catalog: first with the SHAP step taken out (a version of
    `predictions` without its `feature_importance`, as a crash between the two would leave),
    then as shipped, then again."""
    from quantlab.train import stage

    ctx = RunContext.load(write_config(tmp_path_factory.mktemp("explain"), train=TRAIN))
    bars = pl.concat(
        [load_sample_klines(s, ("2023-02", "2023-03")) for s in ("BTCUSDT", "ETHUSDT")]
    )
    feats = ctx.catalog.write(
        "features", build_features(bars, ctx.config.features), stage="features"
    )
    labels = ctx.catalog.write("labels", build_labels(bars, ctx.config.labels), stage="labels")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage, "record_explanations", lambda *args, **kwargs: None)
        bare = stage.run(ctx, feats, labels)
    assert not ctx.catalog.exists("feature_importance")
    shipped = stage.run(ctx, feats, labels)
    importance = ctx.catalog.latest("feature_importance")
    again = stage.run(ctx, feats, labels)
    return ctx, (feats, labels), bare, shipped, importance, again


def test_a_missing_importance_is_trained_for_and_then_skipped(runs):
    ctx, _, bare, shipped, importance, again = runs
    # The second run trained (the importance was missing) and reproduced the same predictions.
    assert shipped == bare == again
    assert importance.version == 0
    assert ctx.catalog.latest("feature_importance") == importance  # the third run skipped
    assert len(ctx.catalog.versions("predictions")) == 1


def test_feature_importance_has_its_schema_key_and_lineage(runs):
    ctx, (feats, labels), _, shipped, importance, _ = runs
    frame = ctx.catalog.read(importance)
    DATASETS["feature_importance"].check(frame)
    assert frame.columns == list(DATASETS["feature_importance"].schema)
    assert frame.select("model", "fold", "output", "feature").is_unique().all()
    features = [c for c in ctx.catalog.read(feats).columns if c not in ("symbol", "open_time")]
    features.append("symbol")  # the pooled model's (the default's) symbol code is explained too
    # Every feature of every fold (3) of both kinds, one output each (binary).
    assert frame.height == 2 * 3 * len(features)
    assert set(frame["feature"]) == set(features) and set(frame["output"]) == {0}
    assert (frame["mean_abs_shap"] >= frame["mean_shap"].abs()).all()
    lineage = ctx.catalog.lineage(importance)
    assert lineage.stage == "train"
    assert lineage.inputs == {"features": feats.version, "labels": labels.version}
    assert lineage.fingerprint == ctx.catalog.lineage(shipped).fingerprint
    facts = ExplainRun.of(lineage)
    assert {(s.model, s.folds, s.top_k) for s in facts.stability} == {
        ("lightgbm", 3, 10),
        ("xgboost", 3, 10),
    }
    assert all(-1 <= s.rank_corr_median <= 1 for s in facts.stability)


def test_the_mlflow_run_holds_the_shap_tables_plots_and_stability(runs):
    import mlflow

    ctx, _, _, _, importance, _ = runs
    run_id = ExplainRun.of(ctx.catalog.lineage(importance)).mlflow_run_id
    client = mlflow.MlflowClient(tracking_uri=ctx.config.tracking.uri)
    files = {a.path for a in client.list_artifacts(run_id, "shap")}
    pngs = {f"shap/beeswarm_{k}_fold{f}.png" for k in ("lightgbm", "xgboost") for f in range(3)}
    assert {"shap/importance.csv", "shap/stability.json", "shap/sign_flips.csv"} | pngs <= files
    with open(client.download_artifacts(run_id, "shap/beeswarm_lightgbm_fold0.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    logged = pl.read_csv(client.download_artifacts(run_id, "shap/importance.csv"))
    assert logged.height == ctx.catalog.read(importance).height
    with open(client.download_artifacts(run_id, "shap/stability.json")) as f:
        stability = json.load(f)
    assert {row["model"] for row in stability["summary"]} == {"lightgbm", "xgboost"}
    metrics = client.get_run(run_id).data.metrics
    # The primary kind's plain, the other's prefixed, as the fold metrics are named.
    for name in ("shap_rank_corr_median", "shap_topk_jaccard", "shap_sign_flips"):
        assert name in metrics and f"xgboost_{name}" in metrics
