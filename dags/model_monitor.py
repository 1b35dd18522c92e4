"""The model_monitor DAG: score the champions' new bars, track their accuracy, decide on a retrain.

    score_live ─> accuracy ─> decide ─> route ─┬─> retrain_full         (triggers that DAG)
                                                ├─> retrain_incremental  (triggers that DAG)
                                                └─> no_retrain
                                                          all three ─> health

`score_live` writes `live_predictions` (each champion on the features rows newer than its
training), `accuracy` writes `live_accuracy` and logs it to MLflow, `decide` writes
`retrain_triggers` (every decision, "none" included, with its reason) and `route` starts the
retrain DAG it asks for. `health` runs last whatever happened before, and fails on any FAIL.
The schedule is `lifecycle.schedules.monitor` in `lifecycle.schedules.timezone` (config read at
parse time: pydantic and YAML only); null: run only when triggered. The logic lives in
`quantlab.lifecycle.{live,accuracy,triggers}` and `quantlab.health`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

from _quantlab import CATALOG_POOL, DEFAULT_ARGS, ctx, fail_fast, lifecycle_timetable, ref

ROUTES = {"full": "retrain_full", "incremental": "retrain_incremental", "none": "no_retrain"}


@dag(
    dag_id="model_monitor",
    schedule=lifecycle_timetable("monitor"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["quantlab", "lifecycle", "monitor"],
    doc_md=__doc__,
)
def model_monitor():
    @task(pool=CATALOG_POOL)  # writes the catalog: one stage at a time with the others
    def score_live() -> dict:
        from quantlab.lifecycle import live

        with fail_fast():
            out = live.run_latest(ctx())
        return out.to_dict() if out is not None else {}

    @task(pool=CATALOG_POOL)  # writes the catalog: one stage at a time with the others
    def accuracy(live: dict) -> dict:
        from quantlab.lifecycle import accuracy

        with fail_fast():
            out = accuracy.run_latest(ctx(), live=ref(live))
        return out.to_dict() if out is not None else {}

    @task(pool=CATALOG_POOL)  # writes the catalog: one stage at a time with the others
    def decide(live: dict, tracked: dict) -> dict:
        from quantlab.lifecycle import triggers

        with fail_fast():
            trigger, written = triggers.run_latest(ctx(), live=ref(live))
        return {"action": trigger.action, "reason": trigger.reason, "ref": written.to_dict()}

    @task.branch
    def route(decision: dict) -> str:
        return ROUTES[decision["action"]]

    @task
    def no_retrain(decision: dict) -> None:
        print(f"no retrain: {decision['reason']}")

    @task(trigger_rule="all_done", retries=1)
    def health() -> dict:
        from quantlab.health import require_healthy

        return require_healthy(ctx())

    reason = "{{ ti.xcom_pull(task_ids='decide')['reason'] }}"
    retrain = [
        TriggerDagRunOperator(
            task_id=task_id, trigger_dag_id=task_id, conf={"reason": reason, "by": "model_monitor"}
        )
        for task_id in ("retrain_full", "retrain_incremental")
    ]
    live = score_live()
    decision = decide(live, accuracy(live))
    targets = [*retrain, no_retrain(decision)]
    route(decision) >> targets
    targets >> health()


model_monitor()
