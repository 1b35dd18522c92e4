"""Where runs go and what a logged model declares: the experiment on the configured store, the pinned environment."""

from __future__ import annotations

import platform
from importlib.metadata import version
from pathlib import Path

from quantlab.config import TrackingConfig

# What a logged LightGBM Booster needs to be loaded and to predict through MLflow's pyfunc.
MODEL_PACKAGES = ("mlflow", "lightgbm", "numpy", "scipy", "pandas")


def start_experiment(cfg: TrackingConfig, name: str) -> str:
    """Point MLflow at `cfg.uri` and return the id of experiment `name`, creating it if needed."""
    import re

    import mlflow

    mlflow.set_tracking_uri(cfg.uri)
    if cfg.uri.startswith("sqlite:///"):
        Path(cfg.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # With a local store the artifacts go to the configured folder. A tracking server
    # decides its own location (it serves them: mlflow-artifacts:/), and an artifacts value
    # that is a URI (s3://bucket/x, mlflow-artifacts:/) is a location already.
    location = None
    # A scheme of two or more letters, so a C:\ path is not a URI.
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", cfg.artifacts):
        if not cfg.artifacts.startswith("mlflow-artifacts:"):
            location = f"{cfg.artifacts.rstrip('/')}/{name}"
    elif not cfg.uri.startswith(("http://", "https://")):
        folder = Path(cfg.artifacts) / name
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def model_environment(packages: tuple[str, ...] = MODEL_PACKAGES) -> dict:
    """The environment a logged model declares: `packages` pinned to the installed versions.

    Given outright, MLflow neither infers it (`uv export`, which wants uv on PATH, then a
    subprocess that loads the model) nor looks up pip's version (a uv venv has no pip), and
    warns about neither; the pins are the ones that trained the model.
    """
    pins = [f"{name}=={version(name)}" for name in packages]
    return {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={platform.python_version()}", "pip", {"pip": pins}],
    }
