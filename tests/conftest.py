"""Shared fixtures; every test runs away from ~/airflow and the project's own data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from helpers import write_config

# Airflow reads its home at import; keep every test away from ~/airflow and the project's .airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="quantlab-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")


@pytest.fixture
def ctx(tmp_path: Path):
    """A RunContext over a fresh temporary catalog, ledger and MLflow store."""
    from quantlab.context import RunContext

    return RunContext.load(write_config(tmp_path))
