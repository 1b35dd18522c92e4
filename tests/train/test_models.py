"""The booster kinds: one interface, early stopping on the valid slice, repeatable fits."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from pydantic import ValidationError

from quantlab.config import TrainConfig
from quantlab.errors import ConfigError
from quantlab.train import booster

KINDS = ["lightgbm", "xgboost"]


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=2.0, size=1200) > 0).astype(float)
    return x[:900], y[:900], x[900:], y[900:]


@pytest.mark.parametrize("kind", KINDS)
def test_a_fit_learns_and_repeats_bit_for_bit(xy, kind):
    x, y, xv, yv = xy
    model = booster(kind)
    params = model.suggest(optuna.trial.FixedTrial(_fixed(kind)))
    a = model.fit(x, y, None, None, params, seed=1, rounds=40)
    b = model.fit(x, y, None, None, params, seed=1, rounds=40)
    pa, pb = model.predict_proba(a, xv), model.predict_proba(b, xv)
    assert a.rounds == 40 and pa.shape == (len(xv),)
    assert np.array_equal(pa, pb)
    assert ((pa > 0.5) == (yv == 1)).mean() > 0.6  # it learned the planted signal


@pytest.mark.parametrize("kind", KINDS)
def test_early_stopping_keeps_the_best_valid_round(xy, kind):
    x, y, xv, yv = xy
    model = booster(kind)
    params = {**model.suggest(optuna.trial.FixedTrial(_fixed(kind))), **_fast(kind)}
    stopped = model.fit(x, y, xv, yv, params, seed=1, rounds=500, early_stopping_rounds=5)
    assert 1 <= stopped.rounds < 500
    # Predictions use the kept rounds: the same as a plain fit of exactly that many rounds.
    plain = model.fit(x, y, None, None, params, seed=1, rounds=stopped.rounds)
    assert np.array_equal(model.predict_proba(stopped, xv), model.predict_proba(plain, xv))


def test_an_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="catboost"):
        booster("catboost")


def test_train_models_defaults_to_lightgbm_and_checks_its_list():
    assert TrainConfig().models == ("lightgbm",)
    assert TrainConfig(models=["xgboost", "lightgbm"]).primary_model == "xgboost"
    for bad in ([], ["lightgbm", "lightgbm"], ["catboost"]):
        with pytest.raises(ValidationError):
            TrainConfig(models=bad)
    with pytest.raises(ValidationError):
        TrainConfig(model="lightgbm")  # the old single-kind key is gone, not silently ignored


def _fixed(kind: str) -> dict:
    if kind == "lightgbm":
        return {
            "learning_rate": 0.1,
            "num_leaves": 15,
            "min_data_in_leaf": 50,
            "feature_fraction": 0.8,
            "lambda_l2": 1.0,
        }
    return {
        "eta": 0.1,
        "max_depth": 3,
        "min_child_weight": 5.0,
        "colsample_bytree": 0.8,
        "lambda": 1.0,
    }


def _fast(kind: str) -> dict:
    """A learning rate high enough that the valid logloss turns up well before 500 rounds."""
    return {"learning_rate": 0.3} if kind == "lightgbm" else {"eta": 0.3}
