"""Rerun a training run from what MLflow recorded and check its predictions bit for bit.

The run's tags name the `features` and `labels` versions it read and the `predictions`
version it wrote; its `config.json` artifact holds the config (secrets masked, none of which
training reads), with the seed. The rerun goes through `train_predictions`, the stage's own
code path, and writes nothing: no catalog version, no MLflow run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantlab.catalog import DatasetRef, TrainingRun
from quantlab.codeversion import code_version
from quantlab.config import Config, config_slice, slice_hash
from quantlab.context import RunContext
from quantlab.errors import ConfigError, DataError, DatasetNotFound
from quantlab.tracking import Redactor
from quantlab.tracking.redact import MASK
from quantlab.train.compare import Difference, first_difference
from quantlab.train.stage import DATASET, IGNORES, READS, train_predictions
from quantlab.train.tracked import CONFIG_ARTIFACT, INPUT_TAG, OUTPUT_TAG

# The config sections a training run's predictions depend on, taken from the run's record:
# those the stage hashes (READS) and the features whose columns it trains on. The rest
# (paths, the tracking store, the exchange) are this installation's.
RECORDED_SECTIONS = tuple(sorted({path.split(".")[0] for path in READS} | {"features"}))


@dataclass(frozen=True)
class Recorded:
    """What one MLflow training run says it was made from and what it made."""

    run_id: str
    config: Config
    features: DatasetRef
    labels: DatasetRef
    predictions: DatasetRef
    seed: int
    code_version: str


@dataclass(frozen=True)
class Reproduction:
    recorded: Recorded
    code_version: str  # the code that reran it
    rows: int
    difference: Difference | None

    @property
    def identical(self) -> bool:
        return self.difference is None


def _run(client: Any, run_id: str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise DataError(
            f"no MLflow run {run_id!r} in the tracking store {Redactor().text(uri)}; "
            "take the id from `quantlab summary` or the predictions lineage (mlflow_run_id)"
        ) from None


def _predictions_of(ctx: RunContext, run_id: str, tags: dict[str, str]) -> DatasetRef:
    """The `predictions` version the run wrote: its tag, else the version naming the run."""
    if OUTPUT_TAG in tags:
        return DatasetRef(DATASET, int(tags[OUTPUT_TAG]))
    if ctx.catalog.exists(DATASET):
        for info in reversed(ctx.catalog.versions(DATASET)):
            if info.lineage and TrainingRun.of(info.lineage).mlflow_run_id == run_id:
                return info.ref
    raise DatasetNotFound(
        f"run {run_id} names no predictions version and none in the catalog names the run; "
        "it did not finish writing, or the catalog is another one than the run's"
    )


def rerun_options(config: Config, features: DatasetRef, labels: DatasetRef) -> dict[str, Any]:
    """What `train_predictions` gets beyond the stage's defaults for a rerun: its Optuna
    studies run in memory, so the rerun neither loads the original's stored studies (whose
    finished trials it would reuse instead of searching again) nor adds trials to them. The
    study names, sampler seeds and Sharpe rule are the run's.
    """
    from dataclasses import replace

    from quantlab.catalog import fingerprint
    from quantlab.config import slice_hash
    from quantlab.train.search import search_settings
    from quantlab.train.stage import IGNORES, READS

    key = fingerprint("train", [features, labels], slice_hash(config, READS, IGNORES))
    return {"search": replace(search_settings(config, key), storage=None)}


def read_recorded(ctx: RunContext, run_id: str) -> Recorded:
    """Run `run_id`'s inputs, output, config and seed, from the tracking store of `ctx`."""
    import mlflow

    uri = ctx.config.tracking.uri
    client = mlflow.MlflowClient(uri)
    run = _run(client, run_id, uri)
    tags = run.data.tags
    missing = [t for t in (f"{INPUT_TAG}features", f"{INPUT_TAG}labels", "seed") if t not in tags]
    if missing:
        raise DataError(
            f"run {run_id} lacks the tags {missing}: it was logged before training recorded its "
            "lineage, so it cannot be reproduced; retrain with `quantlab run train`"
        )
    path = Path(client.download_artifacts(run_id, CONFIG_ARTIFACT))
    saved = Config.model_validate(json.loads(path.read_text()))
    config = ctx.config.model_copy(update={s: getattr(saved, s) for s in RECORDED_SECTIONS})
    # A value masked in the artifact (a password in a study storage URL) cannot hash as it
    # did; the rerun does not read it (its studies run in memory), so only then is it skipped.
    masked = MASK in json.dumps(config_slice(config, READS, IGNORES))
    if not masked and (got := slice_hash(config, READS, IGNORES)) != tags.get("config_hash"):
        raise ConfigError(
            f"run {run_id}'s {CONFIG_ARTIFACT} hashes to {got}, but the run recorded config "
            f"hash {tags.get('config_hash')}; the artifact is not the config it trained with"
        )
    if str(saved.train.seed) != tags["seed"]:
        raise ConfigError(
            f"run {run_id} tags seed {tags['seed']} but its {CONFIG_ARTIFACT} says "
            f"{saved.train.seed}; the record is inconsistent"
        )
    return Recorded(
        run_id=run_id,
        config=config,
        features=DatasetRef("features", int(tags[f"{INPUT_TAG}features"])),
        labels=DatasetRef("labels", int(tags[f"{INPUT_TAG}labels"])),
        predictions=_predictions_of(ctx, run_id, tags),
        seed=saved.train.seed,
        code_version=tags.get("code_version", "unknown"),
    )


def reproduce(ctx: RunContext, run_id: str) -> Reproduction:
    """Rerun `run_id`'s walk-forward on its recorded versions and config; compare its
    predictions with the version the run wrote."""
    recorded = read_recorded(ctx, run_id)
    rerun_ctx = RunContext(config=recorded.config, catalog=ctx.catalog)
    options = rerun_options(recorded.config, recorded.features, recorded.labels)
    trained = train_predictions(rerun_ctx, recorded.features, recorded.labels, **options)
    expected = ctx.catalog.read(recorded.predictions)
    return Reproduction(
        recorded=recorded,
        code_version=code_version(),
        rows=expected.height,
        difference=first_difference(expected, trained.result.predictions),
    )
