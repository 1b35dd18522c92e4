"""Purged, embargoed walk-forward training: a core with no catalog I/O and no tracking.

Its only side effect is the Optuna studies it tunes, in `search.storage` (in memory unless
the caller names an RDB), so a rerun or `quantlab train tune` can find them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from quantlab.config import TrainConfig
from quantlab.errors import DataError
from quantlab.train.models import Fitted, booster
from quantlab.train.search import TRIAL_COLUMNS, Evaluated, FoldSearch, SearchSettings, tune_fold
from quantlab.train.splits import Split
from quantlab.vocab import KEY


@dataclass
class WalkForwardResult:
    predictions: pl.DataFrame  # symbol, open_time, model, fold, prob_up, score
    fold_metrics: list[dict[str, Any]]  # one per (model kind, fold), with its `model`
    fold_params: list[dict[str, Any]]  # likewise
    models: dict[str, Fitted]  # per kind, fitted on every labelled row; scores the newest bars
    primary: str  # the kind backtest and risk trade (`train.models[0]`)
    # Every Optuna trial of every (kind, fold) study: search.TRIAL_COLUMNS.
    trials: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=TRIAL_COLUMNS))
    studies: list[str] = field(default_factory=list)  # their names, in `storage`
    storage: str | None = None  # the studies' RDB URL (None: in memory, gone)

    @property
    def model(self) -> Any:
        """The primary kind's final booster."""
        return self.models[self.primary].booster


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
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray,
    cfg: TrainConfig,
    fold: int,
    search: SearchSettings,
    valid_rows: pl.DataFrame | None,
) -> FoldSearch:
    """The fold's Optuna study for `kind`: fitted on the split's `train` rows, scored on its
    `valid` rows (quantlab.train.search).

    Its result carries the best parameters, the boosting rounds they ran (fewer than
    `cfg.num_boost_round` when early stopping on `valid` cut them short) and how many
    trials the study ran: the configurations tried, which every tuned figure must carry.
    """
    model = booster(kind)

    def fit_score(params: dict[str, Any], callbacks: Any) -> Evaluated:
        fitted = model.fit(
            x[train],
            y[train],
            x[valid],
            y[valid],
            params,
            cfg.seed,
            cfg.num_boost_round,
            cfg.early_stopping_rounds,
            callbacks=callbacks,
        )
        prob = model.predict_proba(fitted, x[valid])
        return Evaluated(fitted.rounds, _logloss(y[valid], prob), prob * 2 - 1)

    return tune_fold(kind, fold, model.suggest, fit_score, cfg, search, valid_rows)


def _in_time_order(rows: np.ndarray, rank: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """`rows` that have a target, ordered by time then symbol, so a fit is the same whatever
    order the frame came in."""
    rows = rows[keep[rows]]
    return rows[np.argsort(rank[rows], kind="stable")]


def walk_forward(
    data: pl.DataFrame,
    features: list[str],
    target: str,
    return_col: str,
    cfg: TrainConfig,
    splits: list[Split],
    *,
    search: SearchSettings | None = None,
) -> WalkForwardResult:
    """Train and score fold by fold; every score is made by a model that never saw that bar's label.

    `data` holds KEY, `features`, the binary `target`, the forward return
    `return_col` and `label_time`; `splits` are `make_splits(data, ...)`. Each fold is
    tuned on its `train` rows against its `valid` rows, then refitted on both and scores
    its labelled `test` rows; rows without a label are scored by the final model only.
    `search` says where the Optuna studies live and how a trial's valid Sharpe is taken
    (None: in memory, no Sharpe); with a `search.sharpe`, `data` holds its return column.
    """
    search = search or SearchSettings()
    if search.sharpe is not None and search.sharpe.return_col not in data.columns:
        raise DataError(
            f"the training frame has no {search.sharpe.return_col}, which each trial's valid "
            "Sharpe is taken on; add 1 to labels.horizons and rebuild the labels"
        )
    has_target = data[target].is_not_null().to_numpy()
    if not has_target.any():
        raise DataError(f"no row has a {target} label; build labels past the horizon")
    x_all = data.select(features).to_numpy()
    y_all = data[target].fill_null(0).to_numpy().astype(float)
    returns = data[return_col].to_numpy()
    rank = np.empty(data.height, dtype=np.int64)
    rank[data.select(pl.arg_sort_by("open_time", "symbol")).to_series().to_numpy()] = np.arange(
        data.height
    )

    preds, metrics, fold_params, finals, searches = [], [], [], {}, []
    for kind in cfg.models:
        model = booster(kind)
        rounds = cfg.num_boost_round
        for split in splits:
            train, valid, test = (
                _in_time_order(rows, rank, has_target)
                for rows in (split.train, split.valid, split.test)
            )
            for name, rows in (("train", train), ("valid", valid), ("test", test)):
                if len(rows) == 0:
                    raise DataError(
                        f"fold {split.fold} has no labelled {name} rows (`quantlab train folds` "
                        "shows the windows); lengthen the data or change the train windows"
                    )
            valid_rows = (
                None
                if search.sharpe is None
                else data[valid].select(*KEY, search.sharpe.return_col)
            )
            found = _tune(kind, x_all, y_all, train, valid, cfg, split.fold, search, valid_rows)
            searches.append(found)
            best, rounds, tried = found.params, found.rounds, found.trials
            # The fold's model is refitted on train + valid: the valid rows are purged against
            # the test block exactly as the train rows are, so using them leaks nothing, and
            # they are the freshest bars before the test; without them every fold would
            # forecast from data a validation slice staler than the walk-forward claims. The
            # rows purged only against valid (a horizon + embargo sliver before it) stay out,
            # so `valid` stays one slice. The refit boosts the rounds early stopping chose.
            fit = np.concatenate([train, valid])  # in time order: every train bar precedes valid
            fitted = model.fit(x_all[fit], y_all[fit], None, None, best, cfg.seed, rounds)
            prob = model.predict_proba(fitted, x_all[test])
            y_test = y_all[test]
            metrics.append(
                {
                    "model": kind,
                    "fold": split.fold,
                    "train_rows": len(train),
                    "valid_rows": len(valid),
                    "test_rows": len(test),
                    "rounds": rounds,
                    "trials": tried,
                    "auc": _auc(y_test, prob),
                    "logloss": _logloss(y_test, prob),
                    "accuracy": float(np.mean((prob > 0.5) == (y_test == 1))),
                    "rank_ic": _rank_ic(prob, returns[test]),
                }
            )
            fold_params.append({"model": kind, "fold": split.fold, **best})
            preds.append(_scored(data[test], kind, split.fold, prob))

        labelled = _in_time_order(np.arange(data.height), rank, has_target)
        best = {k: v for k, v in fold_params[-1].items() if k not in ("model", "fold")}
        final = model.fit(x_all[labelled], y_all[labelled], None, None, best, cfg.seed, rounds)
        finals[kind] = final
        newest = np.flatnonzero(~has_target)
        if len(newest):
            preds.append(_scored(data[newest], kind, -1, model.predict_proba(final, x_all[newest])))
    predictions = (
        pl.concat(preds)
        .with_columns((pl.col("prob_up") * 2 - 1).alias("score"))
        .sort(*KEY, "model")
    )
    return WalkForwardResult(
        predictions,
        metrics,
        fold_params,
        finals,
        cfg.primary_model,
        trials=pl.concat([f.frame for f in searches]),
        studies=[f.study for f in searches],
        storage=search.storage,
    )


def _scored(rows: pl.DataFrame, kind: str, fold: int, prob: np.ndarray) -> pl.DataFrame:
    return rows.select(*KEY).with_columns(
        pl.lit(kind).alias("model"), pl.lit(fold).alias("fold"), pl.Series("prob_up", prob)
    )
