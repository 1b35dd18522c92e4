"""Incremental retraining, pure: which rows an update of a champion learns from and which it is
judged on, and the update itself (LightGBM/XGBoost, two methods).

Rows: the labelled bars the champion never saw (label resolved after its `train_end`). The
newest `holdout_bars` of them per symbol are held out; the update learns only from rows
whose label resolved strictly before the first held-out bar opened (purged), so neither the
update nor the champion has seen a held-out label and both can be scored on those bars.

Methods:
- `init_model`: add up to `rounds` trees fitted on the update rows, starting from the
  champion's predictions (LightGBM `init_model`, XGBoost `xgb_model`). How many: early
  stopping on the newest fifth of the update rows (purged like the holdout), then refitted
  on all of them with that count, as the walk-forward refits train + valid. Never on the
  holdout: that is the period the gate judges.
- `refit`: keep every tree, re-estimate the leaf values on the update rows (LightGBM
  `Booster.refit`, leaf = decay_rate * old + (1 - decay_rate) * new; XGBoost's `refresh`
  updater, which replaces the leaf values and has no decay).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import polars as pl

Method = Literal["init_model", "refit"]
VALID_FRACTION = 0.2  # init_model: the newest share of the update rows that picks the trees
EARLY_STOP = 10  # rounds without improvement on that slice
# LightGBM parameters an added tree takes from the champion (its tuned shape); the rest of a
# loaded booster's parameters (num_iterations, categorical_feature...) would override the call.
LGB_SHAPE = (
    "objective",
    "num_class",
    "learning_rate",
    "num_leaves",
    "max_depth",
    "min_data_in_leaf",
    "min_sum_hessian_in_leaf",
    "feature_fraction",
    "bagging_fraction",
    "bagging_freq",
    "lambda_l1",
    "lambda_l2",
    "min_gain_to_split",
    "max_cat_threshold",
    "cat_l2",
    "cat_smooth",
    "max_cat_to_onehot",
)
# XGBoost keeps no training parameters in a saved model: an added tree uses these (a small
# step and shallow trees: a few hundred rows must not undo what years of bars taught).
XGB_SHAPE = {"eta": 0.05, "max_depth": 4, "min_child_weight": 5.0}


@dataclass(frozen=True)
class Skipped:
    """Nothing to update, and why."""

    reason: str


@dataclass(frozen=True)
class UpdateRows:
    update: pl.DataFrame  # what the update learns from, in time order
    holdout: pl.DataFrame  # the newest bars, scored by the update and by the champion
    train_end: datetime  # the newest label_time among the update rows


def select_rows(
    frame: pl.DataFrame,
    *,
    target: str,
    train_end: datetime | None,
    holdout_bars: int,
    min_new_bars: int,
) -> UpdateRows | Skipped:
    """Split `frame` (KEY, `target`, `label_time`, features) into update and holdout rows.

    New rows: `target` and `label_time` set, `label_time` > `train_end` (None: every row).
    Holdout: the newest `holdout_bars` new rows of each symbol. Update: new rows whose label
    resolved before the earliest held-out bar opened. Skipped when a symbol has fewer than
    `min_new_bars` update rows (nothing worth learning) or no held-out bar.
    """
    labelled = frame.filter(pl.col(target).is_not_null() & pl.col("label_time").is_not_null())
    new = labelled if train_end is None else labelled.filter(pl.col("label_time") > train_end)
    new = new.sort("symbol", "open_time")
    symbols = sorted(frame["symbol"].unique().to_list())
    if new.height == 0:
        return Skipped(f"no bar labelled since the champion's train_end {train_end}")
    holdout = new.group_by("symbol", maintain_order=True).tail(holdout_bars)
    start = holdout["open_time"].min()
    update = new.filter(pl.col("label_time") < start).sort("open_time", "symbol")
    counts = dict(update.group_by("symbol").len().iter_rows())
    short = {s: counts.get(s, 0) for s in symbols if counts.get(s, 0) < min_new_bars}
    if short:
        return Skipped(
            f"fewer than lifecycle.incremental.min_new_bars={min_new_bars} new labelled bars "
            f"before the {holdout_bars}-bar holdout: {short}"
        )
    if missing := sorted(set(symbols) - set(holdout["symbol"].unique().to_list())):
        return Skipped(f"no held-out bar for {missing}")
    return UpdateRows(update, holdout.sort("open_time", "symbol"), update["label_time"].max())


def split_valid(
    update: pl.DataFrame, fraction: float = VALID_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (fit, valid) of `update` (time order): valid the newest `fraction` of
    bars, fit the rows whose label resolved before valid began. Empty valid: too few rows."""
    n = update.height
    k = int(n * fraction)
    if k == 0 or k == n:
        return np.arange(n), np.arange(0)
    times = update["open_time"].sort()
    start = times[n - k]
    valid = np.flatnonzero((update["open_time"] >= start).to_numpy())
    fit = np.flatnonzero((update["label_time"] < start).to_numpy())
    if len(fit) == 0:
        return np.arange(n), np.arange(0)
    return fit, valid


# -- the update -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    booster: Any
    rounds: int  # the rounds the updated booster predicts with
    added: int  # trees (rounds) added; 0 for refit


def lgb_params(booster: Any, seed: int, threads: int) -> dict[str, Any]:
    """The champion's tree shape with quantlab's fixed run settings (models.LightGBM)."""
    loaded = booster.params or {}
    shape = {k: loaded[k] for k in LGB_SHAPE if k in loaded}
    if shape.get("num_class", 1) <= 1:
        shape.pop("num_class", None)
    return {
        **shape,
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": threads,
    }


def xgb_params(task: str, n_classes: int, seed: int, threads: int) -> dict[str, Any]:
    objective = {
        "binary": {"objective": "binary:logistic", "eval_metric": "logloss"},
        "multiclass": {
            "objective": "multi:softprob",
            "num_class": n_classes,
            "eval_metric": "mlogloss",
        },
        "regression": {"objective": "reg:squarederror", "eval_metric": "rmse"},
    }[task]
    return {
        **objective,
        **XGB_SHAPE,
        "tree_method": "hist",
        "seed": seed,
        "nthread": threads,
        "verbosity": 0,
    }


def _lgb_trim(booster: Any, rounds: int) -> Any:
    import lightgbm as lgb

    if booster.current_iteration() <= rounds:
        return booster
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))


def update_booster(
    kind: str,
    booster: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    method: Method,
    task: str,
    n_classes: int,
    champion_rounds: int,
    rounds: int,
    decay_rate: float,
    categorical: tuple[int, ...],
    valid: np.ndarray | None = None,
    fit: np.ndarray | None = None,
    seed: int = 0,
    threads: int = 2,
) -> Update:
    """The champion `booster` continued on (`x`, `y`) by `method` (module docstring).

    `fit`/`valid`: row positions for init_model's early stopping (`split_valid`); without
    a valid slice it adds `rounds` trees. The champion is not modified.
    """
    if x.shape[1] != booster_features(kind, booster):
        raise ValueError(
            f"the update has {x.shape[1]} columns, the champion takes "
            f"{booster_features(kind, booster)}; build the features it was trained on"
        )
    if kind == "lightgbm":
        return _lgb_update(
            _lgb_trim(booster, champion_rounds), x, y, method, rounds, decay_rate,
            categorical, valid, fit, seed, threads,
        )  # fmt: skip
    if kind == "xgboost":
        trimmed = (
            booster[:champion_rounds] if booster.num_boosted_rounds() > champion_rounds else booster
        )
        params = xgb_params(task, n_classes, seed, threads)
        return _xgb_update(trimmed, x, y, method, rounds, params, categorical, valid, fit)
    raise ValueError(f"unknown booster kind {kind!r}")


def booster_features(kind: str, booster: Any) -> int:
    return booster.num_feature() if kind == "lightgbm" else booster.num_features()


def _lgb_update(
    booster: Any,
    x: np.ndarray,
    y: np.ndarray,
    method: Method,
    rounds: int,
    decay_rate: float,
    categorical: tuple[int, ...],
    valid: np.ndarray | None,
    fit: np.ndarray | None,
    seed: int,
    threads: int,
) -> Update:
    import lightgbm as lgb

    base = booster.current_iteration()
    if method == "refit":
        out = booster.refit(
            x, y, decay_rate=decay_rate, categorical_feature=list(categorical) or "auto"
        )
        return Update(out, out.current_iteration(), 0)
    params = lgb_params(booster, seed, threads)
    cat = list(categorical) or "auto"
    add = rounds
    if valid is not None and len(valid) and fit is not None:
        # A fresh Dataset per fit: a reused one keeps the previous init score (LightGBM #2290).
        probe = lgb.train(
            params,
            lgb.Dataset(x[fit], label=y[fit], categorical_feature=cat),
            num_boost_round=rounds,
            init_model=booster,
            valid_sets=[lgb.Dataset(x[valid], label=y[valid], categorical_feature=cat)],
            callbacks=[lgb.early_stopping(EARLY_STOP, verbose=False)],
        )
        best = probe.best_iteration if probe.best_iteration > 0 else probe.current_iteration()
        add = max(best - base, 0)
    if add == 0:
        return Update(booster, base, 0)
    out = lgb.train(
        params,
        lgb.Dataset(x, label=y, categorical_feature=cat),
        num_boost_round=add,
        init_model=booster,
    )
    return Update(out, out.current_iteration(), add)


def _xgb_update(
    booster: Any,
    x: np.ndarray,
    y: np.ndarray,
    method: Method,
    rounds: int,
    params: dict[str, Any],
    categorical: tuple[int, ...],
    valid: np.ndarray | None,
    fit: np.ndarray | None,
) -> Update:
    import xgboost as xgb

    from quantlab.train.models import dmatrix

    base = booster.num_boosted_rounds()
    if method == "refit":
        refresh = {**params, "process_type": "update", "updater": "refresh", "refresh_leaf": True}
        out = xgb.train(
            refresh,
            dmatrix(x, categorical, label=y),
            num_boost_round=base,
            xgb_model=booster.copy(),
        )
        return Update(out, out.num_boosted_rounds(), 0)
    add = rounds
    if valid is not None and len(valid) and fit is not None:
        probe = xgb.train(
            params,
            dmatrix(x[fit], categorical, label=y[fit]),
            num_boost_round=rounds,
            evals=[(dmatrix(x[valid], categorical, label=y[valid]), "valid")],
            early_stopping_rounds=EARLY_STOP,
            verbose_eval=False,
            xgb_model=booster.copy(),
        )
        add = max(probe.best_iteration + 1 - base, 0)
    if add == 0:
        return Update(booster, base, 0)
    out = xgb.train(
        params,
        dmatrix(x, categorical, label=y),
        num_boost_round=add,
        verbose_eval=False,
        xgb_model=booster.copy(),
    )
    return Update(out, out.num_boosted_rounds(), add)
