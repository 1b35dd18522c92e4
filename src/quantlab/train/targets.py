"""What training learns (`train.target`) from the `labels` dataset, and how it is judged.

One place maps a target to its label column, the time that label resolves (what the splits
purge by), the booster task, the class codes, the score in [-1, 1] that backtest and risk
trade, the fold metrics and the tuning loss. Pure functions; no I/O.

The score, per target (`signal.threshold` is in these units; `quantlab.scores` computes it):
- binary: 2·P(up) − 1;
- direction, triple_barrier: P(up) − P(down), so the flat class's mass pulls it to 0;
- regression: the predicted return over the sd of the returns the model was fitted on,
  clipped to [−1, 1]; a forecast of 0.2 sd scores 0.2. A boosted regression predicts far
  inside the returns' own spread, so the clip rarely binds; the sd comes from the fit rows,
  never from the rows scored.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl

from quantlab import metrics
from quantlab.config import LabelsConfig
from quantlab.errors import ConfigError, DataError

# The score rule lives in quantlab.scores (light enough for serving); re-exported here.
from quantlab.scores import prediction_columns as prediction_columns
from quantlab.scores import score_of as score_of
from quantlab.train.models import N_CLASSES, Task

TargetName = Literal["binary", "direction", "triple_barrier", "regression"]
TASKS: dict[str, Task] = {
    "binary": "binary",
    "direction": "multiclass",
    "triple_barrier": "multiclass",
    "regression": "regression",
}
# The 3-class labels' values, in the order of the encoded classes 0, 1, 2 (down, flat, up).
CLASSES = (-1, 0, 1)


def task_of(target: str) -> Task:
    """The booster task that learns `target` (a `train.target` value)."""
    if target not in TASKS:
        raise ConfigError(f"train.target is {target!r}; use one of {sorted(TASKS)}")
    return TASKS[target]


def label_column(target: str, labels: LabelsConfig) -> str:
    """The `labels` column `target` learns."""
    h = labels.horizon
    return {
        "binary": "label_up",
        "direction": f"dir_{h}",
        "triple_barrier": "tb_label",
        "regression": f"fwd_ret_{h}",
    }[_known(target, labels)]


def time_column(target: str, labels: LabelsConfig) -> str:
    """The `labels` column holding when `target`'s label resolves: what purging must use."""
    known = _known(target, labels)
    return "tb_time" if known == "triple_barrier" else f"label_time_{labels.horizon}"


def _known(target: str, labels: LabelsConfig) -> str:
    task_of(target)
    if target == "triple_barrier" and labels.barrier is None:
        raise ConfigError(
            "train.target is triple_barrier but labels.barrier is null, so the labels carry "
            "no tb_label; configure labels.barrier or choose another train.target"
        )
    return target


def with_target_time(frame: pl.DataFrame, target: str, labels: LabelsConfig) -> pl.DataFrame:
    """`frame` with `label_time` set to when `target`'s own label resolves.

    `make_splits` purges by `label_time`; a triple barrier resolves at `tb_time`, which can
    lie past the horizon's time, so purging by the horizon would let it train on the test.
    """
    column = time_column(target, labels)
    if column not in frame.columns:
        raise DataError(
            f"the training frame has no {column!r} column for train.target {target}; "
            "rebuild the labels with this labels config"
        )
    return frame.with_columns(pl.col(column).alias("label_time"))


def encode_classes(y: np.ndarray) -> np.ndarray:
    """3-class labels −1/0/+1 as the class codes 0/1/2 the boosters take."""
    codes = np.full(len(y), -1.0)
    for code, value in enumerate(CLASSES):
        codes[y == value] = code
    if (bad := codes < 0).any():
        raise DataError(
            f"a 3-class label holds {sorted(set(y[bad].tolist()))[:5]}, not one of {CLASSES}; "
            "train.target direction or triple_barrier needs dir_<h> or tb_label"
        )
    return codes


def encode(task: Task, y: np.ndarray) -> np.ndarray:
    """A label column's values as the booster's targets (floats; classes as codes)."""
    y = y.astype(np.float64)
    if task == "multiclass":
        return encode_classes(y)
    if task == "binary" and not np.isin(y, (0.0, 1.0)).all():
        raise DataError("train.target binary needs a 0/1 label such as label_up")
    return y


def class_weights(y: np.ndarray, task: Task) -> np.ndarray:
    """Per row, n / (k · n_class): the inverse frequency of its class among `y`'s rows
    (k the classes present), so every class weighs as much in the fit."""
    if task == "regression":
        raise ConfigError("train.class_weight balanced needs a classification train.target")
    values, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    return (len(y) / (len(values) * counts))[inverse]


def valid_loss(task: Task, y: np.ndarray, pred: np.ndarray) -> float:
    """What tuning minimises on the valid slice: logloss for the classifiers, RMSE for
    regression (the losses early stopping watches)."""
    loss = metrics.rmse(y, pred) if task == "regression" else metrics.logloss(y, pred)
    if loss is None:
        raise DataError(f"the {task} validation loss is undefined on {len(y)} rows")
    return loss


def fold_metrics(
    task: Task, y: np.ndarray, pred: np.ndarray, score: np.ndarray, returns: np.ndarray
) -> dict[str, Any]:
    """A fold's test metrics: the task's own, then IC, rank IC and hit rate of the score
    against the forward return (comparable across targets). None where undefined."""
    if task == "binary":
        own = {
            "auc": metrics.auc(y, pred),
            "logloss": metrics.logloss(y, pred),
            "accuracy": metrics.accuracy(y, (pred > 0.5).astype(np.float64)),
        }
    elif task == "multiclass":
        labels = list(range(N_CLASSES))
        guess = np.argmax(pred, axis=1).astype(np.float64)
        own = {
            "macro_f1": metrics.macro_f1(y, guess, labels=labels),
            "logloss": metrics.logloss(y, pred, classes=labels),
            "accuracy": metrics.accuracy(y, guess),
        }
    else:
        own = {"rmse": metrics.rmse(y, pred)}
    return {
        **own,
        "ic": metrics.ic(score, returns),
        "rank_ic": metrics.rank_ic(score, returns),
        "hit_rate": metrics.hit_rate(score, returns),
    }
