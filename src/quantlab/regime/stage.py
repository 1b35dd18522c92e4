"""`run` for the regime stage: load features and labels, walk one six-class model per symbol
forward, log and register each symbol's final model, write `regime_predictions`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantlab.catalog import DatasetRef, fingerprint
from quantlab.config import Config, TrainConfig, slice_hash
from quantlab.errors import ConfigError
from quantlab.regime.tracked import describe_oos, log_regime
from quantlab.regime.train import RegimeResult, train_regimes, training_frame
from quantlab.train.search import SearchSettings
from quantlab.vocab import KEY

if TYPE_CHECKING:
    from quantlab.context import RunContext

DATASET = "regime_predictions"
STAGE = "regime"
# The `train` settings the regime walk-forward shares with the main one: its windows, its
# seed, early stopping and pruning. Its trials and rounds are lifecycle.regime's own.
TRAIN_KEYS = (
    "window",
    "train_bars",
    "min_train_fraction",
    "folds",
    "test_bars",
    "test_period",
    "valid_fraction",
    "valid_bars",
    "embargo_bars",
    "early_stopping_rounds",
    "pruner",
    "prune_percentile",
    "prune_warmup_rounds",
    "prune_startup_trials",
    "report_interval",
    "seed",
)
# The config this stage reads, its fingerprint. register_as names the `model` column, so it
# is read; the gate's metric and the on/off switch change no prediction.
READS = (
    "lifecycle.regime",
    "labels.regime.horizon",
    "universe.interval",
    "universe.symbols",
    *(f"train.{k}" for k in TRAIN_KEYS),
)
IGNORES = ("lifecycle.regime.enabled", "lifecycle.regime.metric")


def enabled(config: Config) -> bool:
    """Whether this config trains regime models: they are on and the labels carry a regime."""
    return config.lifecycle.regime.enabled and config.labels.regime is not None


def regime_train_config(config: Config) -> TrainConfig:
    """`train` with the regime model's own trials and boosting rounds."""
    regime = config.lifecycle.regime
    return config.train.model_copy(
        update={"trials": regime.trials, "num_boost_round": regime.num_boost_round}
    )


def stage_key(ctx: RunContext, inputs: list[DatasetRef]) -> str:
    return fingerprint(STAGE, inputs, slice_hash(ctx.config, READS, IGNORES))


def train(ctx: RunContext, features: DatasetRef, labels: DatasetRef, key: str) -> RegimeResult:
    """The walk-forward of `features` x `labels` under `ctx.config`, writing nothing."""
    config = ctx.config
    if config.labels.regime is None:
        raise ConfigError("labels.regime is null, so there is no regime label to learn")
    horizon = config.labels.regime.horizon
    feats = ctx.catalog.read(features)
    data = training_frame(feats, ctx.catalog.read(labels), horizon)
    data = data.filter(data["symbol"].is_in(list(config.universe.symbols)))
    return train_regimes(
        data,
        [c for c in feats.columns if c not in KEY],
        regime_train_config(config),
        prefix=config.lifecycle.regime.register_as,
        interval=config.universe.interval,
        horizon=horizon,
        symbols=config.universe.symbols,
        # In memory: a handful of trials per fold, cheaper to rerun than to store.
        search=SearchSettings(study_prefix=f"regime-{key}"),
    )


def run(ctx: RunContext, features: DatasetRef, labels: DatasetRef) -> DatasetRef | None:
    """Train, register and write `regime_predictions`; None when regime models are off."""
    if not enabled(ctx.config):
        return None
    inputs = [features, labels]
    cfg_hash = slice_hash(ctx.config, READS, IGNORES)
    key = stage_key(ctx, inputs)
    # Same inputs, config and code: already trained and registered; the gate judged it.
    if (done := ctx.catalog.find(DATASET, key)) is not None:
        return done
    result = train(ctx, features, labels, key)
    for symbol, reason in result.skipped.items():
        print(f"regime: no model for {symbol}: {reason}")
    tracked = log_regime(ctx, result, inputs, cfg_hash)
    ref = ctx.catalog.write(
        DATASET,
        result.predictions,
        stage=STAGE,
        inputs=inputs,
        config_hash=cfg_hash,
        extra={
            # promote.regime_candidates reads exactly this: {registered name: version}.
            "registered": tracked.registered,
            "mlflow_run_id": tracked.run_id,
            "mlflow_experiment": ctx.config.train.experiment,
            "seed": ctx.config.train.seed,
            "fold_metrics": result.fold_metrics,
            "skipped": result.skipped,
        },
    )
    describe_oos(ctx, tracked.registered, ref)
    return ref
