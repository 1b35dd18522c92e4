"""`run` for the train stage: load features and labels, walk forward, log to MLflow, write `predictions`."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from quantlab.catalog import DatasetRef, fingerprint
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.errors import DataError
from quantlab.labels import target_column
from quantlab.tracking import model_environment, start_experiment
from quantlab.train.search import search_settings
from quantlab.train.splits import Split, fold_table, make_splits
from quantlab.train.walkforward import WalkForwardResult, walk_forward
from quantlab.vocab import KEY

DATASET = "predictions"
FOLDS_ARTIFACT = "folds.csv"
# The config this stage reads, its fingerprint. Where MLflow logs and the registered model's
# name change no prediction, so renaming them reuses the predictions instead of retraining.
# Each Optuna trial records its valid Sharpe after the signal rule and costs, so those are read.
# Where the studies live (train.storage) and how often a worker beats (train.heartbeat_s) change
# no trial: the study names come from this fingerprint, so moving the storage only moves them.
READS = (
    "train",
    "labels.horizon",
    "universe.interval",
    "signal",
    "backtest.fees",
    "backtest.slippage",
)
IGNORES = ("train.experiment", "train.register_as", "train.storage", "train.heartbeat_s")


def training_frame(ctx: RunContext, features: DatasetRef, labels: DatasetRef) -> pl.DataFrame:
    feats = ctx.catalog.read(features)
    labs = ctx.catalog.read(labels)
    data = feats.join(labs, on=list(KEY), how="inner")
    if data.height == 0:
        raise DataError(
            f"{features} and {labels} share no (symbol, open_time) rows; "
            "build both from the same klines version"
        )
    return data


def stage_key(ctx: RunContext, inputs: list[DatasetRef]) -> str:
    """This stage's fingerprint on `inputs`: its output's identity, and its studies' name."""
    return fingerprint("train", inputs, slice_hash(ctx.config, READS, IGNORES))


def walk_forward_args(ctx: RunContext, features: DatasetRef, labels: DatasetRef) -> dict[str, Any]:
    """`walk_forward`'s arguments on these inputs: what `run` trains and `train tune` tunes,
    written once so a tuned study is always the stage's own."""
    data = training_frame(ctx, features, labels)
    return {
        "data": data,
        "features": [
            c for c in ctx.catalog.scan(features).collect_schema().names() if c not in KEY
        ],
        "target": "label_up",
        "return_col": target_column(ctx.config.labels),
        "cfg": ctx.config.train,
        "splits": splits_of(ctx, data),
    }


def splits_of(ctx: RunContext, data: pl.DataFrame) -> list[Split]:
    """The walk-forward folds of the training frame under this config."""
    return make_splits(
        data,
        ctx.config.train,
        interval=ctx.config.universe.interval,
        horizon=ctx.config.labels.horizon,
    )


def _log_run(
    ctx: RunContext,
    result: WalkForwardResult,
    features: list[str],
    inputs: list[DatasetRef],
    folds: pl.DataFrame,
) -> str:
    import mlflow
    import mlflow.lightgbm
    import mlflow.xgboost

    cfg = ctx.config.train
    experiment_id = start_experiment(ctx.config.tracking, cfg.experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name="walk-forward") as run:
        mlflow.log_params(
            {
                # train.storage may hold a database password: never a param.
                **{f"train.{k}": v for k, v in cfg.model_dump(exclude={"storage"}).items()},
                "labels.horizon": ctx.config.labels.horizon,
                "features": ",".join(features),
                "symbols": ",".join(ctx.config.universe.symbols),
                "interval": ctx.config.universe.interval,
            }
        )
        mlflow.set_tags({f"input.{r.name}": str(r.version) for r in inputs})
        # The primary kind's metrics keep their plain names; another kind's carry its prefix.
        prefix = {k: "" if k == result.primary else f"{k}_" for k in cfg.models}
        for m in result.fold_metrics:
            step, pre = int(m["fold"]), prefix[m["model"]]
            for key, value in m.items():
                if key not in ("fold", "model"):
                    mlflow.log_metric(f"{pre}{key}", value, step=step)
                    mlflow.log_metric(f"{pre}fold{step}_{key}", value)
        for kind in cfg.models:
            own = [m for m in result.fold_metrics if m["model"] == kind]
            for key in ("auc", "logloss", "accuracy", "rank_ic"):
                values = [m[key] for m in own]
                mlflow.log_metric(f"{prefix[kind]}mean_{key}", sum(values) / len(values))
        mlflow.log_dict({"fold_params": result.fold_params}, "fold_params.json")
        # Every configuration tried, over all folds and kinds: what a tuned figure is judged by.
        mlflow.set_tag("trials_total", sum(int(m["trials"]) for m in result.fold_metrics))
        # The windows each fold trained, validated and tested on, as `quantlab train folds` prints.
        mlflow.log_text(folds.write_csv(), FOLDS_ARTIFACT)
        # The primary kind's final model is `model` and is registered; others are logged beside.
        for kind, fitted in result.models.items():
            flavor = mlflow.lightgbm if kind == "lightgbm" else mlflow.xgboost
            primary = kind == result.primary
            flavor.log_model(
                fitted.booster,
                name="model" if primary else f"model_{kind}",
                registered_model_name=cfg.register_as if primary else None,
                conda_env=model_environment(),
            )
        return run.info.run_id


def run(ctx: RunContext, features: DatasetRef, labels: DatasetRef) -> DatasetRef:
    """Walk-forward train on `features` x `labels`; write out-of-fold `predictions`."""
    cfg = ctx.config.train
    inputs = [features, labels]
    cfg_hash = slice_hash(ctx.config, READS, IGNORES)
    key = stage_key(ctx, inputs)
    # Skip before the expensive part: same inputs, config and code were already trained.
    if (done := ctx.catalog.find(DATASET, key)) is not None:
        return done
    args = walk_forward_args(ctx, features, labels)
    data, feature_cols, splits = args["data"], args["features"], args["splits"]
    result = walk_forward(**args, search=search_settings(ctx.config, key))
    run_id = _log_run(ctx, result, feature_cols, inputs, fold_table(data, splits))
    return ctx.catalog.write(
        DATASET,
        result.predictions,
        stage="train",
        inputs=inputs,
        config_hash=cfg_hash,
        extra={
            "mlflow_run_id": run_id,
            "mlflow_experiment": cfg.experiment,
            "seed": cfg.seed,
            "trials": sum(int(m["trials"]) for m in result.fold_metrics),
            "fold_metrics": json.loads(json.dumps(result.fold_metrics)),
        },
    )
