"""The monitoring DAG under `airflow dags test` after a `make run`: it writes its datasets,
MLflow metrics and status page, and a planted stale series and a planted drifting feature
each reach the local webhook exactly once over two runs."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timedelta

import polars as pl
import pytest

from helpers import WebhookReceiver, airflow_dags_test, write_default_config

pytestmark = pytest.mark.slow

FIRST, SECOND = "2025-01-01T00:00:00+00:00", "2025-01-01T01:00:00+00:00"
STALE = "spot:ETHUSDT:1h"
DRIFTED = "rsi_14"


def plant(config) -> None:
    """ETHUSDT's last 10 hours gone from the klines, and rsi_14 shifted by 40 points over
    the drift window (the features' last `monitoring.drift.recent_days`)."""
    from quantlab.context import RunContext

    ctx = RunContext.load(config)
    catalog, days = ctx.catalog, ctx.config.monitoring.drift.recent_days
    klines = catalog.read(catalog.latest("klines"))
    end = klines["open_time"].max()
    cut = (pl.col("symbol") == "ETHUSDT") & (pl.col("open_time") > end - timedelta(hours=10))
    catalog.write("klines", klines.filter(~cut), stage="ingest", config_hash="planted-stale")
    features = catalog.read(catalog.latest("features"))
    recent = pl.col("open_time") > features["open_time"].max() - timedelta(days=days)
    shifted = features.filter(recent).with_columns(pl.col(DRIFTED) + 40.0)
    catalog.upsert("features", shifted, stage="features", config_hash="planted-drift")


@pytest.fixture(scope="module")
def monitored(made_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("monitoring")
    # A copy of the made run, so the notebooks' catalog stays as `make run` left it.
    shutil.copytree(made_run.config.parent, tmp / "run", ignore=shutil.ignore_patterns("airflow"))
    config = write_default_config(tmp / "run")
    plant(config)
    home = tmp / "airflow"
    with WebhookReceiver() as hook:
        env = {"QUANTLAB_CONFIG": str(config), "QUANTLAB_ALERT_WEBHOOK_URL": hook.url}
        runs = [airflow_dags_test(home, "monitoring", at, env=env) for at in (FIRST, SECOND)]
    return config, home, runs, hook


def test_both_runs_succeed_and_write_every_dataset(monitored):
    from quantlab.context import RunContext

    config, home, runs, _ = monitored
    for result in runs:
        assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    with sqlite3.connect(home / "airflow.db") as db:
        states = db.execute("SELECT task_id, state FROM task_instance").fetchall()
    assert {s for _, s in states} == {"success"}, states
    catalog = RunContext.load(config).catalog
    for name in ("freshness", "gate", "drift", "accuracy", "paper", "alerts"):
        assert catalog.exists(f"monitor_{name}"), name
    fresh = catalog.read(catalog.latest("monitor_freshness"))
    assert fresh["as_of"].n_unique() == 2  # one row per series and run: the history stays
    eth = fresh.filter(pl.col("subject") == STALE)
    assert eth["level"].to_list() == ["alert", "alert"] and eth["value"].to_list() == [10.0, 10.0]
    assert set(fresh.filter(pl.col("subject") != STALE)["level"]) == {"ok"}


def test_each_planted_condition_alerts_exactly_once(monitored):
    from quantlab.context import RunContext

    config, _, runs, hook = monitored
    assert hook.posts_naming(STALE) == 1
    assert hook.posts_naming(f"/{DRIFTED}") == 1
    assert set(hook.paths) == {"/services/T0/B0/SECRET-TOKEN"}
    for result in runs:  # the secret part of the URL is never in a log
        assert "SECRET-TOKEN" not in result.stdout + result.stderr
    catalog = RunContext.load(config).catalog
    alerts = catalog.read(catalog.latest("monitor_alerts"))
    fired = alerts.filter(pl.col("status") == "fired")
    assert fired.filter(pl.col("sent_at").is_null()).is_empty()
    assert set(fired["channel"]) == {"webhook"}
    first = datetime.fromisoformat(FIRST)
    assert set(fired["at"].dt.replace_time_zone(None).cast(pl.Datetime("ms"))) == {
        first.replace(tzinfo=None)
    }
    drift = catalog.read(catalog.latest("monitor_drift"))
    top = drift.filter(pl.col("rank") == 1)
    assert set(top["feature"]) == {DRIFTED} and (top["level"] == "alert").all()


def test_the_status_page_and_mlflow_metrics(monitored):
    import mlflow

    from quantlab.context import RunContext
    from quantlab.monitoring.stage import status_path

    config, _, _, _ = monitored
    ctx = RunContext.load(config)
    page = status_path(ctx).read_text()
    assert STALE in page and DRIFTED in page and "<svg" in page
    client = mlflow.MlflowClient(ctx.config.tracking.uri)
    experiment = client.get_experiment_by_name(ctx.config.monitoring.experiment)
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, f"freshness/{STALE}")
    stamps = sorted(m.timestamp for m in history)
    assert [m.value for m in history] == [10.0, 10.0]
    assert stamps == [int(datetime.fromisoformat(t).timestamp() * 1000) for t in (FIRST, SECOND)]
    fired = {
        m.timestamp: m.value for m in client.get_metric_history(run.info.run_id, "alerts/fired")
    }
    # The first run fires the planted two (and any natural drift); the second, nothing new.
    assert fired[stamps[0]] >= 2 and fired[stamps[1]] == 0
