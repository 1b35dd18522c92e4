"""SHAP from the boosters' native contributions: additivity (binary, 3-class, regression, early
stopping), importance rows, stability across folds, and the beeswarm PNGs."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import optuna
import polars as pl
import pytest
import xgboost as xgb

from quantlab.errors import DataError
from quantlab.train import booster
from quantlab.train.explain import (
    IMPORTANCE_SCHEMA,
    check_additivity,
    contributions,
    explain_fold,
    importance_rows,
    raw_margin,
)
from quantlab.train.explain_stability import (
    explain_stability,
    jaccard,
    rank_correlation,
    sign_flips,
    top_k_of,
    top_set,
)
from quantlab.train.models import Fitted

KINDS = ["lightgbm", "xgboost"]
FEATURES = [f"f{i}" for i in range(5)]


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 5))
    x[rng.random(x.shape) < 0.02] = np.nan  # features have gaps; TreeSHAP follows the default
    latent = (
        np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) + rng.normal(scale=2.0, size=1200)
    )
    return x, latent


def _params(kind: str, **extra) -> dict:
    if kind == "lightgbm":
        fixed = {"learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 50}
        fixed |= {"feature_fraction": 0.8, "lambda_l2": 1.0}
    else:
        fixed = {"eta": 0.1, "max_depth": 3, "min_child_weight": 5.0}
        fixed |= {"colsample_bytree": 0.8, "lambda": 1.0}
    return {**booster(kind).suggest(optuna.trial.FixedTrial(fixed)), **extra}


def _native(kind: str, objective: str, x: np.ndarray, y: np.ndarray, rounds: int) -> Fitted:
    """A booster of another objective than the stage's binary one, fitted directly."""
    if kind == "lightgbm":
        params = {"objective": objective, "verbosity": -1, "seed": 1, "num_threads": 1}
        if objective == "multiclass":
            params["num_class"] = 3
        return Fitted(kind, lgb.train(params, lgb.Dataset(x, label=y), rounds), rounds)
    params = {"objective": objective, "tree_method": "hist", "seed": 1, "nthread": 1}
    if objective == "multi:softprob":
        params["num_class"] = 3
    return Fitted(kind, xgb.train(params, xgb.DMatrix(x, label=y), rounds), rounds)


@pytest.mark.parametrize("kind", KINDS)
def test_binary_contributions_add_up_to_the_margin_predict_uses(xy, kind):
    x, latent = xy
    y = (latent > 0).astype(float)
    model = booster(kind)
    fitted = model.fit(x[:900], y[:900], None, None, _params(kind), seed=1, rounds=40)
    values = contributions(fitted, x[900:])
    assert values.shape == (300, 1, 6)
    margin = raw_margin(fitted, x[900:])
    assert np.allclose(values.sum(axis=-1), margin, atol=1e-4)
    check_additivity(values, margin, kind)
    # The margin is the one behind the stage's probabilities, not another model's.
    prob = 1 / (1 + np.exp(-margin[:, 0]))
    assert np.allclose(prob, model.predict_proba(fitted, x[900:]), atol=1e-6)


@pytest.mark.parametrize(
    ("kind", "objective"), [("lightgbm", "multiclass"), ("xgboost", "multi:softprob")]
)
def test_three_class_contributions_have_one_block_per_class(xy, kind, objective):
    x, latent = xy
    y = np.digitize(latent, [-1.0, 1.0]).astype(float)  # sell / hold / buy
    fitted = _native(kind, objective, x[:900], y[:900], rounds=20)
    values = contributions(fitted, x[900:])
    assert values.shape == (300, 3, 6)
    check_additivity(values, raw_margin(fitted, x[900:]), kind)
    # Class 2 (up) leans on f0 the way the latent does; class 0 (down) the other way.
    assert np.corrcoef(np.nan_to_num(x[900:, 0]), values[:, 2, 0])[0, 1] > 0.5
    assert np.corrcoef(np.nan_to_num(x[900:, 0]), values[:, 0, 0])[0, 1] < -0.5
    explained = explain_fold(fitted, x[900:], FEATURES, fold=0, seed=1)
    assert explained.importance["output"].unique().sort().to_list() == [0, 1, 2]


@pytest.mark.parametrize(
    ("kind", "objective"), [("lightgbm", "regression"), ("xgboost", "reg:squarederror")]
)
def test_regression_contributions_add_up_to_the_prediction(xy, kind, objective):
    x, latent = xy
    fitted = _native(kind, objective, x[:900], latent[:900], rounds=20)
    values = contributions(fitted, x[900:])
    assert values.shape == (300, 1, 6)
    check_additivity(values, raw_margin(fitted, x[900:]), kind)


@pytest.mark.parametrize("kind", KINDS)
def test_contributions_use_the_fitted_rounds_not_every_tree(xy, kind):
    x, latent = xy
    y = (latent > 0).astype(float)
    full = booster(kind).fit(x[:900], y[:900], None, None, _params(kind), seed=1, rounds=40)
    first = Fitted(kind, full.booster, 10)  # predicts with the first 10 of 40 rounds
    test = x[900:]
    check_additivity(contributions(first, test), raw_margin(first, test), kind)
    # Every tree would explain another model: its contributions miss the margin predict uses.
    every = contributions(full, test)
    assert not np.allclose(every.sum(axis=-1), raw_margin(first, test), atol=1e-3)
    with pytest.raises(DataError, match="rounds"):
        check_additivity(every, raw_margin(first, test), kind)


@pytest.mark.parametrize("kind", KINDS)
def test_an_early_stopped_model_is_explained_with_the_rounds_it_predicts_with(xy, kind):
    x, latent = xy
    y = (latent > 0).astype(float)
    model = booster(kind)
    params = _params(kind, **({"learning_rate": 0.3} if kind == "lightgbm" else {"eta": 0.3}))
    stopped = model.fit(x[:700], y[:700], x[700:900], y[700:900], params, 1, 500, 5)
    assert stopped.rounds < 500
    if kind == "xgboost":  # XGBoost keeps the rounds past the best (LightGBM drops them)
        assert stopped.booster.num_boosted_rounds() > stopped.rounds
    test = x[900:]
    values = contributions(stopped, test)
    check_additivity(values, raw_margin(stopped, test), kind)
    # The same values as a plain fit of exactly the kept rounds: the model that predicted.
    plain = model.fit(x[:700], y[:700], None, None, params, 1, stopped.rounds)
    assert np.array_equal(values, contributions(plain, test))


def test_additivity_violation_names_the_row_and_output():
    values = np.zeros((3, 2, 4))
    margin = np.zeros((3, 2))
    margin[1, 1] = 0.5
    with pytest.raises(DataError, match=r"row 1 \(output 1\)"):
        check_additivity(values, margin, "lightgbm fold 0")
    with pytest.raises(DataError, match="output"):
        check_additivity(values, np.zeros((3, 1)), "lightgbm fold 0")


def test_importance_rows_from_hand_made_values():
    # Two rows, one output, features a and b, then the bias.
    values = np.array([[[1.0, -2.0, 0.5]], [[3.0, 0.0, 0.5]]])
    rows = importance_rows(values, "lightgbm", 2, ["a", "b"])
    assert dict(rows.schema) == IMPORTANCE_SCHEMA
    assert rows.select("feature", "mean_abs_shap", "mean_shap", "rank", "rows").rows() == [
        ("a", 2.0, 2.0, 1, 2),
        ("b", 1.0, -1.0, 2, 2),
    ]
    assert set(rows["fold"]) == {2} and set(rows["model"]) == {"lightgbm"}
    with pytest.raises(DataError, match="feature names"):
        importance_rows(values, "lightgbm", 2, ["a"])


def test_rank_correlation_jaccard_and_sign_flips_on_arrays():
    a = np.array([4.0, 3.0, 2.0, 1.0])
    assert rank_correlation(a, a * 2) == pytest.approx(1.0)
    assert rank_correlation(a, a[::-1]) == pytest.approx(-1.0)
    assert rank_correlation(a, np.array([3.0, 1.0, 4.0, 2.0])) == pytest.approx(0.0)
    assert rank_correlation(a, np.ones(4)) is None  # no ranking to compare
    assert top_set(a, 2) == {0, 1}
    assert jaccard({0, 1}, {0, 2}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 1.0
    means = np.array([[0.5, 0.1, 0.0, -0.1], [0.4, 0.2, -0.1, 0.0], [-0.2, 0.3, -0.3, 0.05]])
    assert sign_flips(means).tolist() == [True, False, False, True]
    # Against each fold's mean |SHAP|: a's down fold (-0.2 of 3) is too small to be a direction.
    abs_ = np.array([[1.0, 1.0, 1.0, 0.2], [1.0, 1.0, 1.0, 0.2], [3.0, 1.0, 1.0, 0.2]])
    assert sign_flips(means, abs_).tolist() == [False, False, False, True]
    assert top_k_of(40) == 10 and top_k_of(4) == 2 and top_k_of(1) == 1


def _importance(abs_by_fold: list[list[float]], mean_by_fold: list[list[float]]) -> pl.DataFrame:
    features = ["a", "b", "c", "d"]
    return pl.concat(
        pl.DataFrame(
            {
                "model": "lightgbm",
                "fold": fold,
                "output": 0,
                "feature": features,
                "mean_abs_shap": abs_,
                "mean_shap": mean,
                "rank": [1, 2, 3, 4],
                "rows": 100,
            },
            schema=IMPORTANCE_SCHEMA,
        )
        for fold, (abs_, mean) in enumerate(zip(abs_by_fold, mean_by_fold, strict=True))
    )


def test_stability_across_hand_made_folds():
    # Folds 0 and 1 rank a > b > c > d; fold 2 ranks c > a > d > b: Spearman 0 against
    # either, and its top 2 {c, a} overlaps {a, b} in one of three features.
    importance = _importance(
        [[4, 3, 2, 1], [4, 3, 2, 1], [3, 1, 4, 2]],
        [[2.0, 0.1, 0.0, -0.5], [1.6, 0.2, -0.1, 0.0], [-1.0, -0.3, -0.3, 0.5]],
    )
    got = explain_stability(importance)
    summary = got.summary.row(0, named=True)
    assert summary["folds"] == 3 and summary["top_k"] == 2 and summary["features"] == 4
    assert summary["rank_corr_median"] == pytest.approx(0.0)
    assert summary["rank_corr_min"] == pytest.approx(0.0)
    assert summary["topk_jaccard_median"] == pytest.approx(1 / 3)
    assert summary["topk_jaccard_min"] == pytest.approx(1 / 3)
    pairs = {(r["fold_a"], r["fold_b"]): r for r in got.pairs.iter_rows(named=True)}
    assert pairs[(0, 1)]["rank_corr"] == pytest.approx(1.0)
    assert pairs[(0, 1)]["topk_jaccard"] == pytest.approx(1.0)
    # a pushes up in folds 0-1 and down in 2; d down, then up. c only touches zero, and b's
    # up folds (0.1, 0.2 of 3) are too small against its |SHAP| to be a direction: no flip.
    assert summary["sign_flips"] == 2
    flips = got.flips.select("feature", "folds_positive", "folds_negative").rows()
    assert flips == [("a", 2, 1), ("d", 1, 1)]  # the larger mean |SHAP| first


def test_stability_refuses_folds_of_different_features():
    importance = _importance([[4, 3, 2, 1]] * 3, [[0.1] * 4] * 3)
    renamed = importance.with_columns(
        pl.when((pl.col("fold") == 2) & (pl.col("feature") == "d"))
        .then(pl.lit("e"))
        .otherwise(pl.col("feature"))
        .alias("feature")
    )
    with pytest.raises(DataError, match="fold 2"):
        explain_stability(renamed)


def test_the_explained_sample_is_seeded_and_bounded(xy):
    x, latent = xy
    fitted = _native("lightgbm", "binary", x[:900], (latent[:900] > 0).astype(float), 10)
    a = explain_fold(fitted, x[900:], FEATURES, fold=3, seed=7, max_rows=50)
    b = explain_fold(fitted, x[900:], FEATURES, fold=3, seed=7, max_rows=50)
    other = explain_fold(fitted, x[900:], FEATURES, fold=4, seed=7, max_rows=50)
    assert a.rows == 300 and len(a.sample_rows) == 50
    assert np.array_equal(a.sample_rows, b.sample_rows)
    assert not np.array_equal(a.sample_rows, other.sample_rows)
    assert np.array_equal(a.sample_data, x[900:][a.sample_rows], equal_nan=True)
    assert a.sample_values.shape == (50, 1, 6)
    # The importance is the sample's: its means over exactly those rows.
    assert set(a.importance["rows"]) == {50}
    sample = contributions(fitted, x[900:][a.sample_rows])
    assert np.allclose(a.importance["mean_abs_shap"], np.abs(sample[:, 0, :-1]).mean(axis=0))
    every = explain_fold(fitted, x[900:], FEATURES, fold=3, seed=7, max_rows=None)
    assert every.rows == len(every.sample_rows) == 300


def test_a_beeswarm_per_class_is_a_png(xy):
    from quantlab.train.explain_plots import PNG_MAGIC, fold_beeswarms

    x, latent = xy
    y = np.digitize(latent, [-1.0, 1.0]).astype(float)
    fitted = _native("xgboost", "multi:softprob", x[:900], y[:900], rounds=10)
    pngs = fold_beeswarms(explain_fold(fitted, x[900:], FEATURES, fold=1, seed=1, max_rows=100))
    assert sorted(pngs) == [f"beeswarm_xgboost_fold1_class{c}.png" for c in range(3)]
    assert all(png.startswith(PNG_MAGIC) and len(png) > 1000 for png in pngs.values())
