"""The research DAG is the stage graph of `quantlab.pipeline`: same tasks, same dependencies."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def research():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["research"]


def test_the_dag_s_tasks_and_dependencies_are_the_graph_s(research):
    from quantlab.pipeline import RESEARCH

    assert list(research.task_ids) == [stage.name for stage in RESEARCH]
    for stage in RESEARCH:
        task = research.get_task(stage.name)
        assert task.upstream_task_ids == set(stage.upstream), stage.name
        # A gate's failure is final; every other stage is retried on a transient error.
        assert (task.retries == 0) == stage.gate, stage.name


def test_the_graph_is_ordered_and_names_real_stages():
    from quantlab.pipeline import RESEARCH, STAGES

    seen: set[str] = set()
    for stage in RESEARCH:
        assert set(stage.upstream) <= seen, f"{stage.name} needs a stage that comes after it"
        seen.add(stage.name)
        assert callable(stage.resolve()), stage.call
    outputs = [stage.output for stage in RESEARCH]
    assert len(set(outputs)) == len(outputs) == len(STAGES)


@pytest.mark.parametrize(
    "task_id",
    ["ingest", "validate", "features", "labels", "train", "backtest", "risk", "paper"],
)
def test_every_research_task_fails_for_good_on_bad_data_and_retries_a_hiccup(
    research, task_id, monkeypatch, tmp_path
):
    """Not only the gate: a stage that meets failed data (or a ban) must not be retried."""
    import importlib

    from airflow.sdk.exceptions import AirflowFailException

    from helpers import write_config
    from quantlab.errors import QualityError, TemporaryExchangeError
    from quantlab.pipeline import STAGES

    monkeypatch.setenv("QUANTLAB_CONFIG", str(write_config(tmp_path)))
    stage = STAGES[task_id]
    module, _, attr = stage.call.partition(":")
    task = research.get_task(task_id)
    inputs = [{"name": "x", "version": 0}] * len(stage.inputs)

    def raising(exc):
        def run(*args, **kwargs):
            raise exc

        return run

    monkeypatch.setattr(importlib.import_module(module), attr, raising(QualityError("bad rows")))
    with pytest.raises(AirflowFailException, match="bad rows"):
        task.python_callable(*inputs)
    hiccup = TemporaryExchangeError("503 from the exchange")
    monkeypatch.setattr(importlib.import_module(module), attr, raising(hiccup))
    with pytest.raises(TemporaryExchangeError):
        task.python_callable(*inputs)
