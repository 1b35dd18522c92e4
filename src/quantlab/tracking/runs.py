"""A walk-forward in MLflow: one parent run, one nested child per (model kind, fold).

Everything goes through `MlflowClient` by run id in batches (`log_batch` chunks to the
server's limits: 1000 metrics, 100 params + tags per request), one round trip per run and
kind of record instead of one per metric. Every param, tag and text passes a `Redactor`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from quantlab.tracking.redact import Redactor

# The MLflow tag a nested run carries (what `mlflow.start_run(nested=True)` sets).
PARENT_TAG = "mlflow.parentRunId"
# MLflow's limits on one value (param 6000 characters, tag 8000), kept with room to spare.
_PARAM_LEN, _TAG_LEN = 6000, 8000


def _client(client: Any | None) -> Any:
    import mlflow

    return client if client is not None else mlflow.MlflowClient()


def numeric_items(record: Mapping[str, Any], skip: Iterable[str] = ("fold", "model")) -> dict:
    """The numeric entries of a metrics record (bools and the record's keys left out): what
    is logged, so a metric another target adds is logged without naming it here."""
    skip = set(skip)
    return {
        k: float(v)
        for k, v in record.items()
        if k not in skip and isinstance(v, int | float) and not isinstance(v, bool)
    }


def log_batch(
    run_id: str,
    *,
    metrics: Sequence[tuple[str, float, int]] = (),
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    redactor: Redactor,
    client: Any | None = None,
) -> None:
    """Log `metrics` (key, value, step), `params` and `tags` to `run_id` in batched requests;
    params and tags are masked by `redactor` and cut to MLflow's value limits."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.time import get_current_time_millis

    now = get_current_time_millis()
    client = _client(client)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, int(s)) for k, v, s in metrics],
        params=[Param(k, redactor.text(str(v))[:_PARAM_LEN]) for k, v in (params or {}).items()],
        tags=[RunTag(k, redactor.text(str(v))[:_TAG_LEN]) for k, v in (tags or {}).items()],
        synchronous=True,
    )


def log_text(run_id: str, text: str, path: str, *, redactor: Redactor, client: Any = None) -> None:
    """A text artifact, masked."""
    _client(client).log_text(run_id, redactor.text(text), path)


def parent_metrics(fold_metrics: Sequence[Mapping[str, Any]], primary: str) -> list[tuple]:
    """The parent's view of every fold: each metric at `step=fold`, the same as `fold<k>_<m>`
    (a column in the run table), and its mean over the folds where it is defined. The primary
    kind's metrics keep their plain names; another kind's carry its prefix (`xgboost_auc`)."""
    out: list[tuple[str, float, int]] = []
    per_fold: dict[tuple[str, str], list[float]] = {}
    for record in fold_metrics:
        pre = "" if record["model"] == primary else f"{record['model']}_"
        step = int(record["fold"])
        for key, value in numeric_items(record).items():
            out.append((f"{pre}{key}", value, step))
            out.append((f"{pre}fold{step}_{key}", value, 0))
            per_fold.setdefault((pre, key), []).append(value)
    for (pre, key), values in per_fold.items():
        if finite := [v for v in values if math.isfinite(v)]:
            out.append((f"{pre}mean_{key}", sum(finite) / len(finite), 0))
    return out


def log_children(
    experiment_id: str,
    parent_id: str,
    fold_metrics: Sequence[Mapping[str, Any]],
    fold_params: Sequence[Mapping[str, Any]],
    inputs: Mapping[int, Sequence[Any]],
    *,
    redactor: Redactor,
    client: Any | None = None,
) -> dict[tuple[str, int], str]:
    """One child run per (model kind, fold) under `parent_id`, each with the fold's metrics,
    its tuned parameters and its dataset slices (`inputs[fold]`, from `fold_inputs`).

    Returns the child run ids by (kind, fold).
    """
    client = _client(client)
    params = {(p["model"], int(p["fold"])): p for p in fold_params}
    children: dict[tuple[str, int], str] = {}
    for record in fold_metrics:
        kind, fold = str(record["model"]), int(record["fold"])
        run = client.create_run(
            experiment_id,
            run_name=f"{kind} fold {fold}",
            tags={PARENT_TAG: parent_id, "model": kind, "fold": str(fold)},
        )
        run_id = run.info.run_id
        tuned = {
            k: v for k, v in params.get((kind, fold), {}).items() if k not in ("model", "fold")
        }
        log_batch(
            run_id,
            metrics=[(k, v, fold) for k, v in numeric_items(record).items()],
            params=tuned,
            redactor=redactor,
            client=client,
        )
        if fold_inputs := list(inputs.get(fold, ())):
            client.log_inputs(run_id, datasets=fold_inputs)
        client.set_terminated(run_id)
        children[(kind, fold)] = run_id
    return children


def reused_run(client: Any, experiment: str, tags: Mapping[str, str], run_name: str) -> str:
    """The id of the one run of `experiment` carrying every tag in `tags`, created (and marked
    finished) on first use: a record that gains a metric per call, so its figures read as
    metrics over time (the live-accuracy tracker, the monitoring runs)."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = client.search_runs([experiment], query, max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment, run_name=run_name, tags=dict(tags))
    client.set_terminated(run.info.run_id)
    return run.info.run_id
