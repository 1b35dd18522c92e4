"""The monitor's MLflow record, in the training experiment (`train.experiment`):

- `live-accuracy <model>`: one run per registered model, found again by its tags and reused
  on every call, so each figure (`acc_7d`, `auc_7d`, `acc_7d_BTCUSDT`, `rows_7d`, ...) is a
  metric over time, at the tracker's `as_of`;
- `retrain-trigger <action>`: one run per trigger decision, its reason and numbers as tags
  and params, every model's verdict beside it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from quantlab.context import RunContext

KIND_TAG = "quantlab.monitor"  # live-accuracy | retrain-trigger
MODEL_TAG = "quantlab.model"


def _client(ctx: RunContext) -> tuple[Any, str]:
    import mlflow

    from quantlab.tracking import start_experiment

    experiment = start_experiment(ctx.config.tracking, ctx.config.train.experiment)
    return mlflow.MlflowClient(ctx.config.tracking.uri), experiment


def accuracy_run(client: Any, experiment: str, model: str) -> str:
    """The id of `model`'s live-accuracy run, created on first use."""
    from quantlab.tracking.runs import reused_run

    tags = {KIND_TAG: "live-accuracy", MODEL_TAG: model}
    return reused_run(client, experiment, tags, f"live-accuracy {model}")


def metric_name(name: str, days: int, symbol: str) -> str:
    """`acc_7d` for every symbol together, `acc_7d_BTCUSDT` for one."""
    base = f"{name}_{days}d"
    return base if symbol == "ALL" else f"{base}_{symbol}"


def accuracy_metrics(rows: pl.DataFrame) -> dict[str, float]:
    """The figures of one model's `live_accuracy` rows, by metric name (undefined ones left out)."""
    out: dict[str, float] = {}
    for r in rows.iter_rows(named=True):
        days, symbol = r["window_days"], r["symbol"]
        out[metric_name("rows", days, symbol)] = float(r["rows"])
        if r["accuracy"] is not None:
            out[metric_name("acc", days, symbol)] = float(r["accuracy"])
        if r["value"] is not None and r["metric"] != "accuracy":
            out[metric_name(r["metric"], days, symbol)] = float(r["value"])
    return out


def log_accuracy(ctx: RunContext, model: str, rows: pl.DataFrame, as_of: datetime) -> str:
    """Log one model's tracker figures at `as_of` (timestamp and step); the run's id."""
    from mlflow.entities import Metric, RunTag

    client, experiment = _client(ctx)
    run_id = accuracy_run(client, experiment, model)
    ms = int(as_of.timestamp() * 1000)
    step = int(as_of.timestamp())
    metrics = [Metric(k, v, ms, step) for k, v in accuracy_metrics(rows).items()]
    first = rows.row(0, named=True)
    tags = {"version": str(first["version"]), "as_of": as_of.isoformat()}
    for r in rows.filter(pl.col("symbol") == "ALL").iter_rows(named=True):
        tags[f"source_{r['window_days']}d"] = r["source"]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
    return run_id


def log_trigger(
    ctx: RunContext, action: str, reason: str, decisions: list[dict[str, Any]], at: datetime
) -> str:
    """One run for one trigger decision: the action and reason overall, each model's beside."""
    from mlflow.entities import Param, RunTag

    client, experiment = _client(ctx)
    tags = {KIND_TAG: "retrain-trigger", "action": action, "reason": reason[:5000]}
    params = {"decided_at": at.isoformat()}
    for d in decisions:
        tags[f"trigger.{d['model']}.action"] = d["action"]
        tags[f"trigger.{d['model']}.reason"] = d["reason"][:5000]
        params[f"{d['model']}.details"] = json.dumps(d["details"], default=str)[:6000]
    run = client.create_run(experiment, run_name=f"retrain-trigger {action}")
    client.log_batch(
        run.info.run_id,
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    client.set_terminated(run.info.run_id)
    return run.info.run_id
