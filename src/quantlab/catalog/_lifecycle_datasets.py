"""The model lifecycle's datasets (quantlab.lifecycle, quantlab.regime): the registry's
decisions, regime probabilities, the incremental updates' held-out scores, the champion's
live predictions and accuracy, and each retrain trigger."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from quantlab.schema import UTC_MS
from quantlab.vocab import REGIMES

if TYPE_CHECKING:
    from quantlab.catalog.datasets import Dataset


def lifecycle_datasets(Dataset: type[Dataset], bar: dict[str, pl.DataType]) -> list[Dataset]:
    """Built by `datasets.py` with its `Dataset` class and bar key columns (it imports this
    module, not the reverse)."""
    return [
        Dataset(  # every gate decision, promotion, override and rollback, as MLflow's tags say
            "model_decisions",
            {
                "model": pl.String(),  # the registered model's name
                "version": pl.Int32(),
                "decision": pl.String(),  # first | promoted | kept | override | rollback
                "by": pl.String(),  # gate | a person (override, rollback)
                "reason": pl.String(),
                "metric": pl.String(),
                "challenger_value": pl.Float64(),
                "champion_value": pl.Float64(),
                "champion_version": pl.Int32(),  # the champion before the decision
                "common_rows": pl.Int64(),
                "dsr": pl.Float64(),
                "shap_stability": pl.Float64(),
                "decided_at": UTC_MS,
                "details": pl.String(),  # JSON: every check, its value, floor and verdict
            },
            "lifecycle",
            ("model", "version", "decided_at"),
        ),
        Dataset(  # out-of-fold (fold >= 0) and newest-bar (fold -1) regime probabilities
            "regime_predictions",
            {
                **bar,
                "model": pl.String(),  # the registered model, <register_as>-<SYMBOL>
                "fold": pl.Int32(),
                **{f"p_{name}": pl.Float64() for name in REGIMES},
                "regime": pl.Int8(),  # the most probable state's code (REGIMES order)
                "confidence": pl.Float64(),  # its probability
            },
            "regime",
            ("symbol", "open_time"),
        ),
        Dataset(  # an incremental update's and the champion's scores on the held-out bars
            "holdout_predictions",
            {
                **bar,
                "model": pl.String(),  # registered model name
                "version": pl.Int32(),  # its version (the update's, or the champion's)
                **dict.fromkeys(("prob_up", "prob_down", "prob_flat", "pred_ret"), pl.Float64()),
                "score": pl.Float64(),  # main models; null for a regime model
                **{f"p_{name}": pl.Float64() for name in REGIMES},  # regime models; else null
            },
            "retrain",
            ("symbol", "open_time", "model", "version"),
        ),
        Dataset(  # the champion's scores of bars newer than anything it was trained on
            "live_predictions",
            {
                **bar,
                "model": pl.String(),
                "version": pl.Int32(),
                **dict.fromkeys(("prob_up", "prob_down", "prob_flat", "pred_ret"), pl.Float64()),
                "score": pl.Float64(),  # main models; null for a regime model
                **{f"p_{name}": pl.Float64() for name in REGIMES},  # regime models; else null
                "scored_at": UTC_MS,
            },
            "live",
            ("symbol", "open_time", "model", "version"),
        ),
        Dataset(  # the champion's accuracy over the last N days of resolved labels
            "live_accuracy",
            {
                "model": pl.String(),
                "version": pl.Int32(),
                "window_days": pl.Int32(),
                "symbol": pl.String(),  # ALL: every symbol together
                "rows": pl.Int64(),
                "accuracy": pl.Float64(),
                "metric": pl.String(),  # the gate's metric
                "value": pl.Float64(),
                "source": pl.String(),  # live: post-training scores | oos: out-of-fold ones
                "start": UTC_MS,
                "end": UTC_MS,
                "as_of": UTC_MS,
            },
            "live",
            ("model", "window_days", "symbol"),
        ),
        Dataset(  # each trigger decision: retrain full, incremental or not, and why
            "retrain_triggers",
            {
                "decided_at": UTC_MS,
                "model": pl.String(),
                "action": pl.String(),  # full | incremental | none
                "reason": pl.String(),
                "details": pl.String(),  # JSON: the numbers behind it
            },
            "live",
            ("model", "decided_at"),
        ),
    ]
