"""The model_monitor and health DAGs: they parse, take their schedule from config, and wire
score_live -> accuracy -> decide -> route -> (retrain_full | retrain_incremental | no_retrain) -> health."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from helpers import ROOT, write_config

DAGS = ROOT / "dags"


def load(dag_file: str, monkeypatch, tmp_path: Path, **lifecycle):
    monkeypatch.setenv("QUANTLAB_CONFIG", str(write_config(tmp_path, lifecycle=lifecycle)))
    spec = importlib.util.spec_from_file_location(f"_dag_{dag_file[:-3]}", DAGS / dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def monitor(monkeypatch, tmp_path):
    return load(
        "model_monitor.py",
        monkeypatch,
        tmp_path,
        schedules={"monitor": "15 */2 * * *", "timezone": "Europe/London"},
    )


def test_dagbag_parses_both_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not {k: v for k, v in bag.import_errors.items() if "monitor" in k or "health" in k}
    assert {"model_monitor", "health"} <= set(bag.dags)


def test_schedule_comes_from_config(monitor, monkeypatch, tmp_path):
    from airflow.sdk import CronTriggerTimetable

    from _quantlab import lifecycle_timetable

    timetable = lifecycle_timetable("monitor")  # what the DAG file passes as its schedule
    assert isinstance(timetable, CronTriggerTimetable)
    assert timetable.expression == "15 */2 * * *"
    assert str(timetable.timezone) == "Europe/London"
    (tmp_path / "off").mkdir()
    load("model_monitor.py", monkeypatch, tmp_path / "off", schedules={"monitor": None})
    assert lifecycle_timetable("monitor") is None


def test_graph(monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(
        "QUANTLAB_CONFIG",
        str(write_config(tmp_path, lifecycle={"schedules": {"monitor": "45 * * * *"}})),
    )
    bag = DagBag(dag_folder=str(DAGS / "model_monitor.py"))
    dag = bag.dags["model_monitor"]
    assert dag.timetable.expression == "45 * * * *"
    up = {t.task_id: t.upstream_task_ids for t in dag.tasks}
    assert up["score_live"] == set()
    assert up["accuracy"] == {"score_live"}
    assert up["decide"] == {"score_live", "accuracy"}
    assert up["route"] == {"decide"}
    assert up["retrain_full"] == up["retrain_incremental"] == {"route"}
    assert up["no_retrain"] == {"route", "decide"}
    assert up["health"] == {"retrain_full", "retrain_incremental", "no_retrain"}
    assert dag.get_task("health").trigger_rule == "all_done"  # health reports whatever happened
    for task_id in ("retrain_full", "retrain_incremental"):
        op = dag.get_task(task_id)
        assert isinstance(op, TriggerDagRunOperator) and op.trigger_dag_id == task_id
    # the branch's targets are the actions `decide` can return
    assert set(bag.dags["model_monitor"].get_task("route").downstream_task_ids) == {
        "retrain_full",
        "retrain_incremental",
        "no_retrain",
    }


def test_routes_cover_every_trigger_action(monitor):
    from quantlab.lifecycle.triggers import RANK

    assert set(monitor.ROUTES) == set(RANK)


def test_health_dag(monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(
        "QUANTLAB_CONFIG",
        str(write_config(tmp_path, lifecycle={"schedules": {"monitor": None}})),
    )
    bag = DagBag(dag_folder=str(DAGS / "health.py"))
    dag = bag.dags["health"]
    assert dag.task_ids == ["health"] and dag.get_task("health").retries == 1
    assert dag.timetable.expression == "0 * * * *"  # no monitor schedule: hourly
