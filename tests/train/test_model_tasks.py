"""The boosters per task: the objective's output shape, class weights reaching the fit, and
bit-identical repeats for every task and kind."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from quantlab.train import booster
from quantlab.train.targets import class_weights

KINDS = ["lightgbm", "xgboost"]
TASKS = ["binary", "multiclass", "regression"]


@pytest.fixture(scope="module")
def xy():
    """A planted signal; the 3-class label has a rare middle class, as a dead zone gives."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 4))
    z = x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=1.0, size=1200)
    labels = {
        "binary": (z > 0).astype(float),
        "multiclass": np.where(z > 0.3, 2.0, np.where(z < -0.3, 0.0, 1.0)),
        "regression": 0.01 * z,
    }
    return x, labels


def _params(kind: str) -> dict:
    model = booster(kind)
    fixed = (
        {"learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 50}
        | {"feature_fraction": 0.8, "lambda_l2": 1.0}
        if kind == "lightgbm"
        else {"eta": 0.1, "max_depth": 3, "min_child_weight": 5.0}
        | {"colsample_bytree": 0.8, "lambda": 1.0}
    )
    return model.suggest(optuna.trial.FixedTrial(fixed))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("task", TASKS)
def test_each_task_predicts_its_shape_and_repeats_bit_for_bit(xy, kind, task):
    x, labels = xy
    y = labels[task]
    model = booster(kind, task)
    args = (x[:900], y[:900], x[900:1000], y[900:1000], _params(kind), 1, 60, 5)
    a, b = model.fit(*args), model.fit(*args)
    pa, pb = model.predict(a, x[1000:]), model.predict(b, x[1000:])
    assert np.array_equal(pa, pb) and a.rounds == b.rounds and a.task == task
    if task == "multiclass":
        assert pa.shape == (200, 3) and np.allclose(pa.sum(axis=1), 1.0)
        assert (pa.argmax(axis=1) == y[1000:]).mean() > 0.5  # it learned the planted signal
    else:
        assert pa.shape == (200,)
        assert np.corrcoef(pa, y[1000:])[0, 1] > 0.3
    # The regression scale is the sd of the fitted target, 1.0 for the classifiers.
    assert a.scale == (pytest.approx(np.std(y[:900])) if task == "regression" else 1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_balanced_weights_reach_the_booster(xy, kind):
    x, labels = xy
    y = labels["multiclass"]
    assert (y[:900] == 1).mean() < 0.2  # the middle class is rare
    model = booster(kind, "multiclass")
    weight = class_weights(y[:900], "multiclass")
    # Inverse frequency: each class's weights sum to the same total.
    totals = [weight[y[:900] == c].sum() for c in (0, 1, 2)]
    assert np.allclose(totals, totals[0])
    plain = model.fit(x[:900], y[:900], None, None, _params(kind), 1, 40)
    weighted = model.fit(x[:900], y[:900], None, None, _params(kind), 1, 40, weight=weight)
    rare = lambda f: model.predict(f, x[900:])[:, 1].mean()  # noqa: E731
    assert rare(weighted) > 1.5 * rare(plain)


@pytest.mark.parametrize("kind", KINDS)
def test_a_categorical_column_is_split_as_a_category(kind):
    """Codes 0..3 whose effect is not monotone: a category split finds it in one level."""
    rng = np.random.default_rng(1)
    code = rng.integers(0, 4, 2000).astype(float)
    x = np.column_stack([rng.normal(size=2000), code])
    y = np.isin(code, (1.0, 3.0)).astype(float)
    model = booster(kind, "binary")
    shallow = {"num_leaves": 2, "min_data_in_leaf": 5} if kind == "lightgbm" else {"max_depth": 1}
    fitted = model.fit(x, y, None, None, shallow, 1, 1, categorical=(1,))
    assert fitted.categorical == (1,)
    prob = model.predict(fitted, x)
    assert prob[y == 1].min() > prob[y == 0].max()  # one split separates {1, 3} from {0, 2}
