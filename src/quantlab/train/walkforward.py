"""Purged, embargoed walk-forward training: a pure core with no I/O and no tracking."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import polars as pl

from quantlab.config import TrainConfig
from quantlab.vocab import KEY


@dataclass(frozen=True)
class Fold:
    index: int
    test_start: Any  # datetime
    test_end: Any  # datetime, exclusive; None for the last block, which runs to the end


@dataclass
class WalkForwardResult:
    predictions: pl.DataFrame  # symbol, open_time, fold, prob_up, score
    fold_metrics: list[dict[str, float]]
    fold_params: list[dict[str, Any]]
    model: lgb.Booster  # fitted on every labelled row, scores the newest bars


def make_folds(times: pl.Series, cfg: TrainConfig) -> list[Fold]:
    """Split sorted distinct timestamps into `cfg.folds` consecutive test blocks after an initial train span."""
    uniq = times.unique().sort()
    n = uniq.len()
    first_test = int(n * cfg.min_train_fraction)
    bounds = np.linspace(first_test, n, cfg.folds + 1).astype(int)
    folds = []
    for k in range(cfg.folds):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        folds.append(Fold(k, uniq[lo], uniq[hi] if hi < n else None))
    return folds


def purged_train_mask(data: pl.DataFrame, test_start: Any, embargo: timedelta) -> pl.Series:
    """Rows usable for training before a test block starting at `test_start`.

    A row is kept only if its label was resolved (`label_time`) before the test
    block starts minus the embargo, so no training label overlaps test data.
    """
    return (data["open_time"] < test_start) & (data["label_time"] < test_start - embargo)


def _params(trial: optuna.Trial | None, cfg: TrainConfig, fixed: dict[str, Any]) -> dict[str, Any]:
    base = {
        "objective": "binary",
        "metric": "binary_logloss",
        "verbosity": -1,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
    }
    if trial is None:
        return {**base, **fixed}
    return {
        **base,
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 50, 500, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


def _fit(x: np.ndarray, y: np.ndarray, params: dict[str, Any], rounds: int) -> lgb.Booster:
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=rounds)


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _rank_ic(score: np.ndarray, fwd: np.ndarray) -> float:
    a = pl.Series(score).rank().to_numpy()
    b = pl.Series(fwd).rank().to_numpy()
    return float(np.corrcoef(a, b)[0, 1])


def _tune(
    x: np.ndarray,
    y: np.ndarray,
    times: np.ndarray,
    label_times: np.ndarray,
    cfg: TrainConfig,
    embargo: timedelta,
) -> dict[str, Any]:
    """Optuna search on the last 20% of the fold's training span, itself purged."""
    cut = times[int(len(times) * 0.8)]
    inner_train = (times < cut) & (label_times < cut - np.timedelta64(embargo))
    inner_valid = times >= cut

    def objective(trial: optuna.Trial) -> float:
        params = _params(trial, cfg, {})
        model = _fit(x[inner_train], y[inner_train], params, cfg.num_boost_round)
        return _logloss(y[inner_valid], model.predict(x[inner_valid]))

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=cfg.seed)
    )
    study.optimize(objective, n_trials=cfg.trials)
    return dict(study.best_params)


def walk_forward(
    data: pl.DataFrame,
    features: list[str],
    target: str,
    return_col: str,
    cfg: TrainConfig,
    embargo: timedelta,
) -> WalkForwardResult:
    """Train and score fold by fold; every score is made by a model that never saw that bar's label.

    `data` holds KEY, `features`, the binary `target`, the forward return
    `return_col` and `label_time`; rows without a label are scored by the
    final model only.
    """
    data = data.sort("open_time", "symbol")
    labelled = data.filter(pl.col(target).is_not_null())
    x_all = labelled.select(features).to_numpy()
    y_all = labelled[target].to_numpy().astype(float)
    times = labelled["open_time"].to_numpy()
    label_times = labelled["label_time"].to_numpy()

    preds, metrics, fold_params = [], [], []
    for fold in make_folds(labelled["open_time"], cfg):
        train = purged_train_mask(labelled, fold.test_start, embargo).to_numpy()
        test = (labelled["open_time"] >= fold.test_start).to_numpy()
        if fold.test_end is not None:
            test &= (labelled["open_time"] < fold.test_end).to_numpy()
        best = _tune(x_all[train], y_all[train], times[train], label_times[train], cfg, embargo)
        model = _fit(x_all[train], y_all[train], _params(None, cfg, best), cfg.num_boost_round)
        prob = model.predict(x_all[test])
        y_test = y_all[test]
        metrics.append(
            {
                "fold": fold.index,
                "train_rows": int(train.sum()),
                "test_rows": int(test.sum()),
                "auc": _auc(y_test, prob),
                "logloss": _logloss(y_test, prob),
                "accuracy": float(np.mean((prob > 0.5) == (y_test == 1))),
                "rank_ic": _rank_ic(prob, labelled[return_col].to_numpy()[test]),
            }
        )
        fold_params.append(best)
        preds.append(
            labelled.filter(pl.Series(test))
            .select(*KEY)
            .with_columns(pl.lit(fold.index).alias("fold"), pl.Series("prob_up", prob))
        )

    final = _fit(x_all, y_all, _params(None, cfg, fold_params[-1]), cfg.num_boost_round)
    newest = data.filter(pl.col(target).is_null())
    if newest.height:
        preds.append(
            newest.select(*KEY).with_columns(
                pl.lit(-1).alias("fold"),
                pl.Series("prob_up", final.predict(newest.select(features).to_numpy())),
            )
        )
    predictions = (
        pl.concat(preds).with_columns((pl.col("prob_up") * 2 - 1).alias("score")).sort(*KEY)
    )
    return WalkForwardResult(predictions, metrics, fold_params, final)
