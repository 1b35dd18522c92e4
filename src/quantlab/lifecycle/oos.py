"""A model version's out-of-sample scores: the rows it scored without having trained on them.

Three sources, unioned by (symbol, open_time):
- its own: the dataset version its `quantlab.oos` tag names (`predictions@3`: the walk-
  forward's out-of-fold rows, fold >= 0; `holdout_predictions@2`: an incremental update's
  held-out bars), rows of its `quantlab.oos_model`;
- `holdout_predictions` rows scored by this version: a champion scoring an update's
  held-out bars, newer than anything it was trained on;
- `live_predictions` rows scored by this version after it was trained.
"""

from __future__ import annotations

import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.lifecycle.evaluate import REGIME_COLUMNS
from quantlab.tracking.registry import ModelRef

MAIN_COLUMNS = ("prob_up", "prob_down", "prob_flat", "pred_ret", "score")
EXTRA_SOURCES = ("holdout_predictions", "live_predictions")


def parse_ref(text: str) -> DatasetRef:
    """`name@version` (or `name@vversion`, as a DatasetRef prints) as a DatasetRef."""
    name, _, version = text.partition("@")
    version = version.removeprefix("v")
    if not name or not version.isdigit():
        raise ValueError(f"{text!r} is not a dataset version; expected name@version")
    return DatasetRef(name, int(version))


def columns(family: str) -> tuple[str, ...]:
    return REGIME_COLUMNS if family == "regime" else MAIN_COLUMNS


def _select(lf: pl.LazyFrame, family: str) -> pl.LazyFrame:
    names = lf.collect_schema().names()
    cols = [pl.col(c) if c in names else pl.lit(None, pl.Float64).alias(c) for c in columns(family)]
    return lf.select("symbol", "open_time", *cols)


def own_scores(catalog: Catalog, ref: ModelRef, family: str) -> pl.DataFrame:
    """The rows of the dataset version the model's `quantlab.oos` tag names."""
    tag = ref.meta("oos")
    if not tag:
        empty = pl.LazyFrame(schema={"symbol": pl.String, "open_time": pl.Datetime("ms", "UTC")})
        return _select(empty, family).collect()
    lf = catalog.scan(parse_ref(tag))
    names = lf.collect_schema().names()
    if (model := ref.meta("oos_model")) and "model" in names:
        lf = lf.filter(pl.col("model") == model)
    if (symbol := ref.meta("symbol")) and "symbol" in names:
        lf = lf.filter(pl.col("symbol") == symbol)
    if "fold" in names:
        lf = lf.filter(pl.col("fold") >= 0)
    if "version" in names:
        lf = lf.filter(pl.col("version") == ref.version)
    return _select(lf, family).collect()


def scored_by(catalog: Catalog, ref: ModelRef, family: str, dataset: str) -> pl.DataFrame | None:
    """Rows of the newest `dataset` (holdout or live scores) this exact version scored."""
    if not catalog.exists(dataset):
        return None
    lf = catalog.scan(catalog.latest(dataset)).filter(
        (pl.col("model") == ref.name) & (pl.col("version") == ref.version)
    )
    return _select(lf, family).collect()


def oos_scores(catalog: Catalog, ref: ModelRef, family: str) -> pl.DataFrame:
    """Every out-of-sample row of `ref` (module docstring), one per (symbol, open_time)."""
    parts = [own_scores(catalog, ref, family)]
    for dataset in EXTRA_SOURCES:
        if (rows := scored_by(catalog, ref, family, dataset)) is not None and rows.height:
            parts.append(rows)
    out = pl.concat([p.with_columns(pl.col("open_time").dt.cast_time_unit("ms")) for p in parts])
    return out.unique(subset=["symbol", "open_time"], keep="first", maintain_order=True)
