"""`run` for the train stage: load features and labels, walk forward, log to MLflow, write
`feature_importance` (SHAP per fold) and `predictions`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from quantlab.catalog import DatasetRef, fingerprint
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.errors import DataError
from quantlab.labels import target_column
from quantlab.train.explain_io import importance_done, record_explanations
from quantlab.train.search import search_settings
from quantlab.train.splits import Split, make_splits
from quantlab.train.targets import label_column, with_target_time
from quantlab.train.tracked import FOLDS_ARTIFACT, log_training, tag_output  # noqa: F401 (FOLDS_ARTIFACT: its old home)
from quantlab.train.walkforward import WalkForwardResult, walk_forward
from quantlab.vocab import KEY

DATASET = "predictions"
# The config this stage reads, its fingerprint. Where MLflow logs and the registered model's
# name change no prediction, so renaming them reuses the predictions instead of retraining.
# The pooled model codes the symbol by its place in universe.symbols, so their order is read.
# Each Optuna trial records its valid Sharpe after the signal rule and costs, so those are read.
# Where the studies live (train.storage) and how often a worker beats (train.heartbeat_s) change
# no trial: the study names come from this fingerprint, so moving the storage only moves them.
READS = (
    "train",
    "labels.horizon",
    "universe.interval",
    "universe.symbols",
    "signal",
    "universe.market",
    "backtest.fees",
    "backtest.slippage.half_spread_bps",
)
IGNORES = ("train.experiment", "train.register_as", "train.storage", "train.heartbeat_s")


def training_frame(ctx: RunContext, features: DatasetRef, labels: DatasetRef) -> pl.DataFrame:
    """Features joined to labels, `label_time` the configured target's own resolution time
    (so the splits purge a triple barrier by `tb_time`)."""
    feats = ctx.catalog.read(features)
    labs = ctx.catalog.read(labels)
    data = feats.join(labs, on=list(KEY), how="inner")
    if data.height == 0:
        raise DataError(
            f"{features} and {labels} share no (symbol, open_time) rows; "
            "build both from the same klines version"
        )
    return with_target_time(data, ctx.config.train.target, ctx.config.labels)


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
        "target": label_column(ctx.config.train.target, ctx.config.labels),
        # Every target's score is judged against the same forward return, so IC and hit
        # rate compare across targets.
        "return_col": target_column(ctx.config.labels),
        "cfg": ctx.config.train,
        "splits": splits_of(ctx, data),
        "symbols": ctx.config.universe.symbols,
    }


def splits_of(ctx: RunContext, data: pl.DataFrame) -> list[Split]:
    """The walk-forward folds of the training frame under this config."""
    return make_splits(
        data,
        ctx.config.train,
        interval=ctx.config.universe.interval,
        horizon=ctx.config.labels.horizon,
    )


@dataclass(frozen=True)
class Trained:
    """A walk-forward and what it ran on: the training frame, its feature columns, its folds."""

    data: pl.DataFrame
    features: list[str]
    splits: list[Split]
    result: WalkForwardResult


def train_predictions(
    ctx: RunContext, features: DatasetRef, labels: DatasetRef, **options: Any
) -> Trained:
    """The walk-forward of `features` x `labels` under `ctx.config`, writing nothing: the one
    code path `run` and `quantlab train reproduce` share, so a rerun is the same computation.

    `options` go to `walk_forward` as they are: where run and reproduce differ (the study
    storage: reproduce never opens the original's stored studies).
    """
    args = walk_forward_args(ctx, features, labels)
    result = walk_forward(**args, **options)
    return Trained(args["data"], args["features"], args["splits"], result)


def run(ctx: RunContext, features: DatasetRef, labels: DatasetRef) -> DatasetRef:
    """Walk-forward train on `features` x `labels`; write out-of-fold `predictions`."""
    cfg = ctx.config.train
    inputs = [features, labels]
    cfg_hash = slice_hash(ctx.config, READS, IGNORES)
    key = stage_key(ctx, inputs)
    # Skip before the expensive part: same inputs, config and code were already trained.
    # `feature_importance` is written just before `predictions`; both must hold this training.
    if (done := ctx.catalog.find(DATASET, key)) is not None and importance_done(ctx, key):
        return done
    trained = train_predictions(ctx, features, labels, search=search_settings(ctx.config, key))
    result = trained.result
    tracked = log_training(ctx, trained, inputs, cfg_hash)
    # SHAP (quantlab.train.explain_io): stability and beeswarms to the run, `feature_importance`.
    record_explanations(ctx, result, inputs, cfg_hash, tracked.run_id)
    ref = ctx.catalog.write(
        DATASET,
        result.predictions,
        stage="train",
        inputs=inputs,
        config_hash=cfg_hash,
        extra={
            "mlflow_run_id": tracked.run_id,
            "mlflow_experiment": cfg.experiment,
            "seed": cfg.seed,
            "trials": sum(int(m["trials"]) for m in result.fold_metrics),
            "fold_metrics": json.loads(json.dumps(result.fold_metrics)),
            # Where each trial's parameters, value and validation Sharpe are (None: no studies).
            "trials_artifact": tracked.trials_artifact,
            # Each trial's annualised validation Sharpe (None: pruned, failed or a flat book),
            # so the backtest's deflated Sharpe reads its N and V[SR] without MLflow.
            "trial_sharpes": [
                None if v is None or v != v else float(v)
                for v in result.trials["valid_sharpe"].to_list()
            ],
        },
    )
    # The version is known only now; the run points to it, as it points to its inputs.
    tag_output(ctx, tracked.run_id, ref)
    return ref
