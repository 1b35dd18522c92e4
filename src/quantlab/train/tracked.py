"""The train stage's MLflow record: what of a walk-forward goes where, through `quantlab.tracking`.

Parent run `walk-forward`: the config (params, and whole as `config.json`, secrets masked),
the git sha, code version, config hash, seed and trial count (tags), every dataset version
read down to the klines (inputs, context training), each fold's metrics at `step=fold`, the
fold table, the Optuna artifacts and the final models. One nested child per (kind, fold)
holds that fold's metrics, tuned parameters and its train, validation and test slices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quantlab.catalog import DatasetRef
from quantlab.codeversion import code_version, git_sha
from quantlab.tracking import Redactor, start_experiment
from quantlab.tracking.datasets import describe_versions, fold_inputs, version_inputs
from quantlab.tracking.models import EXAMPLE_ROWS, log_booster
from quantlab.tracking.registry import registry_for
from quantlab.tracking.runs import log_batch, log_children, log_text, parent_metrics
from quantlab.tracking.studies import load_studies, log_studies
from quantlab.train.models import booster
from quantlab.train.splits import fold_table
from quantlab.train.targets import task_of
from quantlab.train.walkforward import design

if TYPE_CHECKING:
    from quantlab.context import RunContext
    from quantlab.train.stage import Trained

RUN_NAME = "walk-forward"
CONFIG_ARTIFACT = "config.json"
FOLDS_ARTIFACT = "folds.csv"
FOLD_PARAMS_ARTIFACT = "fold_params.json"
# Tags reproduce reads back: `input.<dataset>` (a version), `output.predictions`, ...
INPUT_TAG, OUTPUT_TAG = "input.", "output.predictions"
# The class names of a classifier's outputs, in output order (`quantlab.train.targets`).
CLASS_NAMES = {"binary": ["down", "up"], "multiclass": ["down", "flat", "up"]}


@dataclass(frozen=True)
class TrackedRun:
    run_id: str  # the parent
    trials_artifact: str | None  # `runs:/<id>/optuna/trials.csv`; None without Optuna studies
    children: dict[tuple[str, int], str]  # the nested run of each (model kind, fold)


def _params(ctx: RunContext, features: list[str]) -> dict[str, Any]:
    cfg = ctx.config
    return {
        # train.storage may hold a database password: never a param (the redactor masks a
        # URL's password anyway; this keeps the host and user out too).
        **{
            f"train.{k}": v
            for k, v in cfg.train.model_dump(mode="json", exclude={"storage"}).items()
        },
        "labels.horizon": cfg.labels.horizon,
        "features": ",".join(features),
        "symbols": ",".join(cfg.universe.symbols),
        "interval": cfg.universe.interval,
    }


def log_training(
    ctx: RunContext, trained: Trained, inputs: list[DatasetRef], config_hash: str
) -> TrackedRun:
    """Log `trained` (the walk-forward over `inputs`) as a parent run with its fold children."""
    import mlflow

    cfg, result = ctx.config.train, trained.result
    config = ctx.config.model_dump(mode="json", by_alias=True)
    # The passwords of URLs in the config are masked wherever they appear, not only in URLs.
    redactor = Redactor.from_environment(json.dumps(config))
    experiment_id = start_experiment(ctx.config.tracking, cfg.experiment)
    client = mlflow.MlflowClient(ctx.config.tracking.uri)
    versions = describe_versions(ctx.catalog, inputs)
    direct = [v for v in versions if v.ref in inputs]
    folds = fold_table(trained.data, trained.splits)
    version = code_version()
    tags = {
        "code_version": version,
        "git_sha": git_sha(version) or "",
        "config_hash": config_hash,
        "seed": cfg.seed,
        "trials_total": sum(int(m["trials"]) for m in result.fold_metrics),
        **{f"{INPUT_TAG}{v.ref.name}": v.ref.version for v in versions},
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=RUN_NAME) as run:
        run_id = run.info.run_id
        log_batch(
            run_id,
            metrics=parent_metrics(result.fold_metrics, result.primary),
            params=_params(ctx, trained.features),
            tags=tags,
            redactor=redactor,
            client=client,
        )
        client.log_inputs(run_id, datasets=version_inputs(versions))
        log_text(
            run_id,
            json.dumps(redactor.value(config), indent=2),
            CONFIG_ARTIFACT,
            redactor=redactor,
            client=client,
        )
        # The windows each fold trained, validated and tested on, as `quantlab train folds` prints.
        log_text(run_id, folds.write_csv(), FOLDS_ARTIFACT, redactor=redactor, client=client)
        log_text(
            run_id,
            json.dumps({"fold_params": result.fold_params}, default=str),
            FOLD_PARAMS_ARTIFACT,
            redactor=redactor,
            client=client,
        )
        children = log_children(
            experiment_id,
            run_id,
            result.fold_metrics,
            result.fold_params,
            {row["fold"]: fold_inputs(direct, row) for row in folds.iter_rows(named=True)},
            redactor=redactor,
            client=client,
        )
        trials_artifact = _log_trials(run_id, result, redactor, client)
        _log_models(ctx, trained, run_id, tags, versions)
    return TrackedRun(run_id, trials_artifact and f"runs:/{run_id}/{trials_artifact}", children)


def _log_trials(run_id: str, result: Any, redactor: Redactor, client: Any) -> str | None:
    """The Optuna studies and trials table, where the walk-forward hands them over: Study
    objects, or study names in the RDB `storage` they were run on (read back from there;
    in-memory studies that are gone leave the trials table alone)."""
    studies = list(result.studies)
    trials, storage = result.trials, result.storage
    if studies and isinstance(studies[0], str):
        studies = load_studies(storage, studies) if storage else []
    if studies or (trials is not None and trials.height):
        return log_studies(run_id, studies, trials, redactor=redactor, client=client)
    return None


def _log_models(
    ctx: RunContext, trained: Trained, run_id: str, tags: dict[str, Any], versions: list[Any]
) -> None:
    """The primary kind's final model is `model` and is registered; others are logged beside.
    Per symbol, each primary-kind model is registered as `<register_as>-<symbol>`.

    A registered version gets the alias `challenger` and the tags serving and the gate read
    (`quantlab.tracking.registry.META`); the gate (`quantlab.lifecycle.promote`) decides
    whether it becomes champion once its out-of-sample predictions are written.
    """
    import polars as pl

    cfg, result = ctx.config.train, trained.result
    # The example is what the booster takes: the features, and the symbol's code when pooled.
    x, names, _ = design(
        trained.data.head(EXAMPLE_ROWS),
        trained.features,
        ctx.config.universe.symbols,
        not cfg.per_symbol,
    )
    example = pl.DataFrame(x, schema=names, orient="row")
    task = task_of(cfg.target)
    registry = registry_for(ctx.config.tracking.uri)
    labelled = trained.data.filter(pl.col("label_time").is_not_null())
    train_end = labelled["label_time"].max()
    for name, fitted in result.models.items():
        info = log_booster(
            fitted.kind,
            fitted.booster,
            name="model" if name == result.primary else f"model_{name}",
            example=example,
            output=booster(fitted.kind, task).predict(fitted, x),
        )
        if cfg.register_as is None or fitted.kind != result.primary:
            continue
        symbol = name.removeprefix(result.primary).removeprefix("-") or None
        registry.register(
            cfg.register_as + name.removeprefix(result.primary),
            info.model_uri,
            run_id,
            {
                "family": "main",
                "kind": fitted.kind,
                "task": task,
                "target": cfg.target,
                "columns": json.dumps(names),
                "symbols": json.dumps(list(ctx.config.universe.symbols)),
                "symbol": symbol,
                "classes": json.dumps(CLASS_NAMES.get(task)),
                "rounds": str(fitted.rounds),
                "scale": str(fitted.scale),
                "inputs": json.dumps({v.ref.name: v.ref.version for v in versions}),
                "train_end": None if train_end is None else train_end.isoformat(),
                "mode": "full",
                "code_version": tags["code_version"],
                "git_sha": tags["git_sha"],
                "config_hash": tags["config_hash"],
                "run_id": run_id,
            },
        )


def tag_output(ctx: RunContext, run_id: str, predictions: DatasetRef) -> None:
    """Tag the parent run with the `predictions` version it produced (known after the write)."""
    import mlflow

    mlflow.MlflowClient(ctx.config.tracking.uri).set_tag(
        run_id, OUTPUT_TAG, str(predictions.version)
    )
    # Each version this run registered: where its out-of-sample rows are, for the gate.
    cfg = ctx.config.train
    if cfg.register_as is None:
        return
    registry = registry_for(ctx.config.tracking.uri)
    names = (
        [f"{cfg.register_as}-{s}" for s in ctx.config.universe.symbols]
        if cfg.per_symbol
        else [cfg.register_as]
    )
    for name in names:
        if (ref := registry.by_run(name, run_id)) is not None:
            registry.describe(
                name,
                ref.version,
                {"oos": f"{predictions.name}@{predictions.version}", "oos_model": cfg.models[0]},
            )
