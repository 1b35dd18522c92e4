"""A banned exchange fails a DAG task for good, naming the ban's end; Airflow does not retry it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from quantlab.exchange import ban_file
from quantlab.exchange._bans import BanBook

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
EXCHANGE = "http://127.0.0.1:9"  # nothing listens there: a request would fail, not pass


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture
def banned(tmp_path, monkeypatch) -> str:
    """A config whose data folder records a ban on its exchange, by an earlier process."""
    data = tmp_path / "data"
    config = tmp_path / "c.yaml"
    config.write_text(
        f"extends: {ROOT / 'configs' / 'default.yaml'}\n"
        f"paths:\n  data: {data}\n"
        f"exchange:\n  source: binance\n  base_url: {EXCHANGE}\n"
    )
    monkeypatch.setenv("QUANTLAB_CONFIG", str(config))
    until = (int(time.time()) // 60 + 90) * 60  # a whole minute, an hour and a half from now
    BanBook(ban_file(data)).record(EXCHANGE, until, "HTTP 418 on GET /api/v3/klines")
    return f"{datetime.fromtimestamp(until, UTC):%Y-%m-%d %H:%M:%S} UTC"


def test_research_ingest_fails_without_retry_naming_the_ban_s_end(dagbag, banned):
    from airflow.sdk.exceptions import AirflowFailException

    task = dagbag.dags["research"].get_task("ingest")
    with pytest.raises(AirflowFailException, match=f"banned this IP until {banned}"):
        task.python_callable()


def test_market_data_tasks_fail_without_retry_naming_the_ban_s_end(dagbag, banned, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    dag = dagbag.dags["market_data"]
    module = dag.get_task("exchange_info").python_callable.__globals__
    start = datetime(2024, 1, 1, tzinfo=UTC)
    context = {"data_interval_start": start, "data_interval_end": start.replace(hour=1)}
    monkeypatch.setitem(module, "get_current_context", lambda: context)
    calls = {
        "exchange_info": ("spot",),
        "klines": ({"market": "spot", "symbol": "BTCUSDT", "intervals": ["1h"]},),
        "funding_rates": ("BTCUSDT",),
    }
    for task_id, args in calls.items():
        with pytest.raises(AirflowFailException, match=f"until {banned}"):
            dag.get_task(task_id).python_callable(*args)
