"""The market_data DAG validates the klines version its own tasks returned, never "latest"."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from helpers import load_sample_klines, write_config

DAGS = Path(__file__).resolve().parents[2] / "dags"
AS_OF = datetime(2023, 4, 1, tzinfo=UTC)


@pytest.fixture
def validate_task(tmp_path, monkeypatch):
    """market_data's validate task, in a run whose data interval ends at AS_OF."""
    from quantlab.context import RunContext

    config = write_config(tmp_path)
    monkeypatch.setenv("QUANTLAB_CONFIG", str(config))
    spec = importlib.util.spec_from_file_location("dag_market_data", DAGS / "market_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "_interval", lambda: (AS_OF - timedelta(hours=1), AS_OF))
    return module.market_data().get_task("validate"), RunContext.load(config)


def _store(ctx, df: pl.DataFrame):
    from quantlab.schema import KLINES_KEY, KLINES_PARTITIONS, conform_klines

    return ctx.catalog.upsert(
        "klines", conform_klines(df), KLINES_KEY, stage="ingest", partition_by=KLINES_PARTITIONS
    )


def _result(symbol: str, *refs) -> dict:
    """What one mapped klines task returns: one IngestReport (as a dict) per interval, each
    naming the klines version it left."""
    runs = [
        {"dataset": "klines", "interval": "1h", "ref": r.to_dict() if r else None} for r in refs
    ]
    return {"market": "spot", "symbol": symbol, "runs": runs}


def test_validate_checks_the_newest_version_the_klines_tasks_returned(validate_task):
    task, ctx = validate_task
    btc, eth = (load_sample_klines(s, ("2023-03",)) for s in ("BTCUSDT", "ETHUSDT"))
    first = _store(ctx, btc)  # BTCUSDT's task wrote first ...
    second = _store(ctx, eth)  # ... then ETHUSDT's: this version holds both
    # Written after this run's tasks (another writer): a broken candle the run never saw.
    broken = btc.head(1).with_columns(pl.col("close").alias("high"), (pl.col("close") * 2))
    later = _store(ctx, broken)
    assert ctx.catalog.latest("klines") == later

    out = task.python_callable([_result("BTCUSDT", first), _result("ETHUSDT", second)])

    assert out["klines"] == second.to_dict()
    checks = ctx.catalog.lineage(ctx.catalog.latest("klines_checks"))
    assert checks.inputs == {"klines": second.version} and checks.extra["passed"] is True


def test_validate_refuses_a_run_whose_tasks_returned_no_version(validate_task):
    from quantlab.errors import DatasetNotFound

    task, ctx = validate_task
    _store(ctx, load_sample_klines("BTCUSDT", ("2023-03",)))  # in the catalog, not from this run
    with pytest.raises(DatasetNotFound, match="no klines task of this run"):
        task.python_callable([_result("BTCUSDT", None)])
