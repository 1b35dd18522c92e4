"""A booster's prediction as the columns quantlab stores and the score it trades.

The one copy of the score rule (`quantlab.train.targets` documents it per target, training
and serving both call it). It imports numpy only, so serving can score without importing
the `quantlab.train` package (and with it LightGBM, XGBoost and Optuna).

- binary: 2·P(up) − 1;
- multiclass (down, flat, up): P(up) − P(down);
- regression: the predicted return over the fitted target's sd, clipped to [−1, 1].
"""

from __future__ import annotations

import numpy as np


def score_of(task: str, pred: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The score in [−1, 1] of a booster's prediction for `task` (binary, multiclass,
    regression)."""
    if task == "binary":
        return 2.0 * pred - 1.0
    if task == "multiclass":
        return pred[:, 2] - pred[:, 0]
    return np.clip(pred / scale, -1.0, 1.0)


def prediction_columns(task: str, pred: np.ndarray) -> dict[str, np.ndarray | None]:
    """The `predictions` columns a prediction fills; the others stay null."""
    if task == "binary":
        return {"prob_up": pred}
    if task == "multiclass":
        return {"prob_down": pred[:, 0], "prob_flat": pred[:, 1], "prob_up": pred[:, 2]}
    return {"pred_ret": pred}
