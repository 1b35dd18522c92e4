"""The retrain DAGs: `retrain_incremental` (twice a day) and `retrain_full` (weekly).

    retrain_incremental:  ingest → validate → features → labels → incremental
    retrain_full:         the research graph from scratch, ending in the gate (promote)

One task per stage of `quantlab.pipeline.retrain_graph`, the graphs `quantlab retrain` also
walks. Schedules are cron expressions in `lifecycle.schedules.timezone` from the config
(`lifecycle.schedules.incremental` / `.full`; null: triggered only by hand or by the
model monitor). Neither DAG moves `champion`: every version they register goes through the
gate. Every task runs in the one-slot pool `quantlab_catalog` with the research DAG's, so
no two of these runs write the catalog or judge a challenger at once.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from _quantlab import CATALOG_POOL, DEFAULT_ARGS, lifecycle_timetable, wire
from quantlab.pipeline import retrain_graph


def retrain_dag(mode: str):
    @dag(
        dag_id=f"retrain_{mode}",
        schedule=lifecycle_timetable(mode),
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["quantlab", "retrain", mode],
        doc_md=__doc__,
    )
    def retrain():
        wire(retrain_graph(mode), pool=CATALOG_POOL)

    return retrain()


INCREMENTAL = retrain_dag("incremental")
FULL = retrain_dag("full")
