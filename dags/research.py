"""The research DAG: ingest → validate → features → labels → train → backtest → risk → paper.

One task per stage of `quantlab.pipeline.RESEARCH`, the graph `quantlab run` also walks: a
task's id is the stage's name and its upstream tasks are the stages whose outputs it takes.
For a USD-M perpetuals universe, `funding` → `validate_funding` also feed `features` its
funding features; for spot both return `{}` (an empty XCom, which Airflow stores, where None
would be none and log a lookup error) and `features` runs on the klines alone.

Each task passes dataset references (name and version), never data. Bad data, a bad config
or an exchange ban fails the run without retry; exchange hiccups are retried (`_quantlab`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from _quantlab import ctx, fail_fast, ref
from quantlab.pipeline import RESEARCH, Stage

DEFAULT_ARGS = {
    "owner": "quantlab",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
}


def stage_task(stage: Stage):
    """A task that runs `stage` on the versions its upstream tasks returned."""
    gate = {"retries": 0} if stage.gate else {}  # a failed gate: a rerun reads the same data

    @task(task_id=stage.name, doc_md=f"`{stage.call}` → `{stage.output}`", **gate)
    def run_stage(*inputs: dict) -> dict:
        from quantlab.pipeline import run_stage

        with fail_fast():
            out = run_stage(ctx(), stage, [ref(data) for data in inputs])
        return out.to_dict() if out is not None else {}

    return run_stage


@dag(
    dag_id="research",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["quantlab", "research"],
    doc_md=__doc__,
)
def research():
    tasks = {}
    for stage in RESEARCH:
        inputs = [tasks[name.rstrip("?")] for name in stage.inputs]
        tasks[stage.name] = stage_task(stage)(*inputs)
        for name in stage.after:  # order only: one exchange client, one heavy stage at a time
            tasks[name] >> tasks[stage.name]


research()
