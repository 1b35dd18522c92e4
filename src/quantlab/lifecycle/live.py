"""The `score_live` stage: each champion scores the features rows newer than anything it was
trained on, so its accuracy can be tracked as their labels resolve.

    features (+ labels, lineage only) -> live_predictions

The models are the configured ones (`configured_models`): the main model (`train.register_as`,
pooled, or one per symbol) and, with `lifecycle.regime.enabled`, one regime model per symbol.
A row already scored by the same version is not scored again; a new champion scores the
unseen rows again under its own version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.errors import DataError
from quantlab.tracking.registry import ModelRef, registry_for
from quantlab.vocab import KEY

if TYPE_CHECKING:
    from quantlab.config import Config
    from quantlab.context import RunContext
    from quantlab.serving.model import LoadedModel

DATASET = "live_predictions"


@dataclass(frozen=True)
class Model:
    """One registered model the config asks for."""

    name: str
    family: str  # main | regime
    symbol: str | None  # the one symbol it serves; None: pooled over the universe


def configured_models(config: Config) -> list[Model]:
    """Every model the config asks for: main (pooled or per symbol), then regime per symbol."""
    out: list[Model] = []
    train, symbols = config.train, config.universe.symbols
    if train.register_as is not None:
        if train.per_symbol:
            out += [Model(f"{train.register_as}-{s}", "main", s) for s in symbols]
        else:
            out.append(Model(train.register_as, "main", None))
    regime = config.lifecycle.regime
    if regime.enabled:
        out += [Model(f"{regime.register_as}-{s}", "regime", s) for s in symbols]
    return out


def train_end(ref: ModelRef) -> datetime:
    """The version's `quantlab.train_end` tag as an aware time; a DataError if it has none."""
    raw = ref.meta("train_end")
    if not raw:
        raise DataError(
            f"{ref} carries no quantlab.train_end tag, so its unseen rows are unknown; "
            "retrain it with this version of quantlab (`quantlab run`)"
        )
    at = datetime.fromisoformat(raw)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def unseen(features: pl.DataFrame, end: datetime, symbols: tuple[str, ...] | None) -> pl.DataFrame:
    """The rows a model trained up to `end` (its train_end) has not seen: open_time > end.

    `train_end` is the newest label_time among the rows it trained on, so every price it
    learned from lies at or before it. A row opening after it has features and an outcome
    window (open_time, label_time] that lie wholly after that, so neither its inputs' newest
    bar nor its label overlaps training. A row opening at or before it may be a training
    row, or one whose outcome window overlaps the trained labels' windows: both excluded.
    """
    cut = pl.lit(end).cast(pl.Datetime("ms", "UTC"))
    out = features.filter(pl.col("open_time") > cut)
    return out if symbols is None else out.filter(pl.col("symbol").is_in(list(symbols)))


def not_scored(rows: pl.DataFrame, scored: pl.DataFrame) -> pl.DataFrame:
    """`rows` whose (symbol, open_time) is not in `scored` (the keys this version scored)."""
    if scored.is_empty():
        return rows
    keys = scored.select(pl.col("symbol"), pl.col("open_time").dt.cast_time_unit("ms"))
    rows = rows.with_columns(pl.col("open_time").dt.cast_time_unit("ms"))
    return rows.join(keys, on=list(KEY), how="anti")


def live_rows(
    ref: ModelRef, predicted: pl.DataFrame, schema: dict[str, pl.DataType], scored_at: datetime
) -> pl.DataFrame:
    """A model's predictions as `live_predictions` rows (the other family's columns null)."""
    extra = {
        "model": pl.lit(ref.name),
        "version": pl.lit(ref.version, pl.Int32),
        "scored_at": pl.lit(scored_at).cast(pl.Datetime("ms", "UTC")),
    }
    cols = [
        extra[name].alias(name)
        if name in extra
        else (pl.col(name) if name in predicted.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    ]
    return predicted.select(cols)


def _scored_keys(ctx: RunContext, ref: ModelRef) -> pl.DataFrame:
    if not ctx.catalog.exists(DATASET):
        return pl.DataFrame(schema={"symbol": pl.String, "open_time": pl.Datetime("ms", "UTC")})
    lf = ctx.catalog.scan(ctx.catalog.latest(DATASET))
    return (
        lf.filter((pl.col("model") == ref.name) & (pl.col("version") == ref.version))
        .select(KEY)
        .collect()
    )


def _scope(model: Model, loaded: LoadedModel) -> tuple[str, ...] | None:
    """The symbols a model can score: its one symbol, or the pooled model's trained ones
    (a symbol added to the universe since has no code in its booster)."""
    if model.symbol is not None:
        return (model.symbol,)
    return loaded.symbols or None


def score_model(
    ctx: RunContext, model: Model, ref: ModelRef, features: pl.DataFrame, now: datetime
) -> pl.DataFrame:
    """The `live_predictions` rows `ref` adds: its unseen rows it has not scored yet."""
    from quantlab.serving.model import load_model

    loaded = load_model(registry_for(ctx.config.tracking.uri), ref)
    rows = not_scored(
        unseen(features, train_end(ref), _scope(model, loaded)), _scored_keys(ctx, ref)
    )
    schema = dict(ctx.catalog.registry[DATASET].schema)
    if rows.is_empty():
        return pl.DataFrame(schema=schema)
    return live_rows(ref, loaded.predict(rows), schema, now)


def run(
    ctx: RunContext,
    features: DatasetRef,
    labels: DatasetRef | None = None,
    *,
    now: datetime | None = None,
) -> DatasetRef | None:
    """Score every champion's unseen rows of `features`; the version written, or the newest
    one when there was nothing new (None if there is none at all).

    A model without a champion is skipped (`quantlab health` reports it). A model that
    cannot score its rows does not stop the others: their rows are written first, then the
    errors are raised together.
    """
    now = now or datetime.now(UTC)
    reg = registry_for(ctx.config.tracking.uri)
    champions = [(m, ref) for m in configured_models(ctx.config) if (ref := reg.champion(m.name))]
    parts, errors, ends = [], [], {}
    for model, ref in champions:
        try:
            ends[model.name] = train_end(ref)
        except DataError as exc:
            errors.append(str(exc))
    if ends:  # only the rows newer than the oldest champion's training are read
        cut = pl.lit(min(ends.values())).cast(pl.Datetime("ms", "UTC"))
        frame = ctx.catalog.scan(features).filter(pl.col("open_time") > cut).collect()
    for model, ref in (c for c in champions if c[0].name in ends):
        try:
            parts.append(score_model(ctx, model, ref, frame, now))
        except DataError as exc:
            errors.append(f"{ref}: {exc}")
    rows = pl.concat(parts) if parts else pl.DataFrame()
    inputs = [r for r in (features, labels) if r is not None]
    out = ctx.catalog.upsert(DATASET, rows, stage="live", inputs=inputs) if rows.height else None
    if errors:
        raise DataError("score_live could not score every champion:\n" + "\n".join(errors))
    if out is None and ctx.catalog.exists(DATASET):
        return ctx.catalog.latest(DATASET)
    return out


def run_latest(ctx: RunContext, *, now: datetime | None = None) -> DatasetRef | None:
    """`run` on the catalog's newest features and labels (what the monitor DAG scores)."""
    labels = ctx.catalog.latest("labels") if ctx.catalog.exists("labels") else None
    return run(ctx, ctx.catalog.latest("features"), labels, now=now)
