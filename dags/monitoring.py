"""The monitoring DAG: the platform watching itself, on `monitoring.schedule`.

    freshness ─┐
    drift     ─┤
    accuracy  ─┼─> evaluate ─> notify ─> report
    paper     ─┤
    tasks     ─┘

Each check writes its dataset (`monitor_freshness` and `monitor_gate`, `monitor_drift`,
`monitor_accuracy`, `monitor_paper`, `monitor_tasks`), judged at the run's data interval end;
`evaluate` plans the alerts (`monitor_alerts`: new conditions fire, cleared ones resolve, one
still true repeats after `monitoring.alerts.repeat_after_hours`); `notify` sends the unsent
ones through `QuantlabNotifier` (the log and the webhook) and marks them sent; `report` writes
the status page (`<paths.data>/artifacts/monitoring/status.html`) and logs every finding to
MLflow (`monitoring.experiment`). The logic lives in `quantlab.monitoring`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from _alerts import QuantlabNotifier
from _quantlab import DEFAULT_ARGS, config_timetable, ctx, fail_fast

CHECKS = ("freshness", "drift", "accuracy", "paper", "tasks")  # tasks: reads Airflow's DB too


def as_of(context: dict) -> datetime:
    """The time every check of this run is judged at: its data interval end, else its
    logical date, else when it was due (a manual run without a logical date)."""
    for key in ("data_interval_end", "logical_date"):
        if context.get(key) is not None:
            return context[key]
    return context["dag_run"].run_after


def refs(data: dict) -> dict:
    from quantlab.catalog import DatasetRef

    return {name: DatasetRef.from_dict(r) for name, r in data.items()}


def out(written: dict) -> dict:
    return {name: r.to_dict() for name, r in written.items()}


@dag(
    dag_id="monitoring",
    schedule=config_timetable("monitoring"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["quantlab", "monitoring"],
    doc_md=__doc__,
)
def monitoring():
    def check(name: str):
        """The task that runs `quantlab.monitoring.stage.run_<name>` at this run's time."""

        @task(task_id=name)
        def run_check(**context) -> dict:
            from quantlab.monitoring import stage

            with fail_fast():
                return out(getattr(stage, f"run_{name}")(ctx(), as_of(context)))

        return run_check()

    @task
    def tasks(**context) -> dict:
        from airflow.configuration import conf

        from quantlab.monitoring import stage

        airflow_db = conf.get("database", "sql_alchemy_conn", fallback=None)
        with fail_fast():
            return out(stage.run_tasks(ctx(), as_of(context), airflow_db))

    @task(trigger_rule="all_done")  # a failed check leaves the others to be judged
    def evaluate(**context) -> dict:
        from quantlab.monitoring import stage

        pulled = context["ti"].xcom_pull(task_ids=list(CHECKS))  # None for a failed check
        written = refs({k: v for c in pulled if c for k, v in c.items()})
        with fail_fast():
            planned = stage.evaluate(ctx(), written, as_of(context))
        return {"checks": out(written), "alerts": planned.to_dict() if planned else {}}

    @task
    def notify(evaluated: dict, **context) -> dict:
        from quantlab.monitoring import stage

        def send(rows) -> str:
            notifier = QuantlabNotifier(alerts=rows.to_dicts())
            notifier(context)  # raises on a failed post: the retry sends them again
            return notifier.channel or "log"

        with fail_fast():
            sent = stage.deliver(ctx(), send)
        return {"delivered": sent.height}

    @task(trigger_rule="all_done")  # the page says what was found even if delivery failed
    def report(evaluated: dict, **context) -> dict:
        from quantlab.monitoring import stage

        with fail_fast():
            page, run_id = stage.report(ctx(), refs(evaluated["checks"]), as_of(context))
        return {"page": str(page), "mlflow_run_id": run_id}

    checks = [*(check(name) for name in CHECKS[:-1]), tasks()]
    evaluated = evaluate()
    checks >> evaluated
    notify(evaluated) >> report(evaluated)


monitoring()
