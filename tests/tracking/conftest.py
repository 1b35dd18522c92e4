"""One SQLite MLflow store per test module: creating its tables costs seconds."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(client, experiment id) on a fresh SQLite store with local artifacts."""
    import mlflow

    from quantlab.config import TrackingConfig
    from quantlab.tracking import start_experiment

    tmp = tmp_path_factory.mktemp("mlflow")
    cfg = TrackingConfig(uri=f"sqlite:///{tmp / 'mlflow.db'}", artifacts=str(tmp / "artifacts"))
    experiment_id = start_experiment(cfg, "tests")
    return mlflow.MlflowClient(cfg.uri), experiment_id
