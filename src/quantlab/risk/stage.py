"""`run` for the risk stage: target weights for every out-of-fold bar and the newest bars.

Input datasets: `predictions` (the primary model's), `klines` (a version that passed the
gate, `checks`), `labels` (the outcomes the calibration check compares prob_up with).
Output: `targets`, keyed by `symbol, open_time`: the weight to hold from the next bar on,
sized by `portfolio.sizing.size_targets` (the one place targets are computed) and checked
against every cap; and `calibration`, the reliability table of prob_up per fold, whose Brier
scores go into the `targets` lineage. The backtest trades these targets; the kill-switch acts
on its equity path (and on the paper account's), not here.
"""

from __future__ import annotations

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.config import LabelsConfig, slice_hash
from quantlab.context import RunContext
from quantlab.errors import DataError
from quantlab.portfolio.sizing import calibration, size_targets
from quantlab.quality.read import load_bars
from quantlab.risk.limits import cap_breaches
from quantlab.train.targets import CLASSES, label_column, task_of
from quantlab.vocab import KEY, bars_per_year

# The config this stage reads, its fingerprint: the universe's bars, the sizing and its
# calibration bins, the signal rule, the traded kind (the first of train.models) and what
# it learnt (train.target, labels.horizon: the outcome calibrated against, kelly's horizon).
READS = ("universe", "risk", "signal", "train.models", "train.target", "labels.horizon")


def outcomes(labels: pl.DataFrame, target: str, cfg_labels: LabelsConfig) -> pl.DataFrame | None:
    """`symbol, open_time, up` (1 when the learnt label is its up class), or None for a
    regression target (no class probabilities to calibrate)."""
    if task_of(target) == "regression":
        return None
    column = label_column(target, cfg_labels)
    up = 1 if task_of(target) == "binary" else CLASSES[-1]
    return labels.select(*KEY, (pl.col(column) == up).cast(pl.Int8).alias("up"))


def run(
    ctx: RunContext,
    predictions: DatasetRef,
    klines: DatasetRef,
    checks: DatasetRef,
    labels: DatasetRef,
) -> DatasetRef:
    """Size `targets` for the primary model's predictions; write `calibration` beside it."""
    config = ctx.config
    cfg = config.risk
    preds = ctx.catalog.read(predictions).filter(pl.col("model") == config.train.primary_model)
    if preds.is_empty():
        raise DataError(
            f"{predictions} has no predictions of model {config.train.primary_model!r} "
            "(train.models' first kind); run the train stage with this config first"
        )
    bars = load_bars(ctx, klines, checks).select(*KEY, "open", "close").collect()
    targets = size_targets(
        preds,
        bars,
        cfg,
        config.signal,
        periods_per_year=bars_per_year(config.universe.interval),
        horizon=config.labels.horizon,
    ).join(preds.select(*KEY, pl.col("fold").cast(pl.Int32)), on=list(KEY), how="left")
    if breaches := cap_breaches(targets, cfg):
        raise DataError(
            "size_targets broke its caps (a sizing bug; report it with this config): "
            + "; ".join(breaches)
        )
    inputs = [predictions, klines, checks, labels]
    cfg_hash = slice_hash(config, READS)
    oof = preds.filter(pl.col("fold") >= 0)
    outcome = outcomes(ctx.catalog.read(labels), config.train.target, config.labels)
    brier: dict[str, float] = {}
    base: dict[str, float] = {}
    if outcome is not None and oof["prob_up"].null_count() < oof.height:
        table, scores = calibration(oof, outcome, cfg.calibration_bins)
        ctx.catalog.write("calibration", table, stage="risk", inputs=inputs, config_hash=cfg_hash)
        brier = {str(r["fold"]): r["brier"] for r in scores.iter_rows(named=True)}
        base = {str(r["fold"]): r["base_rate"] for r in scores.iter_rows(named=True)}
    newest = targets["open_time"].max()
    return ctx.catalog.write(
        "targets",
        targets,
        stage="risk",
        inputs=inputs,
        config_hash=cfg_hash,
        extra={
            "policy": cfg.policy,
            "rows": targets.height,
            "oof_rows": int((targets["fold"] >= 0).sum()),
            "newest_open_time": None if newest is None else str(newest),
            "brier": brier,
            "base_rate": base,
        },
    )
