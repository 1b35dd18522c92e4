"""DAG integrity: every DAG imports cleanly, has tags and retries, and parsing touches no DB or network."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "research" in dagbag.dags


def test_every_dag_has_tags_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for t in dag.tasks:
            if t.task_id in ("validate", "validate_funding", "validate_exchange_info"):
                continue  # a data-quality failure must not be retried
            assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"


def test_paper_trading_follows_the_market_data_asset(dagbag):
    dag = dagbag.dags["paper_trading"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assets = dag.timetable.asset_condition.objects
    assert [a.uri for a in assets] == ["quantlab://datasets/klines"]
    chain = ["bars", "features", "score_live", "signals", "paper"]
    assert sorted(dag.task_ids) == sorted(chain)
    for upstream, downstream in itertools.pairwise(chain):
        assert upstream in dag.get_task(downstream).upstream_task_ids, (upstream, downstream)


def test_validate_fails_without_retry(dagbag):
    assert dagbag.dags["research"].get_task("validate").retries == 0


def test_research_runs_the_stages_in_order(dagbag):
    dag = dagbag.dags["research"]
    order = ["ingest", "validate", "features", "labels", "train", "risk", "backtest", "promote"]
    side = ["funding", "validate_funding", "exchange_info", "validate_exchange_info", "paper"]
    lifecycle = ["regime"]
    assert sorted(dag.task_ids) == sorted([*order, *side, *lifecycle])
    # The regime models train after the main model, never beside it; the gate judges both.
    assert {"features", "labels", "train"} <= dag.get_task("regime").upstream_task_ids
    assert {"train", "regime"} <= dag.get_task("promote").upstream_task_ids
    for upstream, downstream in itertools.pairwise(order):
        assert upstream in dag.get_task(downstream).upstream_task_ids, (upstream, downstream)
    # The backtest trades the sized targets, rounded to the gated exchange filters; paper
    # trades the same targets.
    assert {"validate_exchange_info", "validate_funding"} <= dag.get_task(
        "backtest"
    ).upstream_task_ids
    assert dag.get_task("validate_exchange_info").upstream_task_ids == {"exchange_info"}
    # Paper trades the same targets, with the same filters, once the gate has spoken.
    assert {"risk", "train", "validate_exchange_info", "promote"} <= dag.get_task(
        "paper"
    ).upstream_task_ids
    # The gate judges the training against its champion with the backtest's deflated Sharpe.
    assert {"train", "labels", "backtest"} <= dag.get_task("promote").upstream_task_ids
    # Funding (perpetuals) reaches features only through its own gate.
    assert dag.get_task("validate_funding").upstream_task_ids == {"funding"}
    assert {"validate", "validate_funding"} <= dag.get_task("features").upstream_task_ids
    assert dag.get_task("validate_funding").retries == 0


_PROBE = """
import json, sys, importlib.util
events = []
def hook(event, args):
    if event in ("socket.connect", "sqlite3.connect", "socket.getaddrinfo"):
        events.append(event)
spec = importlib.util.spec_from_file_location("dagfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.addaudithook(hook)
spec.loader.exec_module(module)
# The DAGs read the stage graph, the error tree and quantlab's config loader (pydantic and
# YAML, as light as Airflow's own) at parse time; nothing else of quantlab.
light = {"quantlab", "quantlab.config", "quantlab.config.data", "quantlab.config.paper", "quantlab.config.research", "quantlab.config.portfolio", "quantlab.config.lifecycle", "quantlab.config.monitoring", "quantlab.config.model", "quantlab.config.loader", "quantlab.markets", "quantlab.vocab", "quantlab.errors", "quantlab.secrets", "quantlab.pipeline"}
heavy = [m for m in ("polars", "lightgbm", "mlflow", "great_expectations", "vectorbt") if m in sys.modules]
heavy += sorted(m for m in sys.modules if m.split(".")[0] == "quantlab" and m not in light)
print(json.dumps({"events": events, "heavy": heavy}))
"""


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_parsing_does_no_db_or_network_work_and_no_heavy_imports(dag_file, tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env["PYTHONPATH"] = str(DAGS)  # as the DAG processor does: the helper module beside them
    # Warm Airflow's own import once, so only the DAG file's work is probed.
    out = subprocess.run(
        [sys.executable, "-c", "import airflow.sdk\n" + _PROBE, str(DAGS / dag_file)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["events"] == [], f"{dag_file} touched a DB or the network at parse time"
    assert result["heavy"] == [], f"{dag_file} imports {result['heavy']} at parse time"


@pytest.mark.parametrize("dag_file", ["research.py", "market_data.py"])
def test_tasks_register_airflows_log_masker_before_reading_config(dag_file, tmp_path, monkeypatch):
    """A secret a task's config expands (here the ledger password) is redacted in task logs."""
    import importlib.util

    from airflow.sdk.log import redact

    from quantlab import secrets

    monkeypatch.setattr(secrets, "_maskers", [])
    password = f"ledger-pw-{tmp_path.name}-0123456789"
    config = tmp_path / "c.yaml"
    config.write_text(
        f"extends: {ROOT / 'configs' / 'default.yaml'}\n"
        "paper:\n  ledger_url: postgresql://q:${QL_TEST_DB_PASSWORD}@127.0.0.1:5432/q\n"
    )
    monkeypatch.setenv("QL_TEST_DB_PASSWORD", password)
    monkeypatch.setenv("QUANTLAB_CONFIG", str(config))
    spec = importlib.util.spec_from_file_location(f"_dag_{dag_file[:-3]}", DAGS / dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    # A fresh value: unknown to the masker until the task loads its config.
    assert redact(f"connecting with {password}") == f"connecting with {password}"
    ctx = module.ctx()  # the DAG helper's, which every task calls
    assert password in ctx.config.paper.ledger_url
    assert redact(f"connecting with {password}") == "connecting with ***"
