"""Per-symbol regime classifiers walked forward: a pure core, no catalog and no tracking.

Each symbol gets a LightGBM six-class model of `regime_<h>` (the regime code h bars ahead)
from every feature column, on its own purged, embargoed walk-forward
(`quantlab.train.splits.make_splits` with `label_time` = `label_time_<h>`, so no training
label resolves inside the embargo before a test block). Each fold is tuned by a small Optuna
study on its train rows against its valid rows (`quantlab.train.search.tune_fold`), refitted
on both and scores its test rows (fold >= 0); the final model, fitted on every labelled row
with the last fold's parameters, scores the newest bars whose regime is not known yet (fold
-1). Every output has the six probabilities in `quantlab.vocab.REGIMES` order, whichever
classes the training rows held.

Its only side effect is the Optuna studies, in memory unless `search.storage` names an RDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import optuna
import polars as pl

from quantlab import metrics
from quantlab.config import TrainConfig
from quantlab.errors import DataError
from quantlab.lifecycle.evaluate import REGIME_COLUMNS, score_regime
from quantlab.train.models import Fitted, booster
from quantlab.train.search import Evaluated, FoldSearch, SearchSettings, tune_fold
from quantlab.train.splits import Split, make_splits
from quantlab.vocab import KEY, REGIMES

KIND = "lightgbm"
TASK = "multiclass"
N_REGIMES = len(REGIMES)
TARGET = "y"  # the training frame's label column: the regime code h bars ahead
CURRENT = "regime"  # the features' current regime code: the persistence baseline
FOLD_METRICS = ("logloss", "accuracy", "macro_f1")
EXAMPLE_ROWS = 5
# Every regime fit runs on one thread (LightGBM's `deterministic` gives the same trees for
# any count). A symbol's rows are few, so a second thread buys little, and where the cores
# are shared, OpenMP's spin-waiting made a two-thread fit ~10x slower in wall time than a
# one-thread fit here (2 cores, load 11; quantlab.train.models.use_threads has the story).
# 63 histogram bins instead of 255: a six-class fit grows six trees a round. With `suggest`
# below, the shipped data's 3 symbols trained in 20 CPU-s instead of 45, at the same
# out-of-fold logloss (1.460 against 1.462) and accuracy (0.430 against 0.426).
FIXED = {"num_threads": 1, "max_bin": 63}


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    """The regime model's search space: the main LightGBM one (quantlab.train.models) with
    learning rates from 0.05, since a handful of trials with early stopping cannot afford
    the slow rates' hundreds of six-tree rounds, and at most 31 leaves on ~10k rows."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.05, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 31, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 50, 500, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


PREDICTION_SCHEMA = {
    "symbol": pl.String,
    "open_time": pl.Datetime("ms", "UTC"),
    "model": pl.String,
    "fold": pl.Int32,
    **dict.fromkeys(REGIME_COLUMNS, pl.Float64),
    "regime": pl.Int8,
    "confidence": pl.Float64,
}


def model_name(prefix: str, symbol: str) -> str:
    """The registered name of `symbol`'s regime model: `<lifecycle.regime.register_as>-<SYMBOL>`."""
    return f"{prefix}-{symbol}"


def training_frame(features: pl.DataFrame, labels: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """`features` joined to the regime label: KEY, the feature columns, `y` (`regime_<h>`)
    and `label_time` (`label_time_<h>`, when it resolves; null while it has not).

    A row whose label time passed but whose regime is null lies in the regime rules'
    warm-up: it never gets a label, so it is dropped, not scored as a newest bar.
    """
    y, t = f"regime_{horizon}", f"label_time_{horizon}"
    if missing := [c for c in (y, t) if c not in labels.columns]:
        raise DataError(
            f"the labels lack {missing}; set labels.regime.horizon to {horizon} and rebuild "
            "the labels (`quantlab run labels`)"
        )
    data = features.join(
        labels.select(*KEY, pl.col(y).cast(pl.Int64).alias(TARGET), pl.col(t).alias("label_time")),
        on=list(KEY),
        how="inner",
    )
    if data.height == 0:
        raise DataError(
            "the features and labels share no (symbol, open_time) rows; build both from the "
            "same klines version"
        )
    return data.filter(pl.col(TARGET).is_not_null() | pl.col("label_time").is_null()).sort(KEY)


@dataclass(frozen=True)
class SymbolModel:
    """A symbol's final model: fitted on every labelled row of the symbol."""

    symbol: str
    name: str  # its registered name
    fitted: Fitted
    params: dict[str, Any]  # the last fold's tuned parameters it was fitted with
    train_end: datetime | None  # the newest label_time it trained on
    rows: int  # the labelled rows it was fitted on
    example: pl.DataFrame  # a few rows of its input matrix, its columns named (MLflow's example)


@dataclass
class RegimeResult:
    predictions: pl.DataFrame  # PREDICTION_SCHEMA: out-of-fold (fold >= 0), newest (fold -1)
    fold_metrics: list[dict[str, Any]]  # one per (symbol, fold): rows, rounds, FOLD_METRICS
    models: dict[str, SymbolModel]  # by symbol
    features: list[str]  # every booster's input columns, in order
    skipped: dict[str, str] = field(default_factory=dict)  # symbol -> why it has no model


def persistence(frame: pl.DataFrame) -> pl.DataFrame:
    """The naive forecast "the current regime persists": its current code as certainty."""
    code = frame[CURRENT].to_numpy()
    return frame.select(
        TARGET,
        *(pl.Series(col, (code == k).astype(np.float64)) for k, col in enumerate(REGIME_COLUMNS)),
    )


def _probabilities(frame: pl.DataFrame, pred: np.ndarray) -> pl.DataFrame:
    return frame.with_columns(
        pl.Series(col, pred[:, k], dtype=pl.Float64) for k, col in enumerate(REGIME_COLUMNS)
    )


def _scored(rows: pl.DataFrame, name: str, fold: int, pred: np.ndarray) -> pl.DataFrame:
    """`rows`' predictions in the `regime_predictions` columns."""
    return _probabilities(rows.select(*KEY), pred).select(
        *KEY,
        pl.lit(name).alias("model"),
        pl.lit(fold, dtype=pl.Int32).alias("fold"),
        *REGIME_COLUMNS,
        pl.Series("regime", np.argmax(pred, axis=1), dtype=pl.Int8),
        pl.Series("confidence", np.max(pred, axis=1), dtype=pl.Float64),
    )


def _last(times: pl.Series) -> str | None:
    last = times.max()
    return None if last is None else last.isoformat()


def _fold_record(
    split: Split,
    frame: pl.DataFrame,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    found: FoldSearch,
    pred: np.ndarray,
) -> dict[str, Any]:
    """A fold's record: its windows and the newest label each slice used (what purging
    bounds), its rows, rounds and trials, its test metrics and the persistence baseline's."""
    train, valid, test = rows
    tested = frame[test]
    scored = _probabilities(tested.select(TARGET), pred)
    record: dict[str, Any] = {
        "symbol": frame["symbol"][0],
        "fold": split.fold,
        "valid_start": split.valid_start.isoformat(),
        "test_start": split.test_start.isoformat(),
        "train_last_label": _last(frame["label_time"].gather(train)),
        "valid_last_label": _last(frame["label_time"].gather(valid)),
        "train_rows": len(train),
        "valid_rows": len(valid),
        "test_rows": len(test),
        "rounds": found.rounds,
        "trials": found.trials,
        **{m: score_regime(m, scored) for m in FOLD_METRICS},
    }
    if CURRENT in tested.columns:  # the baseline to beat: the regime h bars on is today's
        naive = persistence(tested.drop_nulls(CURRENT))
        record["persist_accuracy"] = score_regime("accuracy", naive)
        record["persist_macro_f1"] = score_regime("macro_f1", naive)
    return record


def train_symbol(
    frame: pl.DataFrame,
    features: Sequence[str],
    cfg: TrainConfig,
    *,
    name: str,
    interval: str,
    horizon: int,
    search: SearchSettings,
) -> tuple[list[pl.DataFrame], list[dict[str, Any]], SymbolModel]:
    """One symbol's walk-forward (`frame` holds only its rows, in time order): the scored
    frames, the fold records and the final model. `cfg` carries the splits, the seed, the
    trials and `num_boost_round` (the stage sets those two from `lifecycle.regime`)."""
    symbol = frame["symbol"][0]
    splits = make_splits(frame, cfg, interval=interval, horizon=horizon)
    model = booster(KIND, TASK, N_REGIMES)
    x = frame.select(features).to_numpy().astype(np.float64)
    labelled = frame[TARGET].is_not_null().to_numpy()
    y = frame[TARGET].fill_null(0).to_numpy().astype(np.float64)
    classes = list(range(N_REGIMES))
    parts, records, last = [], [], None
    for split in splits:
        train, valid, test = (r[labelled[r]] for r in (split.train, split.valid, split.test))
        if len(test) == 0:
            continue  # a block of bars not yet labelled: the final model scores them
        if len(train) == 0 or len(valid) == 0:
            raise DataError(
                f"{symbol}: fold {split.fold} has {len(train)} labelled train and {len(valid)} "
                "valid rows; lengthen its history or change the train windows"
            )

        def fit_score(params: dict[str, Any], callbacks: Any, train=train, valid=valid) -> Any:
            fitted = model.fit(
                x[train], y[train], x[valid], y[valid], params | FIXED, cfg.seed,
                cfg.num_boost_round, cfg.early_stopping_rounds, callbacks=callbacks,
            )  # fmt: skip
            pred = model.predict(fitted, x[valid])
            loss = metrics.logloss(y[valid], pred, classes=classes)
            return Evaluated(fitted.rounds, float(loss), np.zeros(len(valid)))

        found = tune_fold(KIND, split.fold, suggest, fit_score, cfg, search, label=name)
        # Refit on train + valid: both are purged against the test block (walkforward.py).
        fit = np.concatenate([train, valid])
        fitted = model.fit(x[fit], y[fit], None, None, found.params | FIXED, cfg.seed, found.rounds)
        pred = model.predict(fitted, x[test])
        parts.append(_scored(frame[test], name, split.fold, pred))
        records.append(_fold_record(split, frame, (train, valid, test), found, pred))
        last = found
    if last is None:
        raise DataError(
            f"{symbol}: no walk-forward fold has labelled test rows; add history for it"
        )
    rows = np.flatnonzero(labelled)
    final = model.fit(x[rows], y[rows], None, None, last.params | FIXED, cfg.seed, last.rounds)
    if len(newest := np.flatnonzero(frame["label_time"].is_null().to_numpy())):
        parts.append(_scored(frame[newest], name, -1, model.predict(final, x[newest])))
    train_end = frame["label_time"].gather(rows).max()
    example = pl.DataFrame(x[rows[:EXAMPLE_ROWS]], schema=list(features), orient="row")
    model_of = SymbolModel(symbol, name, final, last.params, train_end, len(rows), example)
    return parts, records, model_of


def train_regimes(
    data: pl.DataFrame,
    features: Sequence[str],
    cfg: TrainConfig,
    *,
    prefix: str,
    interval: str,
    horizon: int,
    symbols: Sequence[str] | None = None,
    search: SearchSettings | None = None,
) -> RegimeResult:
    """Walk forward one regime model per symbol of `data` (`training_frame`), in `symbols`
    order (default: sorted). A symbol whose history is too short for its folds gets no
    model and is listed in `skipped` with the reason; none at all is an error."""
    search = search or SearchSettings(study_prefix="regime")
    order = list(symbols) if symbols is not None else sorted(data["symbol"].unique())
    parts, records, models, skipped = [], [], {}, {}
    for symbol in order:
        frame = data.filter(pl.col("symbol") == symbol).sort("open_time")
        if frame.height == 0:
            skipped[symbol] = "no rows in the features and labels"
            continue
        try:
            got, recs, final = train_symbol(
                frame, features, cfg, name=model_name(prefix, symbol),
                interval=interval, horizon=horizon, search=search,
            )  # fmt: skip
        except DataError as exc:  # too little history for this symbol alone
            skipped[symbol] = str(exc)
            continue
        parts += got
        records += recs
        models[symbol] = final
    if not models:
        raise DataError(f"no symbol could train a regime model: {skipped}")
    predictions = pl.concat(parts).sort(KEY)
    return RegimeResult(predictions, records, models, list(features), skipped)
