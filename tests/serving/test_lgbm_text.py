"""`lgbm_text` against LightGBM itself: the same bits as `Booster.predict(x, num_iteration=k)`.

Real models on the real features of the `served` catalog (BTC and ETH 1h, H1 2023): the
pooled binary champion the pipeline trained (the `symbol` code a categorical split), and a
3-class, a 6-class and a regression model fitted here on the same rows. The rows include the
features' warm-up nulls (NaN in the matrix), codes the model never saw, negative and
fractional codes, and values at LightGBM's zero threshold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from quantlab.serving.lgbm_text import K_ZERO, UnsupportedModel, load_text, parse_text
from quantlab.serving.model import load_model
from quantlab.vocab import KEY, REGIMES
from serving.support import MAIN, REGIME, SYMBOLS


def _same(text, booster: lgb.Booster, x: np.ndarray, rounds=(0, 1, 3, 10_000)) -> None:
    for k in rounds:
        want = booster.predict(x, num_iteration=k)
        got = text.predict(x, k)
        assert got.shape == want.shape
        assert np.array_equal(got, want), (k, np.abs(got - want).max())


@pytest.fixture(scope="module")
def rows(served) -> pl.DataFrame:
    """Every features row (warm-up nulls included) with its 4-bar labels and regime."""
    features = served.ctx.catalog.read(served.features)
    labels = served.ctx.catalog.read(served.labels).select(*KEY, "dir_4", "fwd_ret_4")
    return features.join(labels, on=KEY, how="left").sort(KEY)


@pytest.fixture(scope="module")
def champion(served):
    return load_model(served.registry, served.registry.champion(MAIN))


def _fit(rows: pl.DataFrame, columns: list[str], target: str, params: dict) -> lgb.Booster:
    """A small pooled LightGBM on `rows` (the symbol code as a categorical column, last)."""
    keep = rows.filter(pl.col(target).is_not_null())
    x = _matrix(keep, columns)
    y = keep[target].cast(pl.Float64).to_numpy()
    base = {"verbose": -1, "seed": 0, "num_threads": 1, "num_leaves": 15}
    data = lgb.Dataset(x, y, categorical_feature=[len(columns)])
    return lgb.train(base | params, data, num_boost_round=12)


def _matrix(rows: pl.DataFrame, columns: list[str]) -> np.ndarray:
    x = rows.select(columns).cast(pl.Float64).to_numpy()
    codes = rows["symbol"].replace_strict(list(SYMBOLS), [0.0, 1.0], return_dtype=pl.Float64)
    return np.column_stack([x, codes.to_numpy()])


def _odd_codes(x: np.ndarray) -> np.ndarray:
    """`x` with the last (symbol) column set to codes LightGBM must send right, or truncate."""
    odd = np.array([-1.0, -0.5, 0.5, 1.7, 2.0, 31.0, 32.0, 100.0, np.nan, -3.0, 2.0**31, 1e12])
    out = x[: len(odd)].copy()
    out[:, -1] = odd
    return out


def test_the_pooled_champion_gives_lightgbms_bits(champion, rows):
    assert champion.evaluates and champion.pooled
    x = champion.matrix(rows)
    assert np.isnan(x).any(axis=1).sum() > 100  # the warm-up rows' nulls are NaN
    assert champion.trees.iterations >= champion.rounds > 1
    _same(champion.trees, champion.booster, x, (0, 1, 5, champion.rounds, 10_000))
    _same(champion.trees, champion.booster, _odd_codes(x[-200:]))


def test_values_at_the_zero_threshold_are_zero(champion, rows):
    x = champion.matrix(rows.tail(50))
    for value in (K_ZERO, -K_ZERO, 1e-36, -1e-36, 0.0, -0.0, np.nextafter(K_ZERO, 1.0)):
        y = x.copy()
        y[:, :-1] = value
        _same(champion.trees, champion.booster, y)


@pytest.mark.parametrize(
    ("target", "params"),
    [
        ("dir_4", {"objective": "multiclass", "num_class": 3}),
        ("fwd_ret_4", {"objective": "regression"}),
        ("label_up", {"objective": "binary", "sigmoid": 0.7, "zero_as_missing": True}),
    ],
)
def test_a_model_per_task_gives_lightgbms_bits(rows, champion, target, params):
    frame = rows
    if target == "dir_4":
        frame = rows.with_columns(pl.col("dir_4") + 1)  # -1/0/+1 as the classes 0/1/2
    if target == "label_up":
        frame = rows.with_columns((pl.col("fwd_ret_4") > 0).cast(pl.Int8).alias("label_up"))
    columns = list(champion.features)
    booster = _fit(frame, columns, target, params)
    text = parse_text(booster.model_to_string())
    x = _matrix(rows, columns)
    _same(text, booster, x)
    _same(text, booster, _odd_codes(x[-100:]))


def test_categorical_bitsets_of_many_codes(rows, champion):
    """Ten codes (symbol x month mod 5) a target depends on: bitset splits, not one-vs-rest."""
    columns = list(champion.features)
    code = pl.col("symbol").rank("dense").cast(pl.Int64) * 5 + pl.col("open_time").dt.month() % 5
    frame = rows.with_columns(
        code.cast(pl.Float64).alias("code"),
        ((pl.col("fwd_ret_4") > 0) ^ (code % 3 == 0)).cast(pl.Int8).alias("label"),
    )
    keep = frame.filter(pl.col("fwd_ret_4").is_not_null())
    x = np.column_stack([keep.select(columns).cast(pl.Float64).to_numpy(), keep["code"]])
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "cat_smooth": 1.0}
    data = lgb.Dataset(x, keep["label"].to_numpy(), categorical_feature=[len(columns)])
    booster = lgb.train(params, data, num_boost_round=12)
    text = parse_text(booster.model_to_string())
    assert text.categorical.any() and (text.cat_len > 0).any()
    _same(text, booster, x)
    _same(text, booster, _odd_codes(x[-100:]))


def test_six_classes_with_single_leaf_trees(rows, champion, tmp_path):
    """A regime model whose rare classes' trees cannot split (one leaf each), from a file."""
    codes = rows.filter(pl.col("regime").is_not_null()).with_columns(
        pl.col("regime").shift(-4).over("symbol").alias("ahead")
    )
    # A class's hessian sums to ~n·p(1 − p): a leaf needing 5.5% of n can hold no half of a
    # rare regime's, so its trees stay one leaf while the common regimes' split.
    hessian = 0.055 * codes["ahead"].drop_nulls().len()
    params = {"objective": "multiclass", "num_class": len(REGIMES)}
    params["min_sum_hessian_in_leaf"] = hessian
    booster = _fit(codes, list(champion.features), "ahead", params)
    path = tmp_path / "model.lgb"
    booster.save_model(path)
    text = load_text(path)
    assert (text.roots < 0).any() and (text.roots >= 0).any()  # some trees are one leaf
    assert text.per_iteration == len(REGIMES)
    _same(text, booster, _matrix(rows, list(champion.features)), (0, 1, 4, 12))


def test_what_it_does_not_evaluate_says_so():
    with pytest.raises(UnsupportedModel, match="objective 'lambdarank'"):
        parse_text("num_class=1\nmax_feature_idx=0\nobjective=lambdarank\n")
    with pytest.raises(UnsupportedModel, match="not a LightGBM text model"):
        parse_text("hello\n")
    text = parse_text("num_class=1\nmax_feature_idx=1\nobjective=regression\n")
    with pytest.raises(ValueError, match="takes 2 features, the rows have 3"):
        text.predict(np.zeros((1, 3)))


def test_serving_scores_lightgbm_without_lightgbm(served):
    """A fresh process answers `predict` and `regime current` through `lgbm_text`, with the
    booster's own numbers, and never imports LightGBM (nor scikit-learn, which it pulls in),
    XGBoost, Optuna or quantlab.train."""
    script = """
import json, sys
from quantlab.context import RunContext
from quantlab.serving import answers
from quantlab.serving.scorer import Scorer
scorer = Scorer(RunContext.load(sys.argv[1]))
out = {"predict": answers.predict(scorer, "BTCUSDT"),
       "regime": answers.regime_current(scorer, "ETHUSDT")}
heavy = ("lightgbm", "xgboost", "optuna", "sklearn", "quantlab.train")
out["imported"] = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print(json.dumps(out))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(served.config)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    main = load_model(served.registry, served.registry.champion(MAIN))
    features = served.ctx.catalog.read(served.features)
    newest = features.filter(pl.col("symbol") == "BTCUSDT").sort("open_time").tail(1)
    want = main.booster.predict(main.matrix(newest), num_iteration=main.rounds)[0]
    assert out["predict"]["probabilities"]["up"] == want
    regime = load_model(served.registry, served.registry.champion(f"{REGIME}-ETHUSDT"))
    newest = features.filter(pl.col("symbol") == "ETHUSDT").sort("open_time").tail(1)
    want = regime.booster.predict(regime.matrix(newest), num_iteration=regime.rounds)[0]
    assert list(out["regime"]["probabilities"].values()) == want.tolist()


def test_a_replaced_booster_scores_through_the_library(champion, rows):
    """`replace(model, booster=other)` (an incremental update) scores `other`, not the file."""
    columns = list(champion.features)
    other = _fit(rows, columns, "fwd_ret_4", {"objective": "regression"})
    updated = replace(champion, booster=other, task="regression", rounds=12)
    assert not updated.evaluates
    x = updated.matrix(rows.tail(5))
    assert np.array_equal(updated.raw(rows.tail(5)), other.predict(x, num_iteration=12))
    assert champion.evaluates  # the cached champion still walks its own file
