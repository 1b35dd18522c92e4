"""The train stage's SHAP output: MLflow artifacts and metrics, and the `feature_importance` dataset.

Under the walk-forward's MLflow run, `shap/` holds the importance table (CSV), the stability
summary (JSON), the sign flips (CSV) and a beeswarm PNG per fold (per class for multi-class);
the run's metrics carry the stability figures. `feature_importance` is written with the same
inputs and fingerprint as `predictions`, and before it: the stage skips only when both exist.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext
from quantlab.train.explain_plots import fold_beeswarms
from quantlab.train.explain_stability import TOP_K, Stability, explain_stability
from quantlab.train.walkforward import WalkForwardResult

IMPORTANCE = "feature_importance"
ARTIFACTS = "shap"


def stability_metrics(stability: Stability, primary: str) -> dict[str, float]:
    """MLflow metric names and values: the primary kind's plain, another kind's prefixed with
    it (as the stage names fold metrics), a class suffix where a model has several outputs."""
    outputs = stability.summary.group_by("model").len()
    multi = set(outputs.filter(pl.col("len") > 1)["model"])  # models with several outputs
    metrics = {}
    for row in stability.summary.iter_rows(named=True):
        pre = "" if row["model"] == primary else f"{row['model']}_"
        post = f"_class{row['output']}" if row["model"] in multi else ""
        for key, name in (
            ("rank_corr_median", "shap_rank_corr_median"),
            ("rank_corr_min", "shap_rank_corr_min"),
            ("topk_jaccard_median", "shap_topk_jaccard"),
            ("topk_jaccard_min", "shap_topk_jaccard_min"),
            ("sign_flips", "shap_sign_flips"),
        ):
            if row[key] is not None:
                metrics[f"{pre}{name}{post}"] = float(row[key])
    return metrics


def log_explanations(
    run_id: str, tracking_uri: str, result: WalkForwardResult, stability: Stability
) -> None:
    """Log the SHAP tables, stability figures and beeswarms to MLflow run `run_id`, batched."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=tracking_uri)
    now = int(time.time() * 1000)
    metrics = stability_metrics(stability, result.primary)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "importance.csv").write_text(result.importance.write_csv())
        (folder / "sign_flips.csv").write_text(stability.flips.write_csv())
        (folder / "stability.json").write_text(json.dumps(stability.to_dict(), indent=1))
        for explanation in result.explanations:
            for name, png in fold_beeswarms(explanation).items():
                (folder / name).write_bytes(png)
        client.log_artifacts(run_id, str(folder), ARTIFACTS)  # one upload for all of them


def write_importance(
    ctx: RunContext,
    result: WalkForwardResult,
    stability: Stability,
    inputs: list[DatasetRef],
    config_hash: str,
    run_id: str | None,
) -> DatasetRef:
    """Write every fold's importance rows as `feature_importance`, with the stability in its
    lineage; the same stage, inputs and config hash as `predictions`, so the same fingerprint."""
    flipped = [
        f"{r['model']}/{r['output']}/{r['feature']}" for r in stability.flips.iter_rows(named=True)
    ]
    return ctx.catalog.write(
        IMPORTANCE,
        result.importance,
        stage="train",
        inputs=inputs,
        config_hash=config_hash,
        extra={
            "mlflow_run_id": run_id,
            "stability": stability.summary.to_dicts(),
            "flipped": flipped,
        },
    )


def record_explanations(
    ctx: RunContext,
    result: WalkForwardResult,
    inputs: list[DatasetRef],
    config_hash: str,
    run_id: str,
) -> DatasetRef:
    """Stability across folds, logged to MLflow run `run_id`, and `feature_importance` written."""
    stability = explain_stability(result.importance, TOP_K)
    log_explanations(run_id, ctx.config.tracking.uri, result, stability)
    return write_importance(ctx, result, stability, inputs, config_hash, run_id)


def importance_done(ctx: RunContext, fp: str) -> bool:
    """Whether `feature_importance` already holds the training with fingerprint `fp`."""
    return ctx.catalog.find(IMPORTANCE, fp) is not None
