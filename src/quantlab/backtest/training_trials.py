"""The trials a training run tried, read back through MLflow: the I/O side of `backtest.trials`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from quantlab.backtest.trials import TrialSet, trials_from_frame
from quantlab.errors import DataError


def trials_from_training(
    extra: Any,
    tracking_uri: str,
    *,
    periods_per_year: int,
    dst_path: str | Path | None = None,
) -> TrialSet:
    """The TrialSet of the training run a `predictions` version records in its lineage.

    `extra`: that version's lineage extra, a `catalog.datasets.TrainingRun` or its dict
    (`trials_artifact` = `runs:/<run id>/optuna/trials.csv`, `trials` = the trials run).
    The artifact is read with MLflow's client from `tracking_uri` (config `tracking.uri`).
    A run without tuning (no artifact and no trials) gives an empty TrialSet; a count of
    trials without their table gives that many unscored trials.
    """
    record = extra.model_dump() if hasattr(extra, "model_dump") else dict(extra or {})
    if record.get("trial_sharpes") is not None:  # kept in the lineage: no MLflow round trip
        return TrialSet().extend(
            "optuna", record["trial_sharpes"], periods_per_year=periods_per_year
        )
    artifact = record.get("trials_artifact")
    if not artifact:
        return TrialSet().extend("optuna", [None] * int(record.get("trials") or 0))
    import mlflow

    try:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=artifact,
            tracking_uri=tracking_uri,
            dst_path=None if dst_path is None else str(dst_path),
        )
    except mlflow.exceptions.MlflowException as exc:
        raise DataError(
            f"cannot read the training trials {artifact} from {tracking_uri}: {exc}; check "
            "tracking.uri points at the store the train stage logged to"
        ) from exc
    return trials_from_frame(pl.read_csv(path, infer_schema_length=None), periods_per_year)
