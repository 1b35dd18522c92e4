"""The live accuracy tracker: each champion's accuracy and its gate's metric over the last
7, 14 and 30 days (`lifecycle.tracker.windows_days`) of resolved labels, per symbol and
overall ("ALL").

    labels, live_predictions (and the champion's out-of-sample rows) -> live_accuracy

A window is (end - N days, end] in label time, `end` the newest label resolved by `as_of`:
a row counts once its outcome is known, on the day it became known. A window is scored on
the champion's live rows (`live_predictions`, scored after it was trained) when it holds
any; otherwise on its out-of-sample rows (`quantlab.lifecycle.oos.oos_scores`), marked
`source = "oos"`: a champion trained on everything the catalog holds (the shipped sample)
has no live rows, and says so instead of reporting nothing. Scoring is
`quantlab.lifecycle.evaluate.score`, the gate's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.lifecycle.evaluate import score
from quantlab.lifecycle.live import Model, configured_models
from quantlab.tracking.registry import ModelRef, registry_for

if TYPE_CHECKING:
    from quantlab.context import RunContext

DATASET = "live_accuracy"
ALL = "ALL"
UTC_MS = pl.Datetime("ms", "UTC")


@dataclass(frozen=True)
class Scope:
    """Whose rows are scored and how: the champion version, its family and the gate's metric."""

    model: str
    version: int
    family: str
    metric: str


def resolved(truth: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """The outcomes known at `as_of`: label_time <= as_of."""
    return truth.filter(pl.col("label_time") <= pl.lit(as_of).cast(UTC_MS))


def in_window(rows: pl.DataFrame, end: datetime, days: int) -> pl.DataFrame:
    """Rows whose label resolved in (end - days, end]."""
    start = pl.lit(end - timedelta(days=days)).cast(UTC_MS)
    return rows.filter(
        (pl.col("label_time") > start) & (pl.col("label_time") <= pl.lit(end).cast(UTC_MS))
    )


def join_truth(predictions: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Predictions joined to their resolved outcomes (inner: unresolved rows drop out)."""
    preds = predictions.with_columns(pl.col("open_time").cast(UTC_MS))
    return preds.join(
        truth.with_columns(pl.col("open_time").cast(UTC_MS)), on=["symbol", "open_time"]
    )


def summarize(
    scope: Scope, rows: pl.DataFrame
) -> list[tuple[str, int, float | None, float | None]]:
    """(symbol, rows, accuracy, metric) per symbol present, then ALL."""
    out = []
    groups = [(s, rows.filter(pl.col("symbol") == s)) for s in sorted(rows["symbol"].unique())]
    for symbol, part in [*groups, (ALL, rows)]:
        out.append(
            (
                symbol,
                part.height,
                score(scope.family, "accuracy", part),
                score(scope.family, scope.metric, part),
            )
        )
    return out


def track(
    scope: Scope,
    live: pl.DataFrame,
    oos: pl.DataFrame,
    truth: pl.DataFrame,
    windows_days: tuple[int, ...],
    as_of: datetime,
) -> pl.DataFrame:
    """`live_accuracy` rows of one champion (module docstring); empty when no label resolved.

    `live` and `oos` hold KEY plus the family's prediction columns; `truth` the outcomes
    (`main_truth`/`regime_truth`) of the symbols the model serves.
    """
    known = resolved(truth, as_of)
    schema = _schema()
    if known.is_empty():
        return pl.DataFrame(schema=schema)
    end = known["label_time"].max()
    by_source = {"live": join_truth(live, known), "oos": join_truth(oos, known)}
    rows = []
    for days in windows_days:
        source = "live" if not in_window(by_source["live"], end, days).is_empty() else "oos"
        window = in_window(by_source[source], end, days)
        for symbol, n, acc, value in summarize(scope, window):
            rows.append(
                {
                    "model": scope.model,
                    "version": scope.version,
                    "window_days": days,
                    "symbol": symbol,
                    "rows": n,
                    "accuracy": acc,
                    "metric": scope.metric,
                    "value": value,
                    "source": source,
                    "start": end - timedelta(days=days),
                    "end": end,
                    "as_of": as_of,
                }
            )
    return pl.DataFrame(rows, schema=schema)


def _schema() -> dict[str, pl.DataType]:
    from quantlab.catalog.datasets import DATASETS

    return dict(DATASETS[DATASET].schema)


# -- the stage -----------------------------------------------------------------------------


def metric_for(ctx: RunContext, family: str) -> str:
    """The gate's metric for `family` (what the tracker reports beside accuracy)."""
    lifecycle = ctx.config.lifecycle
    return lifecycle.regime.metric if family == "regime" else lifecycle.gate.metric


def live_scores(ctx: RunContext, ref: ModelRef) -> pl.DataFrame:
    """The rows `ref` scored live (KEY + its prediction columns); empty if none."""
    from quantlab.lifecycle.oos import scored_by

    rows = scored_by(ctx.catalog, ref, ref.meta("family", "main") or "main", "live_predictions")
    return (
        rows
        if rows is not None
        else pl.DataFrame(schema={"symbol": pl.String, "open_time": UTC_MS})
    )


def model_truth(ctx: RunContext, model: Model, ref: ModelRef, labels: pl.DataFrame) -> pl.DataFrame:
    """The outcomes of the symbols `model` serves (its own, or the pooled model's trained ones)."""
    from quantlab.lifecycle.promote import truth

    symbols = [model.symbol] if model.symbol else ref.meta_json("symbols", None)
    out = truth(ctx, labels, model.family)
    return out.filter(pl.col("symbol").is_in(symbols)) if symbols else out


def champion_rows(
    ctx: RunContext, model: Model, ref: ModelRef, labels: pl.DataFrame, as_of: datetime
) -> pl.DataFrame:
    """One champion's `live_accuracy` rows as of `as_of`."""
    from quantlab.lifecycle.oos import oos_scores

    scope = Scope(model.name, ref.version, model.family, metric_for(ctx, model.family))
    return track(
        scope,
        live_scores(ctx, ref),
        oos_scores(ctx.catalog, ref, model.family),
        model_truth(ctx, model, ref, labels),
        ctx.config.lifecycle.tracker.windows_days,
        as_of,
    )


def run(
    ctx: RunContext,
    labels: DatasetRef,
    live: DatasetRef | None = None,
    *,
    as_of: datetime | None = None,
    log: bool = True,
) -> DatasetRef | None:
    """The tracker for every configured champion: `live_accuracy` upserted (one row per model,
    window and symbol: the newest figures) and, with `log`, each model's figures logged to
    its MLflow run over time. The version written, or None when no champion has a resolved
    label to be scored on."""
    from quantlab.lifecycle.monitor_runs import log_accuracy

    as_of = as_of or datetime.now(UTC)
    reg = registry_for(ctx.config.tracking.uri)
    frame = ctx.catalog.read(labels)
    parts = []
    for model in configured_models(ctx.config):
        ref = reg.champion(model.name)
        if ref is None:
            continue
        rows = champion_rows(ctx, model, ref, frame, as_of)
        if rows.height:
            parts.append(rows)
            if log:
                log_accuracy(ctx, model.name, rows, as_of)
    if not parts:
        return None
    inputs = [r for r in (labels, live) if r is not None]
    return ctx.catalog.upsert(DATASET, pl.concat(parts), stage="live", inputs=inputs)


def run_latest(
    ctx: RunContext, live: DatasetRef | None = None, *, as_of: datetime | None = None
) -> DatasetRef | None:
    """`run` on the catalog's newest labels, and `live` (what score_live returned) or else the
    newest live predictions: the monitor DAG's step."""
    if live is None and ctx.catalog.exists("live_predictions"):
        live = ctx.catalog.latest("live_predictions")
    return run(ctx, ctx.catalog.latest("labels"), live, as_of=as_of)
