"""Purged, embargoed walk-forward training: a core with no catalog I/O and no tracking.

Its only side effect is the Optuna studies it tunes, in `search.storage` (in memory unless
the caller names an RDB), so a rerun or `quantlab train tune` can find them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from quantlab.config import TrainConfig
from quantlab.errors import DataError
from quantlab.train.explain import IMPORTANCE_SCHEMA, FoldExplanation, explain_fold
from quantlab.train.models import Fitted, Task, booster
from quantlab.train.search import TRIAL_COLUMNS, Evaluated, FoldSearch, SearchSettings, tune_fold
from quantlab.train.splits import Split
from quantlab.train.targets import (
    class_weights,
    encode,
    fold_metrics,
    prediction_columns,
    score_of,
    task_of,
    valid_loss,
)
from quantlab.vocab import KEY

SYMBOL_FEATURE = "symbol"  # the pooled model's categorical feature: the symbol's code
# The `predictions` columns a target may fill; those it does not fill stay null.
PREDICTION_COLUMNS = ("prob_up", "prob_down", "prob_flat", "pred_ret")


@dataclass
class WalkForwardResult:
    predictions: pl.DataFrame  # KEY, model, fold, prob_up, prob_down, prob_flat, pred_ret, score
    fold_metrics: list[dict[str, Any]]  # one per (model kind, fold), with its `model`
    fold_params: list[dict[str, Any]]  # per (kind, fold), and per symbol when per_symbol
    # Fitted on every labelled row, scoring the newest bars; keyed by `model_name`: the kind
    # for a pooled model, `<kind>-<symbol>` for each symbol's own (train.per_symbol).
    models: dict[str, Fitted]
    primary: str  # the kind backtest and risk trade (`train.models[0]`)
    target: str = "binary"  # train.target
    features: list[str] = field(default_factory=list)  # the boosters' columns, in order
    # SHAP of each (model, fold) on the test rows that fold scored (quantlab.train.explain).
    explanations: list[FoldExplanation] = field(default_factory=list)
    # Every Optuna trial of every (model, fold) study: search.TRIAL_COLUMNS.
    trials: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=TRIAL_COLUMNS))
    studies: list[str] = field(default_factory=list)  # their names, in `storage`
    storage: str | None = None  # the studies' RDB URL (None: in memory, gone)

    @property
    def model(self) -> Any:
        """The primary kind's final booster (pooled runs; per-symbol runs have one per symbol)."""
        if self.primary not in self.models:
            raise DataError(
                f"this run trained one {self.primary} model per symbol "
                f"({sorted(self.models)}); pick one from `models`"
            )
        return self.models[self.primary].booster

    @property
    def importance(self) -> pl.DataFrame:
        """Every fold's SHAP importance rows (`feature_importance`), in model and fold order."""
        if not self.explanations:
            return pl.DataFrame(schema=IMPORTANCE_SCHEMA)
        return pl.concat([e.importance for e in self.explanations])


def model_name(kind: str, symbol: str | None = None) -> str:
    """The key of a final model in `WalkForwardResult.models`."""
    return kind if symbol is None else f"{kind}-{symbol}"


def _tune(
    kind: str,
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray,
    cfg: TrainConfig,
    fold: int,
    search: SearchSettings,
    valid_rows: pl.DataFrame | None,
    **fit: Any,
) -> FoldSearch:
    """The fold's Optuna study for model `name` (a `kind` booster): fitted on the split's
    `train` rows, scored on its `valid` rows by the target's loss (quantlab.train.search).

    Its result carries the best parameters, the boosting rounds they ran (fewer than
    `cfg.num_boost_round` when early stopping on `valid` cut them short) and how many
    trials the study ran: the configurations tried, which every tuned figure must carry.
    `fit` is passed to every fit (`_fit_options`: class weights, categorical columns).
    """
    task = task_of(cfg.target)
    model = booster(kind, task)

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
            **fit,
        )
        pred = model.predict(fitted, x[valid])
        return Evaluated(
            fitted.rounds, valid_loss(task, y[valid], pred), score_of(task, pred, fitted.scale)
        )

    return tune_fold(kind, fold, model.suggest, fit_score, cfg, search, valid_rows, label=name)


def _in_time_order(rows: np.ndarray, rank: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """`rows` that have a target, ordered by time then symbol, so a fit is the same whatever
    order the frame came in."""
    rows = rows[keep[rows]]
    return rows[np.argsort(rank[rows], kind="stable")]


def _fit_options(
    cfg: TrainConfig, task: Task, y: np.ndarray, rows: np.ndarray, categorical: tuple[int, ...]
) -> dict[str, Any]:
    """The fit's keyword arguments: `balanced` class weights from the fitted rows' own class
    frequencies (never the rows it is judged on), and the categorical columns."""
    weight = class_weights(y[rows], task) if cfg.class_weight == "balanced" else None
    return {"weight": weight, "categorical": categorical}


def design(
    data: pl.DataFrame, features: list[str], symbols: Sequence[str] | None, pooled: bool
) -> tuple[np.ndarray, list[str], tuple[int, ...]]:
    """The feature matrix, its column names and its categorical columns. A pooled model
    gets the symbol as a category, coded by its position in `symbols` (the configured
    universe) so a code means the same symbol in every run."""
    x = data.select(features).to_numpy()
    if not pooled:
        return x, list(features), ()
    order = list(symbols) if symbols is not None else sorted(data["symbol"].unique())
    if unknown := sorted(set(data["symbol"].unique()) - set(order)):
        raise DataError(
            f"the training frame holds symbols {unknown} outside the universe {order}; "
            "add them to universe.symbols or rebuild the features for this universe"
        )
    codes = data["symbol"].replace_strict(order, list(range(len(order))), return_dtype=pl.Float64)
    x = np.column_stack([x, codes.to_numpy()])
    return x, [*features, SYMBOL_FEATURE], (x.shape[1] - 1,)


def walk_forward(
    data: pl.DataFrame,
    features: list[str],
    target: str,
    return_col: str,
    cfg: TrainConfig,
    splits: list[Split],
    symbols: Sequence[str] | None = None,
    *,
    search: SearchSettings | None = None,
) -> WalkForwardResult:
    """Train and score fold by fold; every score is made by a model that never saw that bar's label.

    `data` holds KEY, `features`, the label column `target` (of the kind `cfg.target` names;
    `targets.label_column`), the forward return `return_col` and `label_time` (the target's
    own resolution time); `splits` are `make_splits(data, ...)`. Each fold is tuned on its
    `train` rows against its `valid` rows, then refitted on both and scores its labelled
    `test` rows; rows without a label are scored by the final model only. `symbols` orders
    the pooled model's symbol codes (default: sorted); with `cfg.per_symbol` every symbol
    gets its own models instead. `search` says where the Optuna studies live and how a
    trial's valid Sharpe is taken (None: in memory, no Sharpe); with a `search.sharpe`,
    `data` holds its return column.
    """
    task = task_of(cfg.target)
    search = search or SearchSettings()
    if search.sharpe is not None and search.sharpe.return_col not in data.columns:
        raise DataError(
            f"the training frame has no {search.sharpe.return_col}, which each trial's valid "
            "Sharpe is taken on; add 1 to labels.horizons and rebuild the labels"
        )
    has_target = data[target].is_not_null().to_numpy()
    if not has_target.any():
        raise DataError(f"no row has a {target} label; build labels past the horizon")
    x_all, names, categorical = design(data, features, symbols, not cfg.per_symbol)
    y_all = encode(task, data[target].fill_null(0).to_numpy())
    returns = data[return_col].to_numpy()
    rank = np.empty(data.height, dtype=np.int64)
    rank[data.select(pl.arg_sort_by("open_time", "symbol")).to_series().to_numpy()] = np.arange(
        data.height
    )
    if cfg.per_symbol:
        groups = [(s, (data["symbol"] == s).to_numpy()) for s in sorted(data["symbol"].unique())]
    else:
        groups = [(None, np.ones(data.height, dtype=bool))]

    preds, metrics, fold_params, finals, explanations, searches = [], [], [], {}, [], []
    for kind in cfg.models:
        model = booster(kind, task)
        last: dict[str | None, tuple[dict[str, Any], int]] = {}  # each group's last fold
        for split in splits:
            tested, pred_parts, score_parts, boosted = [], [], [], []
            counts = np.zeros(4, dtype=np.int64)  # train, valid, test rows and trials
            for symbol, member in groups:
                train, valid, test = (
                    _in_time_order(rows, rank, has_target & member)
                    for rows in (split.train, split.valid, split.test)
                )
                if symbol is not None and len(test) == 0:
                    continue  # nothing of this symbol to score in this block
                for name, rows in (("train", train), ("valid", valid), ("test", test)):
                    if len(rows) == 0:
                        raise DataError(
                            f"fold {split.fold} has no labelled {name} rows"
                            f"{'' if symbol is None else f' of {symbol}'} (`quantlab train "
                            "folds` shows the windows); lengthen the data or change the train "
                            "windows" + ("" if symbol is None else ", or set per_symbol: false")
                        )
                fit_kw = _fit_options(cfg, task, y_all, train, categorical)
                valid_rows = (
                    None
                    if search.sharpe is None
                    else data[valid].select(*KEY, search.sharpe.return_col)
                )
                found = _tune(
                    kind,
                    model_name(kind, symbol),
                    x_all,
                    y_all,
                    train,
                    valid,
                    cfg,
                    split.fold,
                    search,
                    valid_rows,
                    **fit_kw,
                )
                searches.append(found)
                best, rounds, tried = found.params, found.rounds, found.trials
                # The fold's model is refitted on train + valid: the valid rows are purged
                # against the test block exactly as the train rows are, so using them leaks
                # nothing, and they are the freshest bars before the test; without them every
                # fold would forecast from data a validation slice staler than the
                # walk-forward claims. The rows purged only against valid (a horizon + embargo
                # sliver before it) stay out, so `valid` stays one slice. The refit boosts the
                # rounds early stopping chose.
                fit = np.concatenate([train, valid])  # time order: every train bar precedes valid
                fit_kw = _fit_options(cfg, task, y_all, fit, categorical)
                fitted = model.fit(
                    x_all[fit], y_all[fit], None, None, best, cfg.seed, rounds, **fit_kw
                )
                # Predict the fold's test rows.
                pred = model.predict(fitted, x_all[test])
                score = score_of(task, pred, fitted.scale)
                preds.append(_scored(data[test], kind, split.fold, task, pred, score))
                # SHAP: the fold's model explained on the very rows it just scored, same rounds.
                explanations.append(
                    explain_fold(
                        fitted,
                        x_all[test],
                        names,
                        split.fold,
                        cfg.seed,
                        model=model_name(kind, symbol),
                    )
                )
                tested.append(test)
                pred_parts.append(pred)
                score_parts.append(score)
                counts += (len(train), len(valid), len(test), tried)
                last[symbol] = (best, rounds)
                boosted.append(rounds)
                fold_params.append(
                    {"model": kind, "fold": split.fold}
                    | ({} if symbol is None else {"symbol": symbol, "rounds": rounds})
                    | best
                )
            test = np.concatenate(tested)
            metrics.append(
                {
                    "model": kind,
                    "fold": split.fold,
                    "train_rows": int(counts[0]),
                    "valid_rows": int(counts[1]),
                    "test_rows": int(counts[2]),
                    # per symbol: the most rounds any symbol's model boosted (each is in fold_params)
                    "rounds": max(boosted),
                    "trials": int(counts[3]),  # every symbol's trials, when per symbol
                    **fold_metrics(
                        task,
                        y_all[test],
                        np.concatenate(pred_parts),
                        np.concatenate(score_parts),
                        returns[test],
                    ),
                }
            )

        for symbol, member in groups:
            if symbol not in last:
                continue  # a symbol no fold tested has no tuned parameters to refit with
            best, rounds = last[symbol]
            labelled = _in_time_order(np.arange(data.height), rank, has_target & member)
            fit_kw = _fit_options(cfg, task, y_all, labelled, categorical)
            final = model.fit(
                x_all[labelled], y_all[labelled], None, None, best, cfg.seed, rounds, **fit_kw
            )
            finals[model_name(kind, symbol)] = final
            newest = np.flatnonzero(~has_target & member)
            if len(newest):
                pred = model.predict(final, x_all[newest])
                score = score_of(task, pred, final.scale)
                preds.append(_scored(data[newest], kind, -1, task, pred, score))
    predictions = pl.concat(preds).sort(*KEY, "model")
    return WalkForwardResult(
        predictions,
        metrics,
        fold_params,
        finals,
        cfg.primary_model,
        cfg.target,
        names,
        explanations,
        trials=pl.concat([f.frame for f in searches]),
        studies=[f.study for f in searches],
        storage=search.storage,
    )


def _scored(
    rows: pl.DataFrame, kind: str, fold: int, task: Task, pred: np.ndarray, score: np.ndarray
) -> pl.DataFrame:
    filled = prediction_columns(task, pred)
    return rows.select(*KEY).with_columns(
        pl.lit(kind).alias("model"),
        pl.lit(fold).alias("fold"),
        *(
            pl.Series(c, filled[c], dtype=pl.Float64)
            if c in filled
            else pl.lit(None, dtype=pl.Float64).alias(c)
            for c in PREDICTION_COLUMNS
        ),
        pl.Series("score", score, dtype=pl.Float64),
    )
