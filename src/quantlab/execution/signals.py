"""The `signals` task of the paper_trading DAG: the champion's signals on the newest bars, sized.

    champion's predictions (its `quantlab.oos` version) ∪ its live scores of newer bars
        -> portfolio.sizing.size_targets (the risk stage's one sizing function) -> targets

The research DAG trades the targets of the predictions it just trained, once the gate made
them the champion's; between retrains, the champion scores each new bar (`score_live`, the
model monitor's task) and this sizes those scores with the same function, so paper trading
follows the champion bar by bar without training anything. The targets version names the
champion's run id, which the paper stage checks against the registry before trading.
"""

from __future__ import annotations

import polars as pl

from quantlab.catalog import DatasetRef, TrainingRun
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.errors import DataError
from quantlab.portfolio.sizing import size_targets
from quantlab.quality.read import load_bars
from quantlab.vocab import KEY, bars_per_year

READS = ("universe", "risk", "signal", "train.models", "labels.horizon")
_PROBS = ("prob_up", "prob_down", "prob_flat")


def champion(ctx: RunContext):
    """The main model's champion (`train.register_as`), or a DataError saying how to get one."""
    from quantlab.tracking.registry import registry_for

    name = ctx.config.train.register_as
    if name is None or ctx.config.train.per_symbol:
        raise DataError(
            "paper_trading follows the pooled champion of train.register_as; this config has "
            "none (train.register_as null or train.per_symbol true): run the research DAG instead"
        )
    ref = registry_for(ctx.config.tracking.uri).champion(name)
    if ref is None:
        raise DataError(
            f"{name} has no champion yet; run the research DAG (its promote task names one)"
        )
    return ref


def champion_scores(
    ctx: RunContext, model, live: DatasetRef | None
) -> tuple[pl.DataFrame, DatasetRef]:
    """(symbol, open_time, score, prob_*) of the champion: its own predictions, then its live
    scores of the bars after them; and the predictions version they came from."""
    from quantlab.lifecycle.oos import parse_ref

    tag = model.meta("oos")
    if not tag:
        raise DataError(
            f"{model} carries no quantlab.oos tag: it was not registered by quantlab's train stage"
        )
    source = parse_ref(tag)
    # The registry outlives a catalog (make clean, a rebuilt data folder): a version number
    # alone may name another training's predictions now. Its run id must be the champion's.
    held = ctx.catalog.exists(source.name) and source.version in {
        v.ref.version for v in ctx.catalog.versions(source.name)
    }
    if not held or ctx.catalog.extra(source, TrainingRun).mlflow_run_id != model.meta("run_id"):
        raise DataError(
            f"{model} is champion, but this catalog does not hold its predictions ({tag} here is "
            f"not its training's): the catalog was rebuilt after it was trained. Promote a model "
            f"trained on this catalog (`quantlab model list`, `quantlab model promote VERSION`)"
        )
    lf = ctx.catalog.scan(source)
    if (kind := model.meta("oos_model")) and "model" in lf.collect_schema().names():
        lf = lf.filter(pl.col("model") == kind)
    own = lf.select(*KEY, "score", *_PROBS).collect().unique(list(KEY), keep="last")
    parts = [own]
    if live is not None:
        newer = (
            ctx.catalog.scan(live)
            .filter(
                (pl.col("model") == model.name)
                & (pl.col("version") == model.version)
                & (pl.col("open_time") > own["open_time"].max())
            )
            .select(*KEY, "score", *_PROBS)
            .collect()
        )
        parts.append(newer)
    return pl.concat(parts).sort(*KEY), source


def run(
    ctx: RunContext, klines: DatasetRef, checks: DatasetRef, live: DatasetRef | None = None
) -> DatasetRef:
    """Targets for the champion's scores up to the newest bar; written as a `targets` version."""
    config = ctx.config
    model = champion(ctx)
    scores, source = champion_scores(ctx, model, live)
    bars = load_bars(ctx, klines, checks).select(*KEY, "open", "close").collect()
    targets = size_targets(
        scores, bars, config.risk, config.signal,
        periods_per_year=bars_per_year(config.universe.interval), horizon=config.labels.horizon,
    ).with_columns(pl.lit(-1, pl.Int32).alias("fold"))  # fmt: skip
    inputs = [r for r in (source, live, klines, checks) if r is not None]
    return ctx.catalog.write(
        "targets",
        targets,
        stage="signals",
        inputs=inputs,
        config_hash=slice_hash(config, READS),
        extra={
            "policy": config.risk.policy,
            "rows": targets.height,
            "champion": f"{model.name} v{model.version}",
            "champion_run_id": model.meta("run_id"),
            "predictions": str(source),
            "newest_open_time": str(targets["open_time"].max()),
        },
    )


def newest_inputs(ctx: RunContext, event: dict | None) -> dict:
    """The klines (and checks) an Asset event names, else the newest of each, with the newest
    exchange_info and its checks: the versions one paper_trading run reads."""
    from quantlab.catalog import DatasetRef

    cat = ctx.catalog
    out = {}
    for name in ("klines", "klines_checks", "exchange_info", "exchange_info_checks"):
        if event and name in event:
            out[name] = DatasetRef.from_dict(event[name]).to_dict()
        elif cat.exists(name):
            out[name] = cat.latest(name).to_dict()
        else:
            raise DataError(
                f"no {name} in {cat.root} yet: run the market_data or research DAG first"
            )
    return out


def predictions_of(ctx: RunContext, targets: DatasetRef) -> DatasetRef:
    """The predictions version behind `targets`: the champion's (signals) or the training's (risk)."""
    from quantlab.catalog import RiskRun
    from quantlab.lifecycle.oos import parse_ref

    extra = ctx.catalog.extra(targets, RiskRun)
    if extra.predictions:
        return parse_ref(extra.predictions)
    from quantlab.catalog import DatasetRef

    version = ctx.catalog.lineage(targets).inputs.get("predictions")
    if version is None:
        raise DataError(f"{targets} names no predictions version in its lineage")
    return DatasetRef("predictions", version)
