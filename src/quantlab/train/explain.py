"""SHAP for the fitted boosters, from their native contributions: per-fold importance rows.

LightGBM's `pred_contrib` and XGBoost's `pred_contribs` are exact TreeSHAP values (what
`shap.TreeExplainer` itself calls, without its per-tree parsing), in raw-margin space. Both
are read with the rounds the model predicts with (`Fitted.rounds`): with early stopping the
booster holds more trees than it uses, and explaining all of them would explain a model that
never scored a row. Every call checks additivity, so that cannot happen silently. Pure: no
I/O, no tracking; `explain_stability` compares the folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from quantlab.errors import DataError
from quantlab.train.models import Fitted, dmatrix

# Rows of a fold's test slice explained (and plotted): a seeded draw of at most this many.
# TreeSHAP costs far more per row than a boosting round (LightGBM's leaf-wise trees run deep,
# and the cost grows with depth squared): on the whole slice of the shipped sample it cost
# LightGBM about 120% of the fold's fit and XGBoost about 45%, 2,000 rows still about 29% for
# LightGBM (bench/bench_train_models.py), against a goal of 20%. On 1,000 rows the standard
# error of a mean |SHAP| is about 3% of its spread; the bench prints how close the sample's
# ranking comes to the whole slice's (Spearman 1.00 and the same top 10 at 2,000 rows).
EXPLAIN_ROWS = 1000
# Contributions and margins are float32 in XGBoost, and summing a few hundred trees' leaves
# in another order moves the last digits; wrong rounds or a wrong model move whole units.
ADDITIVITY_TOL = 1e-4

IMPORTANCE_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String(),
    "fold": pl.Int32(),
    "output": pl.Int32(),  # the booster's output: the class index for multi-class, else 0
    "feature": pl.String(),
    "mean_abs_shap": pl.Float64(),  # mean |contribution| over the fold's test rows
    "mean_shap": pl.Float64(),  # its signed mean: which way the feature pushed on average
    "rank": pl.Int32(),  # 1 = the largest mean |SHAP| of this model, fold and output
    "rows": pl.Int32(),  # the test rows the means are over (a seeded sample of the fold's)
}


@dataclass(frozen=True)
class FoldExplanation:
    """One fold's SHAP on a seeded sample of its test rows: importance rows and plot data."""

    model: str
    fold: int
    feature_names: tuple[str, ...]
    rows: int  # the fold's test rows, of which `sample_rows` were explained
    importance: pl.DataFrame  # IMPORTANCE_SCHEMA rows of this model and fold
    sample_rows: np.ndarray  # positions (into the fold's test rows) explained, sorted
    sample_values: np.ndarray  # (m, outputs, f + 1) their contributions, bias last
    sample_data: np.ndarray  # (m, f) their feature values

    @property
    def outputs(self) -> int:
        return self.sample_values.shape[1]


def contributions(fitted: Fitted, x: np.ndarray) -> np.ndarray:
    """Native SHAP values of `x` under `fitted`, shape (n, outputs, f + 1), the bias last.

    `outputs` is 1 for binary and regression boosters and the class count for multi-class
    ones; the values are in raw-margin space (log-odds, class scores, the regression value).
    """
    booster = fitted.booster
    if fitted.kind == "lightgbm":
        width = booster.num_feature() + 1
        raw = booster.predict(x, pred_contrib=True, num_iteration=fitted.rounds)
        # Multi-class puts one block of f + 1 columns per class side by side (LightGBM#5223).
        return np.asarray(raw, dtype=np.float64).reshape(len(x), -1, width)
    if fitted.kind == "xgboost":
        data = dmatrix(x, fitted.categorical)
        raw = booster.predict(data, pred_contribs=True, iteration_range=(0, fitted.rounds))
        raw = np.asarray(raw, dtype=np.float64)  # (n, f + 1), or (n, k, f + 1) multi-class
        return raw[:, None, :] if raw.ndim == 2 else raw
    raise DataError(f"no SHAP contributions for model kind {fitted.kind!r}")


def raw_margin(fitted: Fitted, x: np.ndarray) -> np.ndarray:
    """The raw score `fitted` predicts for `x` before any link (n, outputs), same rounds."""
    if fitted.kind == "lightgbm":
        raw = fitted.booster.predict(x, raw_score=True, num_iteration=fitted.rounds)
    elif fitted.kind == "xgboost":
        data = dmatrix(x, fitted.categorical)
        raw = fitted.booster.predict(data, output_margin=True, iteration_range=(0, fitted.rounds))
    else:
        raise DataError(f"no raw margin for model kind {fitted.kind!r}")
    raw = np.asarray(raw, dtype=np.float64)
    return raw.reshape(len(x), -1)


def check_additivity(values: np.ndarray, margin: np.ndarray, what: str) -> None:
    """Raise DataError unless each row's contributions (bias included) sum to its margin."""
    total = values.sum(axis=-1)
    if total.shape != margin.shape:
        raise DataError(
            f"SHAP of {what}: contributions give {total.shape[1]} output(s) per row, the model's "
            f"raw score {margin.shape[1]}; the booster's objective is not one explain.py reads"
        )
    gap = np.abs(total - margin)
    worst = np.unravel_index(int(np.argmax(gap)), gap.shape) if gap.size else (0, 0)
    if gap.size and gap[worst] > ADDITIVITY_TOL * max(1.0, float(np.abs(margin[worst]))):
        raise DataError(
            f"SHAP of {what}: the contributions of row {worst[0]} (output {worst[1]}) sum to "
            f"{total[worst]:.6g}, its raw score is {margin[worst]:.6g}; they explain another "
            "model than the one that predicted (other rounds than Fitted.rounds, or a linear-tree "
            "booster, which TreeSHAP does not cover). Explain with the rounds predict uses."
        )


def importance_rows(values: np.ndarray, model: str, fold: int, features: list[str]) -> pl.DataFrame:
    """Mean |SHAP| and mean SHAP per output and feature of (n, outputs, f + 1) `values`."""
    n, outputs, width = values.shape
    if width != len(features) + 1:
        raise DataError(
            f"SHAP of {model} fold {fold}: {width - 1} feature columns for {len(features)} "
            "feature names; pass the names the model was fitted on, in order"
        )
    phi = values[:, :, :-1]  # the bias is no feature
    mean_abs = np.abs(phi).mean(axis=0) if n else np.zeros((outputs, width - 1))
    mean = phi.mean(axis=0) if n else np.zeros((outputs, width - 1))
    # Rank 1 is the largest mean |SHAP|; ties keep the feature order (a stable sort).
    order = np.argsort(-mean_abs, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(1, width, dtype=order.dtype)[None, :], axis=1)
    return pl.DataFrame(
        {
            "model": [model] * (outputs * len(features)),
            "fold": np.full(outputs * len(features), fold, dtype=np.int32),
            "output": np.repeat(np.arange(outputs, dtype=np.int32), len(features)),
            "feature": features * outputs,
            "mean_abs_shap": mean_abs.ravel(),
            "mean_shap": mean.ravel(),
            "rank": rank.ravel().astype(np.int32),
            "rows": np.full(outputs * len(features), n, dtype=np.int32),
        },
        schema=IMPORTANCE_SCHEMA,
    )


def explain_fold(
    fitted: Fitted,
    x: np.ndarray,
    features: list[str],
    fold: int,
    seed: int,
    max_rows: int | None = EXPLAIN_ROWS,
    model: str | None = None,
) -> FoldExplanation:
    """SHAP of one fold's model on its test rows `x` (a seeded sample of at most `max_rows`;
    None: every row), checked for additivity and summarised per feature. `model` names it in
    the rows (default: the booster kind; `<kind>-<symbol>` for a per-symbol model)."""
    name = model or fitted.kind
    keep = np.arange(len(x))
    if max_rows is not None and len(x) > max_rows:
        # A seeded draw, different per fold, the same on every rerun.
        rng = np.random.default_rng([seed, fold])
        keep = np.sort(rng.choice(len(x), size=max_rows, replace=False))
    rows = np.asarray(x[keep], dtype=np.float64)
    values = contributions(fitted, rows)
    check_additivity(values, raw_margin(fitted, rows), f"{fitted.kind} fold {fold}")
    return FoldExplanation(
        model=name,
        fold=fold,
        feature_names=tuple(features),
        rows=len(x),
        importance=importance_rows(values, name, fold, list(features)),
        sample_rows=keep,
        sample_values=values,
        sample_data=rows,
    )
