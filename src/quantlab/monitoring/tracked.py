"""The monitoring runs' MLflow record: one run in `monitoring.experiment`, found again by its
tag and reused by every monitoring run, so each finding is a metric over time
(`freshness/spot:BTCUSDT:1h`, `drift/quantlab-research/rsi_14`, `accuracy/...`, `paper/...`,
`tasks/...`) at the check's `as_of`, beside the counts of each level and of alerts fired; the
newest status page is its artifact."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from quantlab.monitoring.findings import LEVELS

if TYPE_CHECKING:
    from quantlab.context import RunContext

KIND_TAG = "quantlab.monitor"
KIND = "monitoring"
_BAD = re.compile(r"[^A-Za-z0-9_\-. :/]")  # what MLflow allows in a metric name


def metric_name(check: str, subject: str) -> str:
    """`check/subject`, with any character MLflow refuses in a name turned into `_`."""
    return _BAD.sub("_", f"{check}/{subject}")[:250]


def monitoring_metrics(findings: pl.DataFrame, fired: int) -> dict[str, float]:
    """Every finding's value by name, the count of findings per level, the alerts fired."""
    out: dict[str, float] = {}
    for r in findings.iter_rows(named=True):
        if r["value"] is not None:
            out[metric_name(r["check"], r["subject"])] = float(r["value"])
    counts = findings.group_by("level").len()
    per_level = dict(zip(counts["level"].to_list(), counts["len"].to_list(), strict=True))
    for level in LEVELS:
        out[f"level/{level.replace('/', '')}"] = float(per_level.get(level, 0))
    out["alerts/fired"] = float(fired)
    return out


def log_monitoring(
    ctx: RunContext, findings: pl.DataFrame, fired: int, as_of: datetime, page: Path | None
) -> str:
    """Log one monitoring run's figures at `as_of` (timestamp and step); the run's id."""
    import mlflow
    from mlflow.entities import Metric, RunTag

    from quantlab.tracking import start_experiment
    from quantlab.tracking.runs import reused_run

    experiment = start_experiment(ctx.config.tracking, ctx.config.monitoring.experiment)
    client = mlflow.MlflowClient(ctx.config.tracking.uri)
    run_id = reused_run(client, experiment, {KIND_TAG: KIND}, KIND)
    ms, step = int(as_of.timestamp() * 1000), int(as_of.timestamp())
    metrics = [Metric(k, v, ms, step) for k, v in monitoring_metrics(findings, fired).items()]
    for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 metrics a batch
        client.log_batch(run_id, metrics=metrics[start : start + 900])
    client.log_batch(run_id, tags=[RunTag("as_of", as_of.isoformat())])
    if page is not None and page.exists():
        client.log_artifact(run_id, str(page))
    return run_id
