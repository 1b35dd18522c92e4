"""The divergence report in MLflow: one run per paper session with the buckets as metrics and
the offline HTML report as an artifact (as `backtest.tracked` logs a backtest)."""

from __future__ import annotations

import math
from pathlib import Path

from quantlab.config import TrackingConfig
from quantlab.execution.divergence import Divergence


def log_to_mlflow(
    div: Divergence,
    tracking: TrackingConfig | str,
    *,
    experiment: str = "paper-divergence",
    run_name: str = "divergence",
    tags: dict[str, str] | None = None,
    html_dir: Path | None = None,
) -> str:
    """One MLflow run with the buckets and totals as metrics and the HTML report as an
    artifact (as backtest/tracked.py logs a backtest); returns its run id."""
    import tempfile

    import mlflow

    from quantlab.execution import divergence_html
    from quantlab.tracking import Redactor, start_experiment
    from quantlab.tracking.runs import log_batch, numeric_items

    if isinstance(tracking, str):
        tracking = _tracking_for(tracking)
    experiment_id = start_experiment(tracking, experiment)
    client = mlflow.MlflowClient(tracking.uri)
    run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    metrics = {f"divergence.{k}": v for k, v in div.buckets.items()}
    metrics |= {f"divergence.{k}": v for k, v in numeric_items(div.totals).items()}
    try:
        log_batch(
            run_id,
            metrics=[(k, v, 0) for k, v in metrics.items() if math.isfinite(v)],
            params={"window_start": div.window[0], "window_end": div.window[1]},
            tags={"mlflow.runName": run_name, **(tags or {})},
            redactor=Redactor.from_environment(tracking.uri),
            client=client,
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(html_dir or tmp) / "divergence.html"
            divergence_html.write(div, path)
            client.log_artifact(run_id, str(path), "divergence")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _tracking_for(uri: str) -> TrackingConfig:
    """A tracking URI alone: a SQLite store keeps its artifacts in a folder beside it."""
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
        return TrackingConfig(uri=uri, artifacts=str(folder))
    return TrackingConfig(uri=uri)
