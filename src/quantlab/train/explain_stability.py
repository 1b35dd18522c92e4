"""How stable the SHAP importances are across walk-forward folds: rank agreement, top-k overlap
and features whose average push changes sign.

A feature set whose ranking reshuffles from fold to fold, or whose leading feature pushes up in
one period and down in the next, is not a finding a quant should trade on; these figures put
that on the run. Pure: works on `importance_rows` frames.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl

from quantlab.errors import DataError
from quantlab.metrics import spearman

# The top-k set compared between folds: a quarter of the default 40 features, and never more
# than half of a smaller set, where overlap could not fall short of 1. A constant, not config:
# it changes no prediction, and a `train` key would move the train stage's fingerprint.
TOP_K = 10


def top_k_of(features: int, top_k: int = TOP_K) -> int:
    """The k used for `features` features: `top_k`, at most half of them, at least 1."""
    return max(1, min(top_k, features // 2))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman correlation of two importance vectors (ties share their mean rank).

    Spearman, as the project's rank IC (`quantlab.metrics.spearman`): one definition of rank
    agreement in the code base. None when either vector is constant (no ranking to compare).
    """
    value = pl.DataFrame({"a": a, "b": b}).select(spearman("a", "b")).item()
    return None if value is None or not np.isfinite(value) else float(value)


def top_set(a: np.ndarray, k: int) -> set[int]:
    """Indices of the `k` largest entries of `a` (ties go to the earlier feature)."""
    return set(np.argsort(-a, kind="stable")[:k].tolist())


def jaccard(s: set[int], t: set[int]) -> float:
    """|s ∩ t| / |s ∪ t|; 1.0 for two empty sets."""
    return len(s & t) / len(s | t) if s | t else 1.0


# A fold's mean SHAP gives a feature a direction only when it is at least this share of the
# feature's mean |SHAP| there: a feature that pushes both ways about equally (mean near zero,
# |SHAP| large) has no direction to flip, and on the shipped data most features are like
# that, so a bare sign change flagged 34 of 40 of them and said nothing.
MATERIAL = 0.2


def directions(mean_shap: np.ndarray, mean_abs: np.ndarray | None = None) -> np.ndarray:
    """+1, -1 or 0 per entry of a (folds, features) array: the sign of the mean SHAP where it
    is material (|mean| >= MATERIAL x mean |SHAP|; without `mean_abs`, any non-zero mean)."""
    floor = 0.0 if mean_abs is None else MATERIAL * mean_abs
    return np.where(mean_shap > floor, 1, np.where(mean_shap < -floor, -1, 0))


def sign_flips(mean_shap: np.ndarray, mean_abs: np.ndarray | None = None) -> np.ndarray:
    """Per feature (column) of a (folds, features) array: whether it pushes up in some fold
    and down in another (`directions`)."""
    way = directions(mean_shap, mean_abs)
    return (way > 0).any(axis=0) & (way < 0).any(axis=0)


@dataclass(frozen=True)
class Stability:
    """Per (model, output): `summary` one row; `pairs` one row per pair of folds; `flips` the
    features whose mean SHAP changed sign, with each fold's sign counted."""

    summary: pl.DataFrame
    pairs: pl.DataFrame
    flips: pl.DataFrame

    def to_dict(self) -> dict:
        """JSON-ready: the three tables as lists of rows."""
        return {
            "summary": self.summary.to_dicts(),
            "pairs": self.pairs.to_dicts(),
            "sign_flips": self.flips.to_dicts(),
        }


_SUMMARY = {
    "model": pl.String(),
    "output": pl.Int32(),
    "folds": pl.Int32(),
    "features": pl.Int32(),
    "top_k": pl.Int32(),
    "rank_corr_median": pl.Float64(),
    "rank_corr_min": pl.Float64(),
    "topk_jaccard_median": pl.Float64(),
    "topk_jaccard_min": pl.Float64(),
    "sign_flips": pl.Int32(),
}
_PAIRS = {
    "model": pl.String(),
    "output": pl.Int32(),
    "fold_a": pl.Int32(),
    "fold_b": pl.Int32(),
    "rank_corr": pl.Float64(),
    "topk_jaccard": pl.Float64(),
}
_FLIPS = {
    "model": pl.String(),
    "output": pl.Int32(),
    "feature": pl.String(),
    "folds_positive": pl.Int32(),
    "folds_negative": pl.Int32(),
    "min_mean_shap": pl.Float64(),
    "max_mean_shap": pl.Float64(),
    "mean_abs_shap": pl.Float64(),  # averaged over folds: how much the flip matters
}


def _median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.median(kept)) if kept else None


def _per_fold(group: pl.DataFrame) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The folds of one (model, output) and their (folds, features) mean |SHAP| and mean SHAP,
    features in the first fold's order."""
    parts = group.partition_by("fold", maintain_order=True)
    features = parts[0]["feature"].to_list()
    abs_, mean = [], []
    for part in parts:
        if sorted(part["feature"].to_list()) != sorted(features):
            raise DataError(
                f"SHAP importance of {part['model'][0]} fold {part['fold'][0]} names other "
                "features than its first fold; compare folds of one feature set"
            )
        at = part.select("feature", "mean_abs_shap", "mean_shap").rows_by_key("feature")
        abs_.append([at[f][0][0] for f in features])
        mean.append([at[f][0][1] for f in features])
    return [int(p["fold"][0]) for p in parts], np.array(abs_), np.array(mean)


def explain_stability(importance: pl.DataFrame, top_k: int = TOP_K) -> Stability:
    """Compare the folds of each (model, output) in `importance` (`importance_rows` frames).

    Each pair of folds: the Spearman correlation of their mean-|SHAP| vectors and the Jaccard
    overlap of their top-k features; the summary keeps the median and the worst of both.
    """
    summary, pairs, flips = [], [], []
    for (model, output), group in importance.sort("model", "output", "fold").group_by(
        "model", "output", maintain_order=True
    ):
        folds, abs_, mean = _per_fold(group)
        features = group.filter(pl.col("fold") == folds[0])["feature"].to_list()
        k = top_k_of(len(features), top_k)
        corr, jac = [], []
        for i, j in itertools.combinations(range(len(folds)), 2):
            corr.append(rank_correlation(abs_[i], abs_[j]))
            jac.append(jaccard(top_set(abs_[i], k), top_set(abs_[j], k)))
            pairs.append((model, output, folds[i], folds[j], corr[-1], jac[-1]))
        way = directions(mean, abs_)
        flipped = sign_flips(mean, abs_)
        for c in np.flatnonzero(flipped):
            flips.append(
                (
                    model,
                    output,
                    features[c],
                    int((way[:, c] > 0).sum()),
                    int((way[:, c] < 0).sum()),
                    float(mean[:, c].min()),
                    float(mean[:, c].max()),
                    float(abs_[:, c].mean()),
                )
            )
        summary.append(
            (
                model,
                output,
                len(folds),
                len(features),
                k,
                _median(corr),
                min((c for c in corr if c is not None), default=None),
                _median(jac),
                min(jac, default=None),
                int(flipped.sum()),
            )
        )
    return Stability(
        pl.DataFrame(summary, schema=_SUMMARY, orient="row"),
        pl.DataFrame(pairs, schema=_PAIRS, orient="row"),
        pl.DataFrame(flips, schema=_FLIPS, orient="row").sort(
            "model", "output", "mean_abs_shap", descending=[False, False, True]
        ),
    )
