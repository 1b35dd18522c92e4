"""Shared fixtures; every test runs away from ~/airflow and the project's own data.

The sample root, the fixtures tree and the fake clock's class live in helpers.py (modules
import them at load time); the fixtures of more than one folder live here. A folder's own
conftest keeps only what is local to it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from helpers import (
    SAMPLE,
    FakeClock,
    airflow_dags_test,
    load_sample_klines,
    write_config,
    write_default_config,
)

# Airflow reads its home at import; keep every test away from ~/airflow and the project's .airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="quantlab-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def ctx(tmp_path: Path):
    """A RunContext over a fresh temporary catalog, ledger and MLflow store."""
    from quantlab.context import RunContext

    return RunContext.load(write_config(tmp_path))


@dataclass(frozen=True)
class MadeRun:
    """A `make run` in a temporary home: its config, AIRFLOW_HOME and `airflow dags test` result."""

    config: Path
    airflow_home: Path
    result: object


@pytest.fixture(scope="session")
def made_run(tmp_path_factory) -> MadeRun:
    """The research DAG under `airflow dags test` with the shipped default config (what `make
    run` does), every output in a temporary folder: the catalog the notebooks and the
    monitoring DAG are tested against. Built once per session (~1.5 min)."""
    tmp = tmp_path_factory.mktemp("made-run")
    config = write_default_config(tmp)
    home = tmp / "airflow"
    result = airflow_dags_test(home, "research", env={"QUANTLAB_CONFIG": str(config)}, timeout=1200)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return MadeRun(config, home, result)


@pytest.fixture(scope="module")
def replay():
    """The replay exchange over data/sample, one per test module: tests must not change its state."""
    from quantlab.exchange.replay import ReplayServer

    with ReplayServer(SAMPLE) as server:
        yield server


@pytest.fixture
def fake_clock() -> FakeClock:
    """A fake clock 10 s into a weight minute; its `sleep` advances it."""
    return FakeClock(1_000_000 * 60 + 10)


@pytest.fixture(scope="session")
def real_klines() -> pl.DataFrame:
    """BTC, ETH and SOL spot 1h from the shipped sample, 2023-01-01 to 2024-12-31, one after the other."""
    months = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))
    return pl.concat([load_sample_klines(s, months) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")])


def _postgres_database() -> tuple[object, str]:
    """A fresh database on the local PostgreSQL and its admin connection; skips if it is down,
    unless QUANTLAB_REQUIRE_POSTGRES is set."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(PG_ADMIN, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        if os.environ.get("QUANTLAB_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc})")
    admin.autocommit = True
    name = f"quantlab_test_{uuid.uuid4().hex[:8]}"
    admin.cursor().execute(f"CREATE DATABASE {name}")
    return admin, name


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL (127.0.0.1:5432) as a psycopg2 SQLAlchemy URL,
    dropped afterwards, even while a killed process's connection lingers."""
    admin, name = _postgres_database()
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """A catalog with a champion main model and regime models to serve from (tests/serving/support.py)."""
    from serving.support import build_served

    return build_served(tmp_path_factory.mktemp("served"))
