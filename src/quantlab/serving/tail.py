"""The newest closed bars' features, built from the minimum history they need.

`validated` picks the klines version the stages would read (the newest one a passing
`klines_checks` validated); `read_tail` reads only the newest closed bars of some symbols
from it (predicate pushdown on the Delta table: symbol, open_time); `build_tail` runs the
features stage's own `build_features` on them, with the stage's config, so a served input
equals the `features` dataset's row for that bar (see `serving.history` for how close).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from quantlab.catalog import Catalog, DatasetRef, GateVerdict
from quantlab.config import Config, FeaturesConfig
from quantlab.errors import DatasetNotFound, QualityError
from quantlab.features import build_features, plan_features
from quantlab.features.availability import leave_out
from quantlab.features.cross_section import cross_section_names
from quantlab.schema import UTC_MS, absent_columns
from quantlab.serving.history import history_rows
from quantlab.vocab import INTERVAL_MS


@dataclass(frozen=True)
class Tail:
    """The newest bars of `symbols` in `klines` and their features (every tail row)."""

    klines: DatasetRef
    symbols: tuple[str, ...]
    bars: pl.DataFrame
    features: pl.DataFrame


def validated(catalog: Catalog, name: str = "klines") -> DatasetRef:
    """The `name` version the newest passing `<name>_checks` version validated."""
    checks = f"{name}_checks"
    if not catalog.exists(checks):
        raise DatasetNotFound(
            f"no {checks} in the catalog at {catalog.root}: nothing validated to serve from; "
            "run `make run` (or `quantlab run validate`) first"
        )
    for info in reversed(catalog.versions(checks)):
        lineage = info.lineage
        if lineage is None or lineage.stage != "validate" or name not in lineage.inputs:
            continue
        if GateVerdict.of(lineage).passed:
            return DatasetRef(name, int(lineage.inputs[name]))
    raise QualityError(
        f"no {name} version passed validation ({checks}); fix the data, ingest and validate "
        "again (`quantlab data validate`)"
    )


def serving_symbols(config: Config, symbol: str) -> tuple[str, ...]:
    """The symbols whose bars `symbol`'s features read: every universe symbol when
    cross-section features compare them at each timestamp, else `symbol` alone."""
    if cross_section_names(config.features.cross_section):
        return tuple(sorted(config.universe.symbols))
    return (symbol,)


def _universe(catalog: Catalog, klines: DatasetRef, config: Config, now: datetime) -> pl.LazyFrame:
    """The bars the features stage reads (`quality.read.load_bars`' filters), closed by `now`."""
    u = config.universe
    return catalog.scan(klines).filter(
        pl.col("market") == u.market,
        pl.col("interval") == u.interval,
        pl.col("open_time") >= pl.lit(u.start).cast(UTC_MS),
        pl.col("open_time") < pl.lit(u.end).cast(UTC_MS),
        pl.col("close_time") < pl.lit(now).cast(UTC_MS),
    )


def read_tail(
    catalog: Catalog,
    klines: DatasetRef,
    config: Config,
    symbols: Sequence[str],
    rows: int | None,
    now: datetime,
) -> pl.DataFrame:
    """At least the newest `rows` closed bars of each of `symbols` (None: every bar).

    A bar whose close_time is not before `now` is still open and left out. The window is
    first set in time (rows x interval back from the symbols' newest bar); a symbol with gaps
    there has fewer rows, so the window widens until each has `rows` or the data ends.
    """
    lf = _universe(catalog, klines, config, now).filter(pl.col("symbol").is_in(list(symbols)))
    if rows is None:
        return lf.collect()
    newest = lf.group_by("symbol").agg(pl.col("open_time").max()).collect()
    if newest.height == 0:
        return lf.head(0).collect()
    step = timedelta(milliseconds=INTERVAL_MS[config.universe.interval])
    cutoff = newest["open_time"].min() - (rows - 1) * step
    seen = -1
    while True:
        bars = lf.filter(pl.col("open_time") >= cutoff).collect()
        counts = bars.group_by("symbol").len()
        short = counts["len"].min() if counts.height == newest.height else 0
        if short >= rows or bars.height == seen:  # enough, or nothing older to add
            return bars
        seen = bars.height
        cutoff -= (rows - short + 1) * step * 2


def build_tail(
    bars: pl.DataFrame,
    cfg: FeaturesConfig,
    interval: str,
    funding: pl.LazyFrame | pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Features of every tail bar, as the features stage builds them (same left-out columns)."""
    cfg, _ = leave_out(cfg, absent_columns(bars))
    return build_features(bars, cfg, funding, interval=interval)


def tail_rows(cfg: FeaturesConfig, interval: str, extra: int = 1) -> int | None:
    """Bars per symbol for the newest `extra` bars' features (None: the whole history)."""
    need = history_rows(plan_features(cfg), interval)
    return None if need is None else need + extra - 1


def funding_events(catalog: Catalog, config: Config, symbols: Sequence[str]) -> pl.LazyFrame | None:
    """Every validated funding payment of `symbols` when the universe pays funding (perpetuals),
    as the features stage passes them (few rows: three a day); None otherwise."""
    from quantlab.pipeline import uses_funding

    if not uses_funding(config) or not catalog.exists("funding_rates"):
        return None
    ref = validated(catalog, "funding_rates")
    return catalog.scan(ref).filter(pl.col("symbol").is_in(list(symbols)))


def load_tail(
    catalog: Catalog,
    config: Config,
    symbols: Sequence[str],
    extra: int = 1,
    now: datetime | None = None,
    klines: DatasetRef | None = None,
) -> Tail:
    """The newest `extra` closed bars' features of `symbols` (and the symbols they compare to)."""
    klines = klines or validated(catalog)
    now = now or datetime.now(UTC)
    interval = config.universe.interval
    rows = tail_rows(config.features, interval, extra)
    bars = read_tail(catalog, klines, config, symbols, rows, now)
    if bars.height == 0:
        raise DatasetNotFound(
            f"{klines} holds no closed {config.universe.interval} bars of {list(symbols)} in "
            f"{config.universe.market} from {config.universe.start} to {config.universe.end}; "
            "ingest them (`make run`)"
        )
    funding = funding_events(catalog, config, symbols)
    features = build_tail(bars, config.features, interval, funding)
    return Tail(klines, tuple(symbols), bars, features)


def pending_close(
    catalog: Catalog, klines: DatasetRef, config: Config, symbols: Sequence[str], now: datetime
) -> datetime | None:
    """When the first bar of `symbols` that `klines` holds but is not closed by `now` closes
    (a tail read at `now` is stale after that); None: every bar there is closed."""
    u = config.universe
    first = (
        catalog.scan(klines)
        .filter(
            pl.col("symbol").is_in(list(symbols)),
            pl.col("market") == u.market,
            pl.col("interval") == u.interval,
            pl.col("close_time") >= pl.lit(now).cast(UTC_MS),
        )
        .select(pl.col("close_time").min())
        .collect()
        .item()
    )
    return None if first is None else first
