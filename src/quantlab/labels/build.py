"""`build_labels`: forward returns, direction, triple barrier and future regime per symbol.

Rows are shifted within a symbol, so a missing candle (as in an exchange halt)
makes a label span one real bar more; its resolution time says exactly when.
"""

from __future__ import annotations

import polars as pl

from quantlab.config import LabelsConfig
from quantlab.features.regimes import with_regime
from quantlab.labels.barrier import BARRIER_COLUMNS, with_barrier
from quantlab.schema import require_columns
from quantlab.vocab import KEY

BAR_COLUMNS = ("symbol", "open_time", "close_time", "open", "high", "low", "close")


def target_column(cfg: LabelsConfig) -> str:
    """The forward-return column of the trained (primary) horizon."""
    return f"fwd_ret_{cfg.horizon}"


def _time_horizons(cfg: LabelsConfig) -> list[int]:
    extra = [cfg.regime.horizon] if cfg.regime is not None else []
    return sorted({*cfg.all_horizons, *extra})


def label_names(cfg: LabelsConfig | None = None) -> list[str]:
    """The columns `build_labels` returns after the key, in order."""
    cfg = cfg or LabelsConfig()
    hs = cfg.all_horizons
    return [
        "label_time",
        "label_up",
        *[f"fwd_ret_{h}" for h in hs],
        *[f"dir_{h}" for h in hs],
        *[f"label_time_{h}" for h in _time_horizons(cfg)],
        *(BARRIER_COLUMNS if cfg.barrier is not None else ()),
        *([f"regime_{cfg.regime.horizon}"] if cfg.regime is not None else []),
    ]


def _symbol_query(bars: pl.LazyFrame, cfg: LabelsConfig) -> pl.LazyFrame:
    close, dz = pl.col("close"), cfg.dead_zone
    exprs: list[pl.Expr] = []
    if cfg.regime is not None:
        h = cfg.regime.horizon
        bars = with_regime(bars, cfg.regime.rules, "_regime")
        exprs.append(pl.col("_regime").shift(-h).alias(f"regime_{h}"))
    lf = bars.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_i"))
    for h in cfg.all_horizons:
        fwd = (close.shift(-h) / close).log()
        exprs.append(fwd.alias(f"fwd_ret_{h}"))
        direction = pl.when(fwd > dz).then(1).when(fwd < -dz).then(-1).when(fwd.is_not_null())
        exprs.append(direction.then(0).cast(pl.Int8).alias(f"dir_{h}"))
    exprs += [pl.col("close_time").shift(-h).alias(f"label_time_{h}") for h in _time_horizons(cfg)]
    if cfg.barrier is not None:
        lf = with_barrier(lf, cfg.barrier, cfg.barrier.vertical or cfg.horizon)
    primary = pl.col(target_column(cfg))
    return lf.with_columns(exprs).with_columns(
        pl.col(f"label_time_{cfg.horizon}").alias("label_time"),
        pl.when(primary.is_not_null()).then((primary > 0).cast(pl.Int8)).alias("label_up"),
    )


def build_labels(
    bars: pl.DataFrame | pl.LazyFrame, config: LabelsConfig | None = None
) -> pl.DataFrame:
    """Labels for every bar of every symbol in `bars` (klines schema), keyed by symbol, open_time.

    A label is null until it is resolved: `fwd_ret_<h>` and `dir_<h>` at
    `label_time_<h>`, the triple barrier at `tb_time`. `label_up` (1 if the
    primary forward return is positive) and `label_time` are what training uses.
    `config=None` is the default `LabelsConfig()`, which is
    configs/default.yaml's.
    """
    cfg = config or LabelsConfig()
    lf = bars.lazy()
    require_columns(pl.DataFrame(schema=lf.collect_schema()), BAR_COLUMNS, "bars")
    cols = [*BAR_COLUMNS, "volume"] if cfg.regime is not None else list(BAR_COLUMNS)
    df = lf.select(cols).sort(KEY).collect()
    parts = df.partition_by("symbol", maintain_order=True) if df.height else [df]
    queries = [_symbol_query(p.lazy(), cfg) for p in parts]
    # In memory: the streaming engine's morsels would make rolling sums depend on later rows.
    out = pl.concat(pl.collect_all(queries, engine="in-memory"))
    return out.select(*KEY, *label_names(cfg))
