"""The backtest in MLflow: a run nested under the training run whose predictions it traded.

The run holds the statistics (N, PSR, DSR and MinTRL among them) as metrics, the catalog
versions it read and wrote as dataset inputs, and the tearsheet as an artifact, so a Sharpe
seen in the MLflow UI leads to the exact targets, bars, costs and trials behind it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quantlab.catalog import DatasetRef, TrainingRun
from quantlab.codeversion import code_version, git_sha
from quantlab.context import RunContext
from quantlab.tracking import Redactor, start_experiment
from quantlab.tracking.datasets import describe_versions, version_inputs
from quantlab.tracking.runs import PARENT_TAG, log_batch, numeric_items

RUN_NAME = "backtest"
INPUT_TAG = "input."


def log_backtest(
    ctx: RunContext,
    ref: DatasetRef,
    stats: dict[str, Any],
    tearsheet: Path,
    predictions: DatasetRef,
) -> str:
    """Log backtest version `ref` as a child of the training run of `predictions`; its run id."""
    import mlflow

    training = TrainingRun.of(ctx.catalog.lineage(predictions))
    experiment = training.mlflow_experiment or ctx.config.train.experiment
    # One client (one store connection) for the lookup and the logging: opening a SQL store
    # checks its schema, about a second each time, in a task that should start fast.
    client = mlflow.MlflowClient(ctx.config.tracking.uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id if found else start_experiment(ctx.config.tracking, experiment)
    )
    config = ctx.config.model_dump(mode="json", by_alias=True)
    redactor = Redactor.from_environment(json.dumps(config))
    lineage = ctx.catalog.lineage(ref)
    versions = describe_versions(ctx.catalog, [ref])
    version = code_version()
    tags = {
        "mlflow.runName": RUN_NAME,
        "code_version": version,
        "git_sha": git_sha(version) or "",
        "config_hash": lineage.config_hash,
        f"{INPUT_TAG}backtest": ref.version,
        **{f"{INPUT_TAG}{name}": v for name, v in lineage.inputs.items()},
    }
    if training.mlflow_run_id:
        tags[PARENT_TAG] = training.mlflow_run_id
    run = client.create_run(experiment_id, run_name=RUN_NAME)
    run_id = run.info.run_id
    try:
        log_batch(
            run_id,
            metrics=[(k, v, 0) for k, v in numeric_items(stats).items()],
            params={f"backtest.{k}": v for k, v in config["backtest"].items()},
            tags=tags,
            redactor=redactor,
            client=client,
        )
        client.log_inputs(run_id, datasets=version_inputs(versions, context="testing"))
        client.log_artifact(run_id, str(tearsheet), "backtest")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
