"""quantlab.tracking: where a new experiment's artifacts go, for local stores and servers."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from quantlab.config import TrackingConfig
from quantlab.tracking import start_experiment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def created(monkeypatch):
    """The artifact_location each new experiment is created with; no store is touched."""
    locations: list[str | None] = []
    monkeypatch.setattr(mlflow, "set_tracking_uri", lambda uri: None)
    monkeypatch.setattr(mlflow, "get_experiment_by_name", lambda name: None)
    monkeypatch.setattr(
        mlflow,
        "create_experiment",
        lambda name, artifact_location=None: locations.append(artifact_location) or "1",
    )
    return locations


def test_a_local_store_gets_the_configured_folder(tmp_path, created):
    cfg = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifacts=str(tmp_path / "a"))
    assert start_experiment(cfg, "research") == "1"
    assert created == [(tmp_path / "a" / "research").as_uri()]
    assert (tmp_path / "a" / "research").is_dir()


@pytest.mark.parametrize(
    ("artifacts", "location"),
    [
        ("mlflow-artifacts:/", None),  # the server stores and serves them
        ("s3://bucket/runs/", "s3://bucket/runs/research"),
    ],
)
def test_a_uri_is_a_location_not_a_folder(tmp_path, created, artifacts, location):
    start_experiment(TrackingConfig(uri="http://127.0.0.1:5000", artifacts=artifacts), "research")
    assert created == [location]
    assert list(tmp_path.iterdir()) == []


def test_a_tracking_server_decides_for_a_local_path(tmp_path, created):
    cfg = TrackingConfig(uri="http://mlflow:5000", artifacts=str(tmp_path / "mlflow-artifacts:"))
    start_experiment(cfg, "research")
    assert created == [None]
    assert not (tmp_path / "mlflow-artifacts:").exists()


def _booster():
    import lightgbm as lgb
    import numpy as np

    x = np.arange(40, dtype=float).reshape(20, 2)
    y = (x[:, 0] > 20).astype(float)
    return lgb.train({"verbose": -1}, lgb.Dataset(x, label=y), num_boost_round=2)


def test_a_model_saved_with_its_environment_pins_it_and_warns_nothing(tmp_path, monkeypatch, capfd):
    """With `model_environment()` MLflow infers nothing: no uv, no pip lookup, no warning."""
    from importlib.metadata import version

    import mlflow.lightgbm

    from quantlab.tracking import model_environment

    monkeypatch.chdir(ROOT)  # a uv project, where MLflow would try `uv export`
    capfd.readouterr()
    mlflow.lightgbm.save_model(_booster(), tmp_path / "model", conda_env=model_environment())
    err = capfd.readouterr().err
    assert "WARNING" not in err, err
    requirements = (tmp_path / "model" / "requirements.txt").read_text().split()
    assert f"lightgbm=={version('lightgbm')}" in requirements
    assert f"mlflow=={version('mlflow')}" in requirements
