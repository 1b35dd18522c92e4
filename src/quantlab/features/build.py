"""`build_features`: the configured feature set over bars of one or many symbols.

Each symbol is computed on its own (its rows, sorted by time; the symbols run in
parallel), then the cross-sectional features compare symbols at each timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from quantlab.config import FeaturesConfig
from quantlab.errors import ConfigError, SchemaError
from quantlab.features._primitives import safe_div, with_deps, with_helpers
from quantlab.features._registry import Feature, merged_deps, resolve
from quantlab.features.cross_section import add_cross_section, cross_section_names
from quantlab.features.funding import conform_funding, join_funding
from quantlab.features.timeframes import check_timeframe, join_timeframe
from quantlab.schema import require_columns
from quantlab.vocab import INTERVAL_MS, KEY

BAR_COLUMNS = (
    "symbol",
    "open_time",
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)


@dataclass(frozen=True)
class FeaturePlan:
    """A config resolved against the registry, checked, in output column order."""

    cfg: FeaturesConfig
    base: list[Feature]
    timeframes: dict[str, list[Feature]]
    funding: list[Feature]

    def names(self, funding: bool = False) -> list[str]:
        per_symbol = [f.name for f in self.base] + [
            f"{f.name}_{tf}" for tf, feats in self.timeframes.items() for f in feats
        ]
        return [
            *per_symbol,
            *cross_section_names(self.cfg.cross_section),
            *self.normalized(),
            *([f.name for f in self.funding] if funding else []),
        ]

    def normalized(self) -> list[str]:
        return [f"{c}_rz{self.cfg.normalize.window}" for c in self.cfg.normalize.columns]


def plan_features(cfg: FeaturesConfig) -> FeaturePlan:
    base = [resolve(n, cfg) for n in cfg.columns]
    timeframes = {tf: [resolve(n, cfg) for n in names] for tf, names in cfg.timeframes.items()}
    funding = [resolve(n, cfg) for n in cfg.funding]
    wrong = [f.name for f in base + [f for fs in timeframes.values() for f in fs]]
    wrong = [n for n in wrong if resolve(n, cfg).family == "funding"]
    if wrong:
        raise ConfigError(f"funding features {wrong} belong in features.funding, not on bars")
    if bad := [f.name for f in funding if f.family != "funding"]:
        raise ConfigError(f"features.funding lists {bad}, which are not funding features")
    plan = FeaturePlan(cfg, base, timeframes, funding)
    per_symbol = set(plan.names()) - set(cross_section_names(cfg.cross_section))
    per_symbol -= set(plan.normalized())
    cs = cfg.cross_section
    for section, refs in (
        ("cross_section", [*cs.rank, *cs.zscore]),
        ("normalize", cfg.normalize.columns),
    ):
        if missing := [r for r in refs if r not in per_symbol]:
            raise ConfigError(
                f"features.{section} refers to {missing}, which the feature set does not "
                "build; add them to features.columns or features.timeframes"
            )
    return plan


def feature_names(cfg: FeaturesConfig | None = None, funding: bool = False) -> list[str]:
    """The feature columns `build_features` returns for `cfg`, in order."""
    return plan_features(cfg or FeaturesConfig()).names(funding)


def _symbol_query(
    raw: pl.LazyFrame, plan: FeaturePlan, interval: str | None, funding: pl.LazyFrame | None
) -> pl.LazyFrame:
    """Every per-symbol feature of one symbol's time-sorted bars, NaN turned into null."""
    deps = merged_deps(plan.base)
    lf = with_deps(with_helpers(raw, [*deps.values(), *(f.expr for f in plan.base)]), deps)
    lf = lf.with_columns(f.expr for f in plan.base)
    for tf, feats in plan.timeframes.items():
        if interval is None:
            raise SchemaError("features.timeframes needs the bars' `interval` column")
        ratio = check_timeframe(tf, interval)
        lf = join_timeframe(lf, raw, tf, ratio, feats, INTERVAL_MS[interval])
    if funding is not None:
        lf = join_funding(lf, funding, plan.funding)
    norm, w = plan.cfg.normalize, plan.cfg.normalize.window
    stats = [
        e
        for c in norm.columns
        for e in (
            pl.col(c).rolling_mean(w, min_samples=w).alias(f"_mean_{c}"),
            pl.col(c).rolling_std(w, min_samples=w).alias(f"_sd_{c}"),
        )
    ]
    lf = lf.with_columns(stats).with_columns(
        safe_div(pl.col(c) - pl.col(f"_mean_{c}"), pl.col(f"_sd_{c}")).alias(n)
        for c, n in zip(norm.columns, plan.normalized(), strict=True)
    )
    cross_section = set(cross_section_names(plan.cfg.cross_section))
    per_symbol = [n for n in plan.names(funding is not None) if n not in cross_section]
    schema = lf.collect_schema()
    return lf.select(
        *KEY,
        *[pl.col(n).fill_nan(None) if schema[n].is_float() else pl.col(n) for n in per_symbol],
    )


def _symbol_runs(symbols: pl.Series) -> list[tuple[int, int]]:
    """(offset, length) of each symbol's rows in a column sorted by symbol.

    Binary search per symbol instead of a run-length pass over millions of strings.
    """
    runs, start = [], 0
    while start < len(symbols):
        end = int(symbols.search_sorted(symbols[start], side="right"))
        runs.append((start, end - start))
        start = end
    return runs


def _split(df: pl.DataFrame) -> list[pl.DataFrame]:
    """One frame per symbol, in symbol order, each sorted by open_time with no repeated time."""
    if df["symbol"].is_sorted():  # as the catalog stores klines: zero-copy slices
        parts = [df.slice(start, n) for start, n in _symbol_runs(df["symbol"])]
    else:
        parts = sorted(df.partition_by("symbol"), key=lambda p: p["symbol"][0])
    out = []
    for part in parts:
        t = part["open_time"].to_physical().to_numpy()
        if not (t[1:] > t[:-1]).all():  # not strictly increasing: sort, then look for repeats
            part = part.sort("open_time")
            t = part["open_time"].to_physical().to_numpy()
            if (t[1:] == t[:-1]).any():
                raise SchemaError(
                    f"bars repeat an open_time of {part['symbol'][0]}; "
                    "pass one market and interval at a time"
                )
        out.append(part)
    return out


def _interval(bars: pl.DataFrame) -> str | None:
    """The bars' one interval; SchemaError if they mix several. A compare, not a hash of each row."""
    if "interval" not in bars.columns or bars.height == 0:
        return None
    first = bars["interval"][0]
    if (bars["interval"] != first).any() or bars["interval"].null_count():
        mixed = bars["interval"].unique().sort(nulls_last=True).to_list()
        raise SchemaError(f"bars mix intervals {mixed}; build features per interval")
    return first


def build_features(
    bars: pl.DataFrame | pl.LazyFrame,
    config: FeaturesConfig | None = None,
    funding: pl.DataFrame | pl.LazyFrame | None = None,
    interval: str | None = None,
) -> pl.DataFrame:
    """Features of every bar of every symbol in `bars` (klines schema), keyed by symbol, open_time.

    A value at open_time t uses only bars that closed by t's close, warm-up rows
    are null (never NaN), and `funding` (symbol, funding_time, funding_rate),
    when given, adds the funding features. `config=None` is the default
    `FeaturesConfig()`, which is configs/default.yaml's.
    `interval` is for a caller that selected the bars of one interval (the stage
    loads klines filtered to the configured one); without it the bars' `interval`
    column, if any, must hold one value, which is checked row by row.
    Rows come back sorted by symbol, then open_time.
    """
    plan = plan_features(config or FeaturesConfig())
    lf = bars.lazy()
    schema = lf.collect_schema()
    require_columns(pl.DataFrame(schema=schema), BAR_COLUMNS, "bars")
    read_interval = interval is None and "interval" in schema.names()
    df = lf.select(*BAR_COLUMNS, *(["interval"] if read_interval else [])).collect()
    if read_interval:
        interval = _interval(df)
        df = df.drop("interval")
    elif interval is not None and interval not in INTERVAL_MS:
        raise ConfigError(f"unknown interval {interval!r}; use one of {list(INTERVAL_MS)}")
    if df.height == 0:
        interval = interval or "1m"  # no bars: any interval gives the same empty columns
    parts = _split(df) if df.height else [df]
    del df  # the per-symbol copies replace it; keeps the peak memory down
    events = conform_funding(funding) if funding is not None else None
    queries = []
    for part in parts:
        ev = None
        if events is not None:
            ev = events.filter(pl.col("symbol") == (part["symbol"][0] if part.height else ""))
            ev = ev.lazy().drop("symbol")
        queries.append(_symbol_query(part.lazy(), plan, interval, ev))
    del parts
    # The in-memory engine: the streaming one splits rolling windows into morsels, whose sums
    # round differently, so a value would depend (in its last bit) on how much data follows.
    done = pl.collect_all(queries, engine="in-memory")
    # A column several chunks long (a shift makes two) would have the concatenated frame's
    # select copy every column, the symbol strings too; one part's column at a time is cheaper.
    done = [d.rechunk() for d in done]
    step = INTERVAL_MS.get(interval) if interval else None
    done = add_cross_section(done, plan.cfg.cross_section, step)
    return pl.concat(done).select(*KEY, *plan.names(funding is not None))
