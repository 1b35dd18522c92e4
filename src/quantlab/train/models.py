"""The booster kinds walk-forward trains: one interface, LightGBM and XGBoost behind it.

Each kind fits on a training slice (early-stopping on a validation slice when asked),
predicts P(up), and names its Optuna search space. Every fit is single-process with a
fixed seed and thread count, so the same data, parameters and seed give the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import lightgbm as lgb
import numpy as np
import optuna
import xgboost as xgb

from quantlab.errors import ConfigError

ModelKind = Literal["lightgbm", "xgboost"]
# One thread count for every fit, so a result never depends on the machine's cores. XGBoost's
# maintainers promise bit-identical CPU results for the same seed, hardware and threads
# (dmlc/xgboost#7458); hist gave the same bits with 1, 2 and 4 threads here, but that is not
# promised. LightGBM's `deterministic` covers other thread counts by its own docs.
THREADS = 2


@dataclass(frozen=True)
class Fitted:
    """A fitted booster and the rounds it predicts with (the best one under early stopping)."""

    kind: ModelKind
    booster: Any
    rounds: int


class Booster(Protocol):
    kind: ModelKind

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
        callbacks: Sequence[Any] = (),
    ) -> Fitted:
        """Boost up to `rounds` rounds; with a valid slice and `early_stopping_rounds`, stop
        once its logloss has not improved for that many rounds and keep the best round.
        `callbacks` (the library's own, e.g. Optuna's pruning ones) see the valid slice's
        metric every round."""
        ...

    def predict_proba(self, fitted: Fitted, x: np.ndarray) -> np.ndarray:
        """P(label_up = 1) for each row of `x`, from the first `fitted.rounds` rounds."""
        ...


class LightGBM:
    kind: ModelKind = "lightgbm"

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 50, 500, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        }

    def _base(self, seed: int) -> dict[str, Any]:
        return {
            "objective": "binary",
            "metric": "binary_logloss",
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
        callbacks: Sequence[Any] = (),
    ) -> Fitted:
        full = {**self._base(seed), **params}
        train = lgb.Dataset(x_train, label=y_train)
        if x_valid is None or (early_stopping_rounds is None and not callbacks):
            return Fitted(self.kind, lgb.train(full, train, num_boost_round=rounds), rounds)
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
        return Fitted(self.kind, booster, best)

    def predict_proba(self, fitted: Fitted, x: np.ndarray) -> np.ndarray:
        return fitted.booster.predict(x, num_iteration=fitted.rounds)


class XGBoost:
    kind: ModelKind = "xgboost"

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "eta": trial.suggest_float("eta", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 6),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "lambda": trial.suggest_float("lambda", 1e-3, 10.0, log=True),
        }

    def _base(self, seed: int) -> dict[str, Any]:
        return {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
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
        callbacks: Sequence[Any] = (),
    ) -> Fitted:
        full = {**self._base(seed), **params}
        train = xgb.DMatrix(x_train, label=y_train, nthread=THREADS)
        if x_valid is None or (early_stopping_rounds is None and not callbacks):
            booster = xgb.train(full, train, num_boost_round=rounds, verbose_eval=False)
            return Fitted(self.kind, booster, rounds)
        valid = xgb.DMatrix(x_valid, label=y_valid, nthread=THREADS)
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
            return Fitted(self.kind, booster, rounds)
        # best_iteration is 0-based; predict() would use every tree unless told the range.
        return Fitted(self.kind, booster, booster.best_iteration + 1)

    def predict_proba(self, fitted: Fitted, x: np.ndarray) -> np.ndarray:
        data = xgb.DMatrix(x, nthread=THREADS)
        # XGBoost predicts in float32; widen so every kind's scores share one dtype.
        prob = fitted.booster.predict(data, iteration_range=(0, fitted.rounds))
        return prob.astype(np.float64)


KINDS: dict[str, Booster] = {"lightgbm": LightGBM(), "xgboost": XGBoost()}


def booster(kind: str) -> Booster:
    """The booster implementing `kind` (a `train.models` entry)."""
    if kind not in KINDS:
        raise ConfigError(f"train.models names {kind!r}; use one of {sorted(KINDS)}")
    return KINDS[kind]
