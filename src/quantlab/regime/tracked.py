"""The regime stage's MLflow record: one light parent run `regime` in `train.experiment` with
each symbol's fold metrics (`<SYMBOL>_<metric>` at `step=fold`, and their means), and each
symbol's final booster, registered as `<lifecycle.regime.register_as>-<SYMBOL>` (alias
`challenger`, the `quantlab.*` tags serving and the gate read).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quantlab.catalog import DatasetRef
from quantlab.codeversion import code_version, git_sha
from quantlab.tracking import Redactor, start_experiment
from quantlab.tracking.datasets import describe_versions, version_inputs
from quantlab.tracking.models import log_booster
from quantlab.tracking.registry import registry_for
from quantlab.tracking.runs import log_batch, parent_metrics
from quantlab.train.models import booster
from quantlab.vocab import REGIMES

if TYPE_CHECKING:
    from quantlab.context import RunContext
    from quantlab.regime.train import RegimeResult, SymbolModel

RUN_NAME = "regime"
INPUT_TAG = "input."


@dataclass(frozen=True)
class TrackedRegime:
    run_id: str
    registered: dict[str, int]  # registered name -> the version this run created


def _params(ctx: RunContext, features: list[str]) -> dict[str, Any]:
    cfg = ctx.config
    regime = cfg.lifecycle.regime.model_dump(mode="json")
    return {
        **{f"lifecycle.regime.{k}": v for k, v in regime.items()},
        "labels.regime.horizon": cfg.labels.regime.horizon if cfg.labels.regime else None,
        "features": ",".join(features),
        "symbols": ",".join(cfg.universe.symbols),
        "interval": cfg.universe.interval,
        "seed": cfg.train.seed,
    }


def log_regime(
    ctx: RunContext, result: RegimeResult, inputs: list[DatasetRef], config_hash: str
) -> TrackedRegime:
    """Log `result` (trained on `inputs`) as one run and register each symbol's model."""
    import mlflow

    redactor = Redactor.from_environment()
    experiment_id = start_experiment(ctx.config.tracking, ctx.config.train.experiment)
    client = mlflow.MlflowClient(ctx.config.tracking.uri)
    versions = describe_versions(ctx.catalog, inputs)
    version = code_version()
    tags = {
        "code_version": version,
        "git_sha": git_sha(version) or "",
        "config_hash": config_hash,
        "seed": ctx.config.train.seed,
        "skipped": json.dumps(result.skipped),
        **{f"{INPUT_TAG}{v.ref.name}": v.ref.version for v in versions},
    }
    # Each symbol's folds as a "model" of the walk-forward's parent view: BTCUSDT_logloss...
    by_symbol = [{**r, "model": r["symbol"]} for r in result.fold_metrics]
    with mlflow.start_run(experiment_id=experiment_id, run_name=RUN_NAME) as run:
        run_id = run.info.run_id
        log_batch(
            run_id,
            metrics=parent_metrics(by_symbol, primary=""),
            params=_params(ctx, result.features),
            tags=tags,
            redactor=redactor,
            client=client,
        )
        client.log_inputs(run_id, datasets=version_inputs(versions))
        registered = {
            m.name: _register(ctx, m, result.features, run_id, tags, versions)
            for m in result.models.values()
        }
    return TrackedRegime(run_id, registered)


def _register(
    ctx: RunContext,
    model: SymbolModel,
    features: list[str],
    run_id: str,
    tags: dict[str, Any],
    versions: list[Any],
) -> int:
    """Log `model`'s booster under the active run and register it; its new version."""
    fitted = model.fitted
    info = log_booster(
        fitted.kind,
        fitted.booster,
        name=f"model_{model.symbol}",
        example=model.example,
        output=booster(fitted.kind, fitted.task, len(REGIMES)).predict(
            fitted, model.example.to_numpy().astype(float)
        ),
    )
    ref = registry_for(ctx.config.tracking.uri).register(
        model.name,
        info.model_uri,
        run_id,
        {
            "family": "regime",
            "kind": fitted.kind,
            "task": fitted.task,
            "target": "regime",
            "columns": json.dumps(features),
            "symbols": json.dumps([model.symbol]),
            "symbol": model.symbol,
            "classes": json.dumps(list(REGIMES)),
            "rounds": str(fitted.rounds),
            "inputs": json.dumps({v.ref.name: v.ref.version for v in versions}),
            "train_end": None if model.train_end is None else model.train_end.isoformat(),
            "mode": "full",
            "code_version": tags["code_version"],
            "git_sha": tags["git_sha"],
            "config_hash": tags["config_hash"],
            "run_id": run_id,
        },
    )
    return ref.version


def describe_oos(ctx: RunContext, registered: dict[str, int], predictions: DatasetRef) -> None:
    """Point each registered version at its out-of-fold rows (known once they are written)."""
    registry = registry_for(ctx.config.tracking.uri)
    for name, version in registered.items():
        registry.describe(
            name,
            version,
            {"oos": f"{predictions.name}@{predictions.version}", "oos_model": name},
        )
