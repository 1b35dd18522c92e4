"""The retrain DAGs: they parse, their schedules come from the config, their tasks are the
retrain graphs' stages, and `retrain_incremental` runs under `airflow dags test`."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest

from helpers import airflow_dags_test, write_config

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def _load(monkeypatch, config: Path):
    monkeypatch.setenv("QUANTLAB_CONFIG", str(config))
    spec = importlib.util.spec_from_file_location("_dag_retrain", DAGS / "retrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_both_dags_parse(dagbag):
    assert dagbag.import_errors == {}
    for dag_id in ("retrain_incremental", "retrain_full"):
        dag = dagbag.dags[dag_id]
        assert dag.max_active_runs == 1 and dag.catchup is False
        assert "retrain" in dag.tags


def test_schedules_and_timezone_come_from_the_config(monkeypatch, tmp_path):
    config = write_config(
        tmp_path,
        lifecycle={
            "schedules": {"timezone": "Europe/London", "incremental": "15 9 * * 1-5", "full": None}
        },
    )
    module = _load(monkeypatch, config)
    assert module.INCREMENTAL.timetable.expression == "15 9 * * 1-5"
    assert str(module.INCREMENTAL.timetable.timezone) in (
        "Europe/London",
        "Timezone('Europe/London')",
    )
    assert module.FULL.timetable is None or type(module.FULL.timetable).__name__ == "NullTimetable"


def test_the_default_schedules_are_the_seed_s(monkeypatch, tmp_path):
    module = _load(monkeypatch, write_config(tmp_path))
    assert module.INCREMENTAL.timetable.expression == "0 8,20 * * *"
    assert module.FULL.timetable.expression == "0 3 * * 0"
    assert "Hong_Kong" in str(module.FULL.timetable.timezone)


@pytest.mark.parametrize("mode", ["incremental", "full"])
def test_the_tasks_are_the_retrain_graph_s_stages(dagbag, mode):
    from quantlab.pipeline import retrain_graph

    dag = dagbag.dags[f"retrain_{mode}"]
    stages = retrain_graph(mode)
    assert list(dag.task_ids) == [s.name for s in stages]
    for stage in stages:
        task = dag.get_task(stage.name)
        assert task.upstream_task_ids == set(stage.upstream), stage.name
        assert (task.retries == 0) == stage.gate, stage.name


def test_research_and_retrain_tasks_share_one_catalog_slot(dagbag):
    from _quantlab import CATALOG_POOL

    for dag_id in ("research", "retrain_incremental", "retrain_full"):
        assert {t.pool for t in dagbag.dags[dag_id].tasks} == {CATALOG_POOL}, dag_id
    full = dagbag.dags["retrain_full"]
    assert {"train", "promote"} <= set(full.task_ids)
    assert dagbag.dags["retrain_incremental"].get_task("incremental").upstream_task_ids == {
        "features",
        "labels",
    }


@pytest.mark.slow
def test_retrain_incremental_runs_under_airflow(tmp_path):
    """A champion trained on Feb-Mar, the catalog extended to April by the DAG's own ingest,
    then its update judged by the gate."""
    from quantlab.context import RunContext
    from quantlab.lifecycle.retrain import run_graph
    from quantlab.pipeline import STAGES
    from quantlab.tracking.registry import Registry

    settings = {
        "train": {"register_as": "quantlab-research"},
        "lifecycle": {
            "incremental": {"holdout_bars": 48, "min_new_bars": 24, "rounds": 10},
            "gate": {"min_common_rows": 50},
            "regime": {"enabled": False},
        },
    }
    first = RunContext.load(write_config(tmp_path, universe={"end": "2023-04-01"}, **settings))
    names = ("ingest", "validate", "funding", "validate_funding", "features", "labels")
    run_graph(first, [STAGES[n] for n in (*names, "train", "promote")])
    champion = Registry(first.config.tracking.uri).champion("quantlab-research")
    assert champion is not None

    config = write_config(tmp_path, universe={"end": "2023-05-01"}, **settings)
    result = airflow_dags_test(
        tmp_path / "airflow", "retrain_incremental", env={"QUANTLAB_CONFIG": str(config)}
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        states = dict(db.execute("SELECT task_id, state FROM task_instance").fetchall())
    assert states == {n: "success" for n in (*names, "incremental")}
    versions = Registry(first.config.tracking.uri).versions("quantlab-research")
    (update,) = [v for v in versions if v.version > champion.version]
    assert update.meta("mode") == "incremental"
    assert update.tags["gate.decision"] in ("promoted", "kept")
