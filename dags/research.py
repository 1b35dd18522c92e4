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

from datetime import datetime

from airflow.sdk import dag

from _quantlab import CATALOG_POOL, DEFAULT_ARGS, ctx, wire  # noqa: F401 (ctx: what each task calls)
from quantlab.pipeline import RESEARCH


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
    wire(RESEARCH, pool=CATALOG_POOL)


research()
