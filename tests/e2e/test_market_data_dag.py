"""The market_data DAG under `airflow dags test`, on the replay exchange over the shipped sample."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from helpers import airflow_dags_test, write_config
from ingest.support import source_klines, stored

LOGICAL_DATE = "2024-06-01T01:00:00+00:00"
END = datetime(2024, 6, 1, 1, tzinfo=UTC)  # the run's data interval is [END - 1 h, END)
# ETHUSDT's candles were stored up to six hours before END, then the scheduler was down.
OUTAGE = END - timedelta(hours=6)
MARKETS = {
    "schedule": "0 * * * *",
    "markets": {
        "spot": {"intervals": ["1h"], "symbols": ["BTCUSDT", "ETHUSDT"]},
        # No futures klines at this date in the sample; BTCUSDT's funding is recorded.
        "futures_um": {"intervals": ["1m"], "symbols": [], "funding_rates": ["BTCUSDT"]},
    },
}


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("market_data")
    config = write_config(tmp)
    markets = tmp / "markets.yaml"
    markets.write_text(yaml.safe_dump(MARKETS))
    from quantlab import ingest
    from quantlab.context import RunContext

    before = ingest.run_symbol(
        RunContext.load(config), "spot", "ETHUSDT", "1h", OUTAGE - timedelta(days=1), OUTAGE
    )
    assert before.rows_added == 24
    result = airflow_dags_test(
        tmp / "airflow",
        "market_data",
        LOGICAL_DATE,
        env={"QUANTLAB_CONFIG": str(config), "QUANTLAB_MARKETS": str(markets)},
        timeout=300,
    )
    with sqlite3.connect(tmp / "airflow" / "airflow.db") as db:
        states = db.execute(
            "SELECT task_id, map_index, rendered_map_index, state FROM task_instance"
        ).fetchall()
        events = db.execute(
            "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id"
        ).fetchall()
        interval = db.execute(
            "SELECT data_interval_start, data_interval_end FROM dag_run"
        ).fetchone()
    return config, result, states, events, interval


def test_every_task_succeeds_with_one_mapped_task_per_symbol(dag_run):
    _, result, states, _, _ = dag_run
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    by_task = {(t, m): (label, state) for t, m, label, state in states}
    assert by_task[("klines", 0)] == ("spot BTCUSDT", "success")
    assert by_task[("klines", 1)] == ("spot ETHUSDT", "success")
    assert by_task[("funding_rates", 0)] == ("BTCUSDT", "success")
    assert {by_task[("exchange_info", i)][0] for i in (0, 1)} == {"spot", "futures_um"}
    assert all(state == "success" for _, _, _, state in states), states


def test_the_run_ingested_its_interval_and_caught_up_the_outage(dag_run):
    from quantlab import ingest
    from quantlab.context import RunContext

    config, _, _, _, interval = dag_run
    ctx = RunContext.load(config)
    # A manual run of an hourly data-interval timetable covers the hour before its date.
    start, end = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in interval)
    assert (start, end) == (
        datetime(2024, 6, 1, 0, tzinfo=UTC),
        datetime(2024, 6, 1, 1, tzinfo=UTC),
    )
    # BTCUSDT had nothing stored: only its interval. ETHUSDT resumed from its last candle:
    # the six hours up to END are stored, after the day stored before the outage.
    expected = pl.concat(
        [
            source_klines("spot", "BTCUSDT", "1h").filter(pl.col("open_time") == start),
            source_klines("spot", "ETHUSDT", "1h").filter(
                pl.col("open_time").is_between(OUTAGE - timedelta(days=1), END, closed="left")
            ),
        ]
    )
    table = stored(ctx.catalog)
    assert_frame_equal(table, expected)
    funding = ctx.catalog.load("funding_rates")
    assert funding.height == 1 and funding["funding_time"].is_between(start, end, "left").all()
    assert ctx.catalog.load("exchange_info").height == 9 + 347
    assert ctx.catalog.lineage(ctx.catalog.latest("klines_checks")).extra["passed"] is True
    # A cleared task runs the same interval again: the same rows.
    again = ingest.run_symbol(ctx, "spot", "BTCUSDT", "1h", start, end)
    assert again.rows_added == 0
    assert_frame_equal(stored(ctx.catalog), table)


def test_the_klines_asset_was_updated_with_the_validated_version(dag_run):
    _, _, _, events, _ = dag_run
    assert [uri for uri, _ in events] == ["quantlab://datasets/klines"]
    assert '"klines_checks"' in events[0][1]
