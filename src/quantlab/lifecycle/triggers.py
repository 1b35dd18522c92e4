"""Retrain triggers (`lifecycle.triggers`): per configured model, full | incremental | none,
with the reason and the numbers behind it.

    labels, live_predictions -> retrain_triggers (one row per model, and one "ALL" row:
    the strongest action, what the model_monitor DAG starts)

Rules, in order (`decide`, pure):
1. full: the champion's live `metric` over the last `window_days` is worse than `full_below`
   (below it; above it for logloss and brier) on at least `min_rows` live rows. Main models
   only: `full_below` is a level for the main model's metric, and a six-class regime model's
   accuracy has another scale. Out-of-sample rows (no live rows in the window) never fire it:
   they say nothing about decay since training.
2. full: new labelled bars since the last full retrain (the newest version with
   `quantlab.mode` = full; its train_end) >= `full_after_bars`.
3. incremental: new labelled bars since the champion's train_end >= `incremental_after_bars`.
4. none; also for a model with no champion yet: the scheduled full retrain trains it (a
   trigger there would start a full retrain every monitor run until one exists).
A "new labelled bar" is a bar time (open_time) of the model's symbols whose label resolved
after that train_end and by `as_of`. A rule whose setting is null is off.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.config.lifecycle import LOWER_IS_BETTER, TriggersConfig
from quantlab.lifecycle.accuracy import (
    Scope,
    in_window,
    join_truth,
    live_scores,
    model_truth,
    resolved,
)
from quantlab.lifecycle.evaluate import score
from quantlab.lifecycle.live import Model, configured_models, train_end
from quantlab.tracking.registry import ModelRef, registry_for

if TYPE_CHECKING:
    from quantlab.context import RunContext

DATASET = "retrain_triggers"
RANK = {"none": 0, "incremental": 1, "full": 2}


@dataclass(frozen=True)
class Facts:
    """What the rules read about one model."""

    model: str
    family: str
    champion_version: int | None
    metric: str
    metric_value: float | None  # over the window, on live rows; None: no live rows
    metric_rows: int
    bars_since_full: int | None  # None: no full version
    full_version: int | None
    bars_since_champion: int | None


@dataclass(frozen=True)
class Trigger:
    model: str
    action: str  # full | incremental | none
    reason: str
    details: dict[str, Any]


def _worse(metric: str, value: float, level: float) -> bool:
    return value > level if metric in LOWER_IS_BETTER else value < level


def decide(cfg: TriggersConfig, f: Facts) -> Trigger:
    """The action for one model (module docstring), with its reason and numbers."""
    details = {**asdict(f), "config": cfg.model_dump(mode="json")}

    def out(action: str, reason: str) -> Trigger:
        return Trigger(f.model, action, reason, details)

    if f.champion_version is None:
        return out(
            "none",
            f"{f.model} has no champion, so nothing to track; the next scheduled full retrain "
            "(or `make run`) trains one, and `quantlab health` reports it meanwhile",
        )
    if cfg.full_below is not None and f.family == "main" and f.metric_value is not None:
        word = "above" if f.metric in LOWER_IS_BETTER else "below"
        if f.metric_rows >= cfg.min_rows and _worse(f.metric, f.metric_value, cfg.full_below):
            return out(
                "full",
                f"live {f.metric} {f.metric_value:.4f} over the last {cfg.window_days} days "
                f"({f.metric_rows} rows) is {word} {cfg.full_below}",
            )
    if (
        cfg.full_after_bars is not None
        and f.bars_since_full is not None
        and f.bars_since_full >= cfg.full_after_bars
    ):
        return out(
            "full",
            f"{f.bars_since_full} new labelled bars since the last full retrain "
            f"(v{f.full_version}) >= {cfg.full_after_bars}",
        )
    if (
        cfg.incremental_after_bars is not None
        and f.bars_since_champion is not None
        and f.bars_since_champion >= cfg.incremental_after_bars
    ):
        return out(
            "incremental",
            f"{f.bars_since_champion} new labelled bars since the champion "
            f"v{f.champion_version} was trained >= {cfg.incremental_after_bars}",
        )
    return out("none", _quiet(cfg, f))


def _quiet(cfg: TriggersConfig, f: Facts) -> str:
    live = (
        "no live rows in the window"
        if f.metric_value is None
        else f"live {f.metric} {f.metric_value:.4f} on {f.metric_rows} rows"
    )
    return (
        f"no trigger: {live}; {f.bars_since_full} new labelled bars since the last full "
        f"retrain (< {cfg.full_after_bars}), {f.bars_since_champion} since the champion "
        f"(< {cfg.incremental_after_bars})"
    )


def combine(triggers: list[Trigger]) -> Trigger:
    """The strongest action of all models (full > incremental > none), for the DAG."""
    top = max(triggers, key=lambda t: RANK[t.action], default=None)
    if top is None:
        return Trigger("ALL", "none", "no configured model", {})
    movers = [t for t in triggers if t.action == top.action]
    reason = "; ".join(f"{t.model}: {t.reason}" for t in movers)
    return Trigger("ALL", top.action, reason, {t.model: t.action for t in triggers})


def new_bars(truth: pl.DataFrame, since: datetime | None) -> int | None:
    """Bar times whose label resolved after `since` (truth already cut at as_of)."""
    if since is None:
        return None
    after = truth.filter(pl.col("label_time") > pl.lit(since).cast(pl.Datetime("ms", "UTC")))
    return after["open_time"].n_unique()


# -- what the rules read, from the registry and the catalog --------------------------------


def last_full(versions: list[ModelRef]) -> ModelRef | None:
    """The newest version trained from scratch (`quantlab.mode` = full)."""
    full = [v for v in versions if v.meta("mode") == "full"]
    return full[-1] if full else None


def facts_for(ctx: RunContext, model: Model, labels: pl.DataFrame, as_of: datetime) -> Facts:
    cfg = ctx.config.lifecycle.triggers
    reg = registry_for(ctx.config.tracking.uri)
    champion = reg.champion(model.name)
    if champion is None:
        return Facts(model.name, model.family, None, cfg.metric, None, 0, None, None, None)
    truth = resolved(model_truth(ctx, model, champion, labels), as_of)
    full = last_full(reg.versions(model.name))
    value, rows = None, 0
    if not truth.is_empty() and model.family == "main":
        live = in_window(
            join_truth(live_scores(ctx, champion), truth),
            truth["label_time"].max(),
            cfg.window_days,
        )
        scope = Scope(model.name, champion.version, model.family, cfg.metric)
        rows, value = live.height, (score(scope.family, cfg.metric, live) if live.height else None)
    return Facts(
        model.name,
        model.family,
        champion.version,
        cfg.metric,
        value,
        rows,
        new_bars(truth, train_end(full) if full else None),
        full.version if full else None,
        new_bars(truth, train_end(champion)),
    )


def run(
    ctx: RunContext,
    labels: DatasetRef,
    live: DatasetRef | None = None,
    *,
    as_of: datetime | None = None,
    log: bool = True,
) -> tuple[Trigger, DatasetRef | None]:
    """Decide for every configured model; write each decision and the combined one to
    `retrain_triggers` (every call, "none" included) and, with `log`, to an MLflow run."""
    from quantlab.lifecycle.monitor_runs import log_trigger

    as_of = as_of or datetime.now(UTC)
    cfg = ctx.config.lifecycle.triggers
    frame = ctx.catalog.read(labels)
    triggers = [decide(cfg, facts_for(ctx, m, frame, as_of)) for m in configured_models(ctx.config)]
    overall = combine(triggers)
    rows = [
        {
            "decided_at": as_of,
            "model": t.model,
            "action": t.action,
            "reason": t.reason,
            "details": json.dumps(t.details, default=str),
        }
        for t in [*triggers, overall]
    ]
    schema = dict(ctx.catalog.registry[DATASET].schema)
    inputs = [r for r in (labels, live) if r is not None]
    ref = ctx.catalog.upsert(
        DATASET, pl.DataFrame(rows, schema=schema), stage="live", inputs=inputs
    )
    if log:
        log_trigger(ctx, overall.action, overall.reason, [asdict(t) for t in triggers], as_of)
    print(f"retrain trigger: {overall.action}. {overall.reason}")
    return overall, ref


def run_latest(
    ctx: RunContext, live: DatasetRef | None = None, *, as_of: datetime | None = None
) -> tuple[Trigger, DatasetRef | None]:
    """`run` on the catalog's newest labels and `live` (else the newest live predictions)."""
    if live is None and ctx.catalog.exists("live_predictions"):
        live = ctx.catalog.latest("live_predictions")
    return run(ctx, ctx.catalog.latest("labels"), live, as_of=as_of)
