"""`quantlab monitor [--as-of TIME] [--airflow-db URL] [--webhook-url URL]`: one monitoring
run outside Airflow (what the monitoring DAG does in its tasks): every check, the alerts
planned and delivered (the webhook from --webhook-url or the environment, else the log), the
status page and the MLflow metrics. Exit 1 when a finding is at the alert level."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from quantlab.context import RunContext


def _time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _cmd_monitor(ctx: RunContext, args: argparse.Namespace) -> int:
    import polars as pl

    from quantlab.monitoring import stage
    from quantlab.monitoring.delivery import sender
    from quantlab.monitoring.findings import ALERT, findings

    send = sender(ctx.config.monitoring.alerts, args.webhook_url)
    done = stage.run(ctx, args.as_of, airflow_db=args.airflow_db, send=send)
    found = findings(*stage.this_run(ctx, done.refs, done.as_of).values())
    counts = found.group_by("level").len().sort("level")
    print(f"monitoring as of {done.as_of.isoformat()}:")
    for level, n in counts.iter_rows():
        print(f"  {level:<5} {n}")
    for r in found.filter(pl.col("level") == ALERT).iter_rows(named=True):
        print(f"  ALERT {r['check']} {r['subject']}: {r['message']}")
    print(f"alerts delivered: {done.delivered.height}")
    print(f"status page: {done.page}")
    print(f"MLflow run: {done.mlflow_run_id} (experiment {ctx.config.monitoring.experiment})")
    return 1 if found.filter(pl.col("level") == ALERT).height else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="run every monitoring check, alert, write the status page")
    p.add_argument("--as-of", type=_time, default=None, help="judge at this time (default: now)")
    p.add_argument("--airflow-db", default=None, help="Airflow's metadata DB URL (task checks)")
    p.add_argument("--webhook-url", default=None, help="alert webhook (default: the environment)")
    p.set_defaults(func=_cmd_monitor)
