"""What each check reads, gathered from the catalog and the registry: the series the config
expects and their newest candles, every gate's last verdict, the champions' training and
recent feature rows, their live accuracy (the lifecycle tracker's own figures) and the
paper equity. Reads only; the checks judge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.catalog.extras import GateVerdict

if TYPE_CHECKING:
    from quantlab.context import RunContext
    from quantlab.tracking.registry import ModelRef

UTC_MS = pl.Datetime("ms", "UTC")


def expected_series(ctx: RunContext) -> list[tuple[str, str, str]]:
    """(market, symbol, interval) of every configured symbol, and any other series the
    klines dataset holds: a configured series with no candle is the stalest of all."""
    u = ctx.config.universe
    series = {(u.market, s, u.interval) for s in u.symbols}
    if ctx.catalog.exists("klines"):
        held = ctx.catalog.scan(ctx.catalog.latest("klines"))
        series |= set(held.select("market", "symbol", "interval").unique().collect().iter_rows())
    return sorted(series)


def klines_frame(ctx: RunContext) -> pl.LazyFrame:
    """The newest klines version (empty with the columns freshness reads when none exists)."""
    if not ctx.catalog.exists("klines"):
        schema = {"market": pl.String, "symbol": pl.String, "interval": pl.String}
        return pl.LazyFrame(schema={**schema, "open_time": UTC_MS})
    return ctx.catalog.scan(ctx.catalog.latest("klines"))


def gate_verdicts(ctx: RunContext) -> list[dict[str, Any]]:
    """Each `<name>_checks` dataset's newest verdict: the gate's last word on its data."""
    out = []
    for name in sorted(n for n in ctx.catalog.names() if n.endswith("_checks")):
        ref = ctx.catalog.latest(name)
        lineage = ctx.catalog.lineage(ref)
        verdict = GateVerdict.of(lineage)
        written = datetime.fromisoformat(lineage.created_at)
        out.append(
            {
                "dataset": name,
                "version": ref.version,
                "passed": verdict.passed,
                "failed_checks": list(verdict.failed_checks),
                "written_at": written if written.tzinfo else written.replace(tzinfo=UTC),
            }
        )
    return out


@dataclass(frozen=True)
class DriftInputs:
    """One champion's feature rows: those it trained on and the newest ones."""

    model: str
    version: int
    features: list[str]
    reference: pl.DataFrame
    recent: pl.DataFrame
    windows: tuple[datetime | None, datetime, datetime, datetime]


def champions(ctx: RunContext, family: str | None = "main") -> list[tuple[str, ModelRef]]:
    """(name, champion version) of every configured model of `family` that has one."""
    from quantlab.lifecycle.live import configured_models
    from quantlab.tracking.registry import registry_for

    registry = registry_for(ctx.config.tracking.uri)
    out = []
    for model in configured_models(ctx.config):
        if family is not None and model.family != family:
            continue
        ref = registry.champion(model.name)
        if ref is not None:
            out.append((model.name, ref))
    return out


def drift_inputs(ctx: RunContext, as_of: datetime) -> list[DriftInputs]:
    """Each main champion's reference rows (its own training features version, the last
    `drift.reference_days` up to its train_end) and recent rows (the newest features version,
    `drift.recent_days` up to `as_of`), restricted to the symbols it serves."""
    from quantlab.lifecycle.live import train_end
    from quantlab.monitoring.drift import drift_windows

    if not ctx.catalog.exists("features"):
        return []
    newest = ctx.catalog.latest("features")
    out = []
    for name, ref in champions(ctx):
        inputs = ref.meta_json("inputs", {}) or {}
        if "features" not in inputs:
            continue
        trained_on = DatasetRef("features", int(inputs["features"]))
        windows = drift_windows(train_end(ref), as_of, ctx.config.monitoring.drift)
        ref_start, ref_end, recent_start, recent_end = windows
        symbols = ref.meta_json("symbols", None) or list(ctx.config.universe.symbols)
        symbol = ref.meta("symbol")
        symbols = [symbol] if symbol else symbols
        reference = _window(ctx, trained_on, symbols, ref_start, ref_end, closed_left=True)
        recent = _window(ctx, newest, symbols, recent_start, recent_end, closed_left=False)
        # The booster's numeric inputs (a pooled model's symbol code is an input, not a feature).
        schema = reference.schema
        columns = [
            c for c in ref.meta_json("columns", []) if c in schema and schema[c].is_numeric()
        ]
        out.append(DriftInputs(name, ref.version, columns, reference, recent, windows))
    return out


def _window(
    ctx: RunContext,
    ref: DatasetRef,
    symbols: list[str],
    start: datetime | None,
    end: datetime,
    *,
    closed_left: bool,
) -> pl.DataFrame:
    t = pl.col("open_time")
    cond = (t <= pl.lit(end).cast(UTC_MS)) & pl.col("symbol").is_in(symbols)
    if start is not None:
        lo = pl.lit(start).cast(UTC_MS)
        cond &= (t >= lo) if closed_left else (t > lo)
    return ctx.catalog.scan(ref).filter(cond).collect()


def accuracy_rows(ctx: RunContext, as_of: datetime) -> pl.DataFrame:
    """Every main champion's `live_accuracy` rows as of `as_of`, computed by the lifecycle's
    tracker (live rows where it has them, else its out-of-sample ones), nothing written."""
    from quantlab.lifecycle.accuracy import _schema, champion_rows
    from quantlab.lifecycle.live import configured_models

    if not ctx.catalog.exists("labels"):
        return pl.DataFrame(schema=_schema())
    labels = ctx.catalog.read(ctx.catalog.latest("labels"))
    models = {m.name: m for m in configured_models(ctx.config)}
    parts = [champion_rows(ctx, models[name], ref, labels, as_of) for name, ref in champions(ctx)]
    parts = [p for p in parts if p.height]
    return pl.concat(parts) if parts else pl.DataFrame(schema=_schema())


def paper_equity(ctx: RunContext) -> pl.DataFrame | None:
    """The newest `paper_equity` version, or None before any paper session."""
    if not ctx.catalog.exists("paper_equity"):
        return None
    return ctx.catalog.read(ctx.catalog.latest("paper_equity"))
