"""MLflow wiring: one place that points MLflow at the configured tracking store."""

from __future__ import annotations

from pathlib import Path

from quantlab.config import TrackingConfig


def start_experiment(cfg: TrackingConfig, name: str) -> str:
    """Point MLflow at `cfg.uri` and return the id of experiment `name`, creating it if needed."""
    import mlflow

    mlflow.set_tracking_uri(cfg.uri)
    if cfg.uri.startswith("sqlite:///"):
        Path(cfg.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # With a local store the artifacts go to the configured folder; a tracking
    # server decides its own artifact location.
    location = None
    if "://" not in cfg.artifacts:
        folder = Path(cfg.artifacts) / name
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
    return mlflow.create_experiment(name, artifact_location=location)
