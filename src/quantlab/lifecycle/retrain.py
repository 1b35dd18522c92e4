"""Retraining on schedules: the `incremental` stage and the two retrain graphs.

    full:         the research graph from scratch (ingest → … → train → regime → backtest →
                  promote): a new walk-forward on the whole history, judged by the gate.
    incremental:  ingest → validate → features → labels → incremental.

`run_incremental` (features, labels → `holdout_predictions`, then `model_decisions`):
each registered model with a champion (the main `train.register_as`, pooled or per symbol,
and each `<lifecycle.regime.register_as>-<SYMBOL>`) is continued on the bars labelled since
its `train_end` (`quantlab.lifecycle.incremental`), logged to MLflow (run `incremental` in
`train.experiment`), registered as challenger, and scored with its champion on the held-out
bars; the gate (`promote.judge_all`) decides. The stage never moves `champion` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from quantlab.catalog import DatasetRef, fingerprint
from quantlab.config import slice_hash
from quantlab.errors import DataError
from quantlab.lifecycle import incremental as inc
from quantlab.lifecycle.promote import Candidate, judge_all, registry
from quantlab.pipeline import Stage, retrain_graph, run_stage
from quantlab.tracking.registry import ModelRef, Registry
from quantlab.vocab import KEY, REGIMES

if TYPE_CHECKING:
    from quantlab.context import RunContext
    from quantlab.serving.model import LoadedModel

DATASET = "holdout_predictions"
STAGE = "retrain"
READS = ("lifecycle.incremental", "labels", "train.seed")
NOTES = (("dsr", "incremental: no backtest"), ("shap_stability", "incremental: no folds"))


def run_graph(ctx: RunContext, stages: Sequence[Stage]) -> dict[str, DatasetRef | None]:
    """Run `stages` once in order (each on its upstream's outputs); what each produced."""
    produced: dict[str, DatasetRef | None] = {}
    for node in stages:
        # An optional input whose stage is not in this graph is absent (None).
        refs = [produced.get(n[:-1]) if n.endswith("?") else produced[n] for n in node.inputs]
        produced[node.name] = run_stage(ctx, node, refs)
    return produced


# -- the incremental stage ------------------------------------------------------------------


def families(ctx: RunContext) -> list[tuple[str, str]]:
    """(registered name, family) of every model the retrain DAGs keep current."""
    cfg, symbols = ctx.config, ctx.config.universe.symbols
    out: list[tuple[str, str]] = []
    if (main := cfg.train.register_as) is not None:
        names = [f"{main}-{s}" for s in symbols] if cfg.train.per_symbol else [main]
        out += [(n, "main") for n in names]
    regime = cfg.lifecycle.regime
    if regime.enabled and cfg.labels.regime is not None:
        out += [(f"{regime.register_as}-{s}", "regime") for s in symbols]
    return out


@dataclass(frozen=True)
class Built:
    name: str
    family: str
    champion: ModelRef
    model: LoadedModel  # the update, scoring like its champion
    rows: inc.UpdateRows
    added: int


def model_frame(
    ctx: RunContext, data: pl.DataFrame, champion: ModelRef, family: str
) -> tuple[pl.DataFrame, str]:
    """`data` (features x labels) as the champion's training saw it: its symbols, its label
    column and `label_time` its label's resolution time. Returns (frame, label column)."""
    from quantlab.train.targets import label_column, with_target_time

    labels = ctx.config.labels
    if family == "regime":
        h = labels.regime.horizon  # type: ignore[union-attr]
        target = f"regime_{h}"
        frame = data.with_columns(pl.col(f"label_time_{h}").alias("label_time"))
    else:
        kind_target = champion.meta("target") or ctx.config.train.target
        target = label_column(kind_target, labels)
        frame = with_target_time(data, kind_target, labels)
    if symbol := champion.meta("symbol"):
        frame = frame.filter(pl.col("symbol") == symbol)
    else:
        frame = frame.filter(pl.col("symbol").is_in(champion.meta_json("symbols", [])))
    return frame, target


def encoded(model: LoadedModel, family: str, y: pl.Series) -> Any:
    from quantlab.train.targets import encode

    values = y.cast(pl.Float64).to_numpy()
    return values if family == "regime" else encode(model.task, values)  # type: ignore[arg-type]


def build_update(
    ctx: RunContext, reg: Registry, name: str, family: str, champion: ModelRef, data: pl.DataFrame
) -> Built | inc.Skipped:
    """The champion continued on its new rows (not yet logged or registered), or why not."""
    from datetime import datetime

    from quantlab.serving.model import load_model
    from quantlab.train.models import THREADS

    cfg = ctx.config.lifecycle.incremental
    frame, target = model_frame(ctx, data, champion, family)
    end = champion.meta("train_end")
    rows = inc.select_rows(
        frame,
        target=target,
        train_end=datetime.fromisoformat(end) if end else None,
        holdout_bars=cfg.holdout_bars,
        min_new_bars=cfg.min_new_bars,
    )
    if isinstance(rows, inc.Skipped):
        return rows
    model = load_model(reg, champion)
    x = model.matrix(rows.update)
    fit, valid = inc.split_valid(rows.update)
    n_classes = len(REGIMES) if family == "regime" else len(model.classes or ()) or 1
    update = inc.update_booster(
        model.kind,
        model.booster,
        x,
        encoded(model, family, rows.update[target]),
        method=cfg.method,
        task=model.task,
        n_classes=n_classes,
        champion_rounds=model.rounds or 10**9,
        rounds=cfg.rounds,
        decay_rate=cfg.decay_rate,
        categorical=(x.shape[1] - 1,) if model.pooled else (),
        valid=valid,
        fit=fit,
        seed=ctx.config.train.seed,
        threads=THREADS,
    )
    updated = replace(model, booster=update.booster, rounds=update.rounds)
    return Built(name, family, champion, updated, rows, update.added)


def champions(ctx: RunContext, reg: Registry) -> list[tuple[str, str, ModelRef]]:
    found = []
    for name, family in families(ctx):
        if (ref := reg.champion(name)) is not None:
            found.append((name, family, ref))
    return found


def stage_key(
    ctx: RunContext, inputs: list[DatasetRef], current: list[tuple[str, str, ModelRef]]
) -> tuple[str, str]:
    """(config hash, the hash the output's fingerprint takes): the config this stage reads
    and the champions it continues, so new champions or config make a new update."""
    cfg_hash = slice_hash(ctx.config, READS)
    models = ",".join(f"{n}@{r.version}" for n, _, r in current)
    return cfg_hash, f"{cfg_hash}|{models}"


def run_incremental(ctx: RunContext, features: DatasetRef, labels: DatasetRef) -> DatasetRef | None:
    """The `incremental` stage (module docstring); None when no model had anything to learn."""
    from quantlab.lifecycle.retrain_record import holdout_frame, log_update, meta_of
    from quantlab.serving.model import load_model

    reg = registry(ctx)
    current = champions(ctx, reg)
    if not current:
        print("incremental: skipped: no model has a champion yet; run the full retrain first")
        return None
    inputs = [features, labels]
    cfg_hash, key_config = stage_key(ctx, inputs, current)
    key = fingerprint(STAGE, inputs, key_config)
    if (done := ctx.catalog.find(DATASET, key)) is not None:
        print(f"incremental: {done} already holds the updates of these inputs and champions")
        return done
    data = ctx.catalog.read(features).join(ctx.catalog.read(labels), on=list(KEY), how="inner")
    built: list[Built] = []
    for name, family, champion in current:
        out = build_update(ctx, reg, name, family, champion, data)
        if isinstance(out, inc.Skipped):
            print(f"incremental: {name}: skipped: {out.reason}")
        else:
            built.append(out)
    if not built:
        return None
    versions: list[ModelRef] = []
    frames = []
    for b in built:
        run_id, uri = log_update(ctx, b, inputs)
        ref = reg.register(b.name, uri, run_id, meta_of(ctx, b, inputs, run_id, cfg_hash))
        versions.append(ref)
        champion = load_model(reg, b.champion)
        frames.append(holdout_frame(ctx, b.model, b.rows.holdout, b.name, ref.version))
        frames.append(holdout_frame(ctx, champion, b.rows.holdout, b.name, b.champion.version))
    holdout = ctx.catalog.upsert(
        DATASET,
        pl.concat(frames),
        stage=STAGE,
        inputs=inputs,
        config_hash=key_config,
        extra={"registered": {r.name: r.version for r in versions}},
    )
    if holdout is None:  # no held-out rows at all: select_rows skips that case
        raise DataError("incremental: the updates scored no held-out bar; nothing to judge")
    candidates = []
    gate = ctx.config.lifecycle
    for b, ref in zip(built, versions, strict=True):
        oos = {"oos": f"{DATASET}@{holdout.version}", "oos_model": b.name}
        reg.describe(b.name, ref.version, oos)
        fresh = reg.version(b.name, ref.version)
        print(
            f"incremental: registered {fresh} ({gate.incremental.method}, +{b.added} trees, "
            f"from v{b.champion.version} on {b.rows.update.height} bars)"
        )
        metric = gate.regime.metric if b.family == "regime" else gate.gate.metric
        candidates.append(Candidate(fresh, b.family, metric, None, None, NOTES))
    judge_all(ctx, candidates, labels, [features, labels, holdout])
    return holdout


def run_retrain(ctx: RunContext, mode: str) -> dict[str, DatasetRef | None]:
    """A retrain `mode` (`quantlab.pipeline.retrain_graph`) without Airflow."""
    return run_graph(ctx, retrain_graph(mode))
