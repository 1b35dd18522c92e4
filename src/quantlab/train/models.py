"""The booster kinds walk-forward trains: one interface, LightGBM and XGBoost behind it.

Each kind fits one task (binary, 3-class or regression: `quantlab.train.targets` maps the
configured target to it) on a training slice, early-stopping on a validation slice when
asked, predicts, and names its Optuna search space. Every fit is single-process with a
fixed seed and thread count, so the same data, parameters and seed give the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

import lightgbm as lgb
import numpy as np
import optuna
import xgboost as xgb

from quantlab.errors import ConfigError, DataError

ModelKind = Literal["lightgbm", "xgboost"]
# What a booster learns: P(y = 1), the probabilities of N_CLASSES ordered classes, or a number.
Task = Literal["binary", "multiclass", "regression"]
N_CLASSES = 3  # the 3-class targets' classes -1/0/+1, encoded 0/1/2 by targets.encode_classes
# A multiclass booster of another model family says its own count (the regime model: six).
# One thread count for every fit, so a result never depends on the machine's cores. XGBoost's
# maintainers promise bit-identical CPU results for the same seed, hardware and threads
# (dmlc/xgboost#7458); hist gave the same bits with 1, 2 and 4 threads here, but that is not
# promised. LightGBM's `deterministic` covers other thread counts by its own docs.
THREADS = 2


def use_threads(n: int) -> None:
    """Fit and predict with `n` threads from now on, in this process. Only `train tune`'s
    worker processes call it: N workers of THREADS threads each on fewer cores oversubscribe
    OpenMP, which stalls LightGBM (2 workers x 2 threads on 2 cores ran 5x slower than one
    worker); and a study tuned in parallel is not reproducible bit for bit anyway (Optuna FAQ).
    """
    global THREADS
    THREADS = max(1, n)


@dataclass(frozen=True)
class Fitted:
    """A fitted booster and the rounds it predicts with (the best one under early stopping).

    `categorical`: the columns fitted as categories (a prediction must declare them too);
    `scale`: for regression, the sd of the target it was fitted on, what turns its
    predicted return into a score (`targets.score_of`); 1.0 for the classifiers.
    """

    kind: ModelKind
    booster: Any
    rounds: int
    task: Task = "binary"
    categorical: tuple[int, ...] = ()
    scale: float = 1.0


def _scale(task: Task, y: np.ndarray) -> float:
    if task != "regression":
        return 1.0
    sd = float(np.std(y))
    if not sd > 0:
        raise DataError(
            f"the regression target is constant ({y[0] if len(y) else 'no rows'}) on a training "
            "slice, so a predicted return has no scale; check the labels or lengthen the window"
        )
    return sd


class Booster(Protocol):
    kind: ModelKind
    task: Task

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The kind's Optuna search space: one trial's tunable parameters."""
        ...

    def fit(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_valid: np.ndarray | None,
        y_valid: np.ndarray | None,
        params: dict[str, Any],
        seed: int,
        rounds: int,
        early_stopping_rounds: int | None = None,
        *,
        weight: np.ndarray | None = None,
        categorical: tuple[int, ...] = (),
        callbacks: Sequence[Any] = (),
    ) -> Fitted:
        """Boost up to `rounds` rounds; with a valid slice and `early_stopping_rounds`, stop
        once its loss (the task's: logloss, multi-class logloss, l2) has not improved for that
        many rounds and keep the best round. `weight` weighs the training rows (the valid
        rows stay unweighted); `categorical` lists the columns of non-negative integer codes
        to split as categories; `callbacks` (the library's own, e.g. Optuna's pruning ones)
        see the valid slice's metric every round."""
        ...

    def predict(self, fitted: Fitted, x: np.ndarray) -> np.ndarray:
        """From the first `fitted.rounds` rounds, per row of `x`: P(y = 1) (binary, shape n),
        the class probabilities (multiclass, n x num_class, rows summing to 1) or the
        prediction."""
        ...

    def predict_proba(self, fitted: Fitted, x: np.ndarray) -> np.ndarray:
        """`predict`, under the name the binary-only interface had."""
        ...


class LightGBM:
    kind: ModelKind = "lightgbm"

    def __init__(self, task: Task = "binary", num_class: int = N_CLASSES):
        self.task = task
        self.num_class = num_class

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 50, 500, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        }

    def _base(self, seed: int) -> dict[str, Any]:
        objective = {
            "binary": {"objective": "binary", "metric": "binary_logloss"},
            "multiclass": {
                "objective": "multiclass",
                "num_class": self.num_class,
                "metric": "multi_logloss",
            },
            "regression": {"objective": "regression", "metric": "l2"},
        }[self.task]
        return {
            **objective,
            "verbosity": -1,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": THREADS,
        }

    def fit(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_valid: np.ndarray | None,
        y_valid: np.ndarray | None,
        params: dict[str, Any],
        seed: int,
        rounds: int,
        early_stopping_rounds: int | None = None,
        *,
        weight: np.ndarray | None = None,
        categorical: tuple[int, ...] = (),
        callbacks: Sequence[Any] = (),
    ) -> Fitted:
        full = {**self._base(seed), **params}
        train = lgb.Dataset(
            x_train, label=y_train, weight=weight, categorical_feature=list(categorical) or "auto"
        )
        done = partial(
            Fitted,
            self.kind,
            task=self.task,
            categorical=categorical,
            scale=_scale(self.task, y_train),
        )
        if x_valid is None or (early_stopping_rounds is None and not callbacks):
            return done(lgb.train(full, train, num_boost_round=rounds), rounds)
        stop = (
            []
            if early_stopping_rounds is None
            else [lgb.early_stopping(early_stopping_rounds, verbose=False)]
        )
        booster = lgb.train(
            full,
            train,
            num_boost_round=rounds,
            valid_sets=[lgb.Dataset(x_valid, label=y_valid, reference=train)],
            callbacks=[*stop, *callbacks],
        )
        best = booster.best_iteration if booster.best_iteration > 0 else rounds
        return done(booster, best)

    def predict(self, fitted: Fitted, x: np.ndarray) -> np.ndarray:
        return fitted.booster.predict(x, num_iteration=fitted.rounds)

    predict_proba = predict


class XGBoost:
    kind: ModelKind = "xgboost"

    def __init__(self, task: Task = "binary", num_class: int = N_CLASSES):
        self.task = task
        self.num_class = num_class

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "eta": trial.suggest_float("eta", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 6),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "lambda": trial.suggest_float("lambda", 1e-3, 10.0, log=True),
        }

    def _base(self, seed: int) -> dict[str, Any]:
        objective = {
            "binary": {"objective": "binary:logistic", "eval_metric": "logloss"},
            "multiclass": {
                "objective": "multi:softprob",
                "num_class": self.num_class,
                "eval_metric": "mlogloss",
            },
            "regression": {"objective": "reg:squarederror", "eval_metric": "rmse"},
        }[self.task]
        return {
            **objective,
            "tree_method": "hist",
            "seed": seed,
            "nthread": THREADS,
            "verbosity": 0,
        }

    def fit(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_valid: np.ndarray | None,
        y_valid: np.ndarray | None,
        params: dict[str, Any],
        seed: int,
        rounds: int,
        early_stopping_rounds: int | None = None,
        *,
        weight: np.ndarray | None = None,
        categorical: tuple[int, ...] = (),
        callbacks: Sequence[Any] = (),
    ) -> Fitted:
        full = {**self._base(seed), **params}
        train = dmatrix(x_train, categorical, label=y_train, weight=weight)
        done = partial(
            Fitted,
            self.kind,
            task=self.task,
            categorical=categorical,
            scale=_scale(self.task, y_train),
        )
        if x_valid is None or (early_stopping_rounds is None and not callbacks):
            booster = xgb.train(full, train, num_boost_round=rounds, verbose_eval=False)
            return done(booster, rounds)
        valid = dmatrix(x_valid, categorical, label=y_valid)
        booster = xgb.train(
            full,
            train,
            num_boost_round=rounds,
            evals=[(valid, "valid")],
            early_stopping_rounds=early_stopping_rounds,
            verbose_eval=False,
            callbacks=list(callbacks),
        )
        if early_stopping_rounds is None:
            return done(booster, rounds)
        # best_iteration is 0-based; predict() would use every tree unless told the range.
        return done(booster, booster.best_iteration + 1)

    def predict(self, fitted: Fitted, x: np.ndarray) -> np.ndarray:
        data = dmatrix(x, fitted.categorical)
        # XGBoost predicts in float32; widen so every kind's scores share one dtype.
        prob = fitted.booster.predict(data, iteration_range=(0, fitted.rounds))
        return prob.astype(np.float64)

    predict_proba = predict


def dmatrix(x: np.ndarray, categorical: tuple[int, ...], **kw: Any) -> xgb.DMatrix:
    if not categorical:
        return xgb.DMatrix(x, nthread=THREADS, **kw)
    types = ["c" if j in categorical else "q" for j in range(x.shape[1])]
    return xgb.DMatrix(x, nthread=THREADS, feature_types=types, enable_categorical=True, **kw)


KINDS = {"lightgbm": LightGBM, "xgboost": XGBoost}


def booster(kind: str, task: Task = "binary", num_class: int = N_CLASSES) -> Booster:
    """The booster implementing `kind` (a `train.models` entry) for `task`; a multiclass
    one outputs `num_class` probabilities (labels coded 0 .. num_class - 1, each class
    answered even where the fitted rows hold none of it)."""
    if kind not in KINDS:
        raise ConfigError(f"train.models names {kind!r}; use one of {sorted(KINDS)}")
    return KINDS[kind](task, num_class)
