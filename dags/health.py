"""The health DAG: `quantlab health` as one task, on the monitor's schedule.

The task logs every check (WARN as a warning) and fails on any FAIL, with each failure's
reason; it is retried once, so a service that blinked is checked again before the run
fails. The logic lives in `quantlab.health`; the model_monitor DAG ends with the same task.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from _quantlab import ON_FAILURE, ctx, lifecycle_timetable

DEFAULT_ARGS = {
    "owner": "quantlab",
    "retries": 1,
    "retry_delay": timedelta(minutes=2),
    **ON_FAILURE,
}


@dag(
    dag_id="health",
    schedule=lifecycle_timetable("monitor", default="0 * * * *"),  # null monitor: hourly
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["quantlab", "health"],
    doc_md=__doc__,
)
def health_dag():
    @task
    def health() -> dict:
        from quantlab.health import require_healthy

        return require_healthy(ctx())

    health()


health_dag()
