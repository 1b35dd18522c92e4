"""Shared fixtures; every test runs away from ~/airflow and the project's own data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl
import pytest

from helpers import load_sample_klines, write_config

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


@pytest.fixture(scope="session")
def real_klines() -> pl.DataFrame:
    """BTC, ETH and SOL spot 1h from the shipped sample, 2023-01-01 to 2024-12-31, one after the other."""
    months = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))
    return pl.concat([load_sample_klines(s, months) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")])
