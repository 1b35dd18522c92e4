"""What an incremental update leaves behind: its MLflow run and model, the registry tags that
describe it, and its and its champion's rows of `holdout_predictions`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.codeversion import code_version, git_sha

if TYPE_CHECKING:
    from quantlab.context import RunContext
    from quantlab.lifecycle.retrain import Built
    from quantlab.serving.model import LoadedModel

RUN_NAME = "incremental"
# The META tags an update takes from its champion unchanged: what it is and what it reads.
INHERITED = ("family", "kind", "task", "target", "columns", "symbols", "symbol", "classes", "scale")
EXAMPLE_ROWS = 5


def log_update(ctx: RunContext, b: Built, inputs: list[DatasetRef]) -> tuple[str, str]:
    """Log the update as run `incremental` in `train.experiment`; (run id, model uri)."""
    import mlflow

    from quantlab.tracking import start_experiment
    from quantlab.tracking.models import log_booster

    cfg = ctx.config.lifecycle.incremental
    experiment_id = start_experiment(ctx.config.tracking, ctx.config.train.experiment)
    sample = b.rows.update.head(EXAMPLE_ROWS)
    example = pl.DataFrame(b.model.matrix(sample), schema=list(b.model.columns), orient="row")
    version = code_version()
    with mlflow.start_run(experiment_id=experiment_id, run_name=RUN_NAME) as run:
        mlflow.log_params(
            {
                "method": cfg.method,
                "rounds": cfg.rounds,
                "decay_rate": cfg.decay_rate,
                "holdout_bars": cfg.holdout_bars,
                "min_new_bars": cfg.min_new_bars,
                "model": b.name,
                "parent_version": b.champion.version,
            }
        )
        mlflow.set_tags(
            {
                "mode": "incremental",
                "code_version": version,
                "git_sha": git_sha(version) or "",
                **{f"input.{r.name}": r.version for r in inputs},
            }
        )
        mlflow.log_metrics(
            {
                "update_rows": b.rows.update.height,
                "holdout_rows": b.rows.holdout.height,
                "trees_added": b.added,
            }
        )
        info = log_booster(
            b.model.kind, b.model.booster, name="model", example=example, output=b.model.raw(sample)
        )
        return run.info.run_id, info.model_uri


def meta_of(
    ctx: RunContext, b: Built, inputs: list[DatasetRef], run_id: str, cfg_hash: str
) -> dict[str, Any]:
    """The update's META tags: its champion's where they still hold, then its own."""
    inherited = {k: b.champion.meta(k) for k in INHERITED}
    version = code_version()
    return {
        **inherited,
        "rounds": str(b.model.rounds),
        "inputs": json.dumps({r.name: r.version for r in inputs}),
        "train_end": b.rows.train_end.isoformat(),
        "mode": "incremental",
        "parent_version": str(b.champion.version),
        "code_version": version,
        "git_sha": git_sha(version) or "",
        "config_hash": cfg_hash,
        "run_id": run_id,
    }


def holdout_frame(
    ctx: RunContext, model: LoadedModel, holdout: pl.DataFrame, name: str, version: int
) -> pl.DataFrame:
    """`model`'s scores of the held-out bars as `holdout_predictions` rows of (name, version)."""
    schema = ctx.catalog.registry["holdout_predictions"].schema
    scored = model.predict(holdout).with_columns(
        pl.lit(name).alias("model"), pl.lit(version, pl.Int32).alias("version")
    )
    names = scored.columns
    return scored.select(
        [
            (pl.col(c) if c in names else pl.lit(None)).cast(dtype).alias(c)
            for c, dtype in dict(schema).items()
        ]
    )
