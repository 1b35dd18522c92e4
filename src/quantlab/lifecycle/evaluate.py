"""Scoring a model's out-of-sample predictions against resolved labels: one copy for the
promotion gate and the live accuracy tracker.

Two families of model:
- main: a row holds `prob_up` (null for regression), `score` in [-1, 1], `label_up` (0/1)
  and `ret` (the trained horizon's forward return). auc, logloss and brier judge P(up)
  (the score mapped to (score + 1) / 2 where a model gives no probability); accuracy is the
  sign of the score against `label_up`; ic, rank_ic and hit_rate the score against `ret`.
- regime: a row holds the six `p_<regime>` probabilities (`quantlab.vocab.REGIMES` order)
  and `y`, the regime code that resolved.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quantlab import metrics
from quantlab.config.lifecycle import LOWER_IS_BETTER
from quantlab.vocab import REGIMES

REGIME_COLUMNS = tuple(f"p_{name}" for name in REGIMES)
MAIN_METRICS = ("auc", "logloss", "accuracy", "brier", "ic", "rank_ic", "hit_rate")
REGIME_METRICS = ("logloss", "accuracy", "macro_f1", "brier")


def better(metric: str, a: float, b: float, margin: float = 0.0) -> bool:
    """Whether `a` beats `b` on `metric` (its direction): strictly, and by at least `margin`.
    A tie never replaces a champion, so retraining on the same data changes nothing."""
    gain = b - a if metric in LOWER_IS_BETTER else a - b
    return gain > 0 and gain >= margin


def _prob_up(frame: pl.DataFrame) -> np.ndarray:
    p = frame["prob_up"].to_numpy().astype(np.float64) if "prob_up" in frame.columns else None
    s = (frame["score"].to_numpy().astype(np.float64) + 1.0) / 2.0
    if p is None:
        return s
    return np.where(np.isnan(p), s, p)


def score_main(metric: str, frame: pl.DataFrame) -> float | None:
    """`metric` of a main model's rows (`prob_up`, `score`, `label_up`, `ret`); None if undefined."""
    if metric not in MAIN_METRICS:
        raise ValueError(
            f"metric {metric!r} does not score a main model; use one of {MAIN_METRICS}"
        )
    frame = frame.filter(pl.col("label_up").is_not_null() & pl.col("score").is_not_null())
    if frame.height == 0:
        return None
    y = frame["label_up"].to_numpy().astype(np.float64)
    score = frame["score"].to_numpy().astype(np.float64)
    if metric == "auc":
        return metrics.auc(y, _prob_up(frame))
    if metric == "logloss":
        return metrics.logloss(y, np.clip(_prob_up(frame), 1e-15, 1 - 1e-15))
    if metric == "brier":
        return float(np.mean((_prob_up(frame) - y) ** 2))
    if metric == "accuracy":
        return metrics.accuracy(y, (score > 0).astype(np.float64))
    ret = frame["ret"].to_numpy().astype(np.float64)
    if metric == "ic":
        return metrics.ic(score, ret)
    if metric == "rank_ic":
        return metrics.rank_ic(score, ret)
    return metrics.hit_rate(score, ret)


def score_regime(metric: str, frame: pl.DataFrame) -> float | None:
    """`metric` of a regime model's rows (`p_<regime>` x 6, `y` the resolved code)."""
    if metric not in REGIME_METRICS:
        raise ValueError(
            f"metric {metric!r} does not score a regime model; use one of {REGIME_METRICS}"
        )
    frame = frame.filter(pl.col("y").is_not_null())
    if frame.height == 0:
        return None
    y = frame["y"].to_numpy().astype(np.int64)
    probs = frame.select(REGIME_COLUMNS).to_numpy().astype(np.float64)
    labels = list(range(len(REGIMES)))
    if metric == "logloss":
        return metrics.logloss(y.astype(np.float64), probs, classes=labels)
    if metric == "brier":
        onehot = np.eye(len(REGIMES))[y]
        return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    guess = np.argmax(probs, axis=1).astype(np.float64)
    if metric == "accuracy":
        return metrics.accuracy(y.astype(np.float64), guess)
    return metrics.macro_f1(y.astype(np.float64), guess, labels=labels)


def score(family: str, metric: str, frame: pl.DataFrame) -> float | None:
    return score_regime(metric, frame) if family == "regime" else score_main(metric, frame)


def main_truth(labels: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """The resolved outcomes a main model is scored on: KEY, label_up, ret, label_time."""
    return labels.select(
        "symbol",
        "open_time",
        "label_up",
        pl.col(f"fwd_ret_{horizon}").alias("ret"),
        pl.col(f"label_time_{horizon}").alias("label_time"),
    ).filter(pl.col("label_up").is_not_null())


def regime_truth(labels: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """The resolved regimes a regime model is scored on: KEY, y, label_time."""
    return labels.select(
        "symbol",
        "open_time",
        pl.col(f"regime_{horizon}").cast(pl.Int64).alias("y"),
        pl.col(f"label_time_{horizon}").alias("label_time"),
    ).filter(pl.col("y").is_not_null())
