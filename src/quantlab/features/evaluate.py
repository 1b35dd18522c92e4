"""Factor evaluation: how well each feature forecasts the forward returns of each label horizon.

Input datasets: `features`, `labels`. Output: `factor_report`, one row per
feature and horizon, and an HTML report beside it (`report.html`).

Two modes (`features.evaluate.mode`; `auto` picks cross-section from
`cross_section_min` symbols on):

- time series: a feature and the forward return are standardised (values, or
  ranks for the rank IC) over each symbol's whole sample, and a period's IC is
  the mean product over its bars, so the mean over periods is the full-sample
  correlation. Correlating within each short period instead would demean a
  persistent feature per period and bias its IC (strongly negative for trend
  distances). Quantiles are of each symbol's own history.
- cross-section: per bar, the correlation across symbols; a period's IC is the
  mean of its bars. Quantiles are ranks among the symbols at that bar.

From the per-period ICs: mean IC, ICIR (mean / sd), t-stat and hit rate; the mean
forward return per quantile, the top-minus-bottom spread and its monotonicity
(Spearman of quantile vs mean return); turnover, the share of bars on which a
symbol changes quantile; IC decay, the rank IC across horizons relative to the
shortest.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.config import EvaluateConfig, slice_hash
from quantlab.context import RunContext
from quantlab.errors import DataError
from quantlab.metrics import pearson, spearman
from quantlab.vocab import KEY

DATASET = "factor_report"
# The config this stage reads, its fingerprint; `top` only sets how many features the HTML
# report plots.
READS = ("features.evaluate", "labels.horizon", "labels.horizons")
IGNORES = ("features.evaluate.top",)
# Grade thresholds on |rank IC|, |rank ICIR| and the sign-aligned monotonicity.
GRADES = (
    ("A", 0.03, 0.5, 0.8),
    ("B", 0.02, 0.3, 0.6),
    ("C", 0.01, 0.15, 0.0),
    ("D", 0.005, 0.0, -1.0),
)
HIGH_TURNOVER = 0.5  # above this a factor costs too much to trade: one grade lower


@dataclass(frozen=True)
class FactorEvaluation:
    summary: pl.DataFrame  # feature, horizon, the metrics, grade
    ic: pl.DataFrame  # feature, horizon, period, n, ic, rank_ic
    quantiles: pl.DataFrame  # feature, horizon, quantile, n, mean_ret
    mode: str = "time_series"  # or cross_section


def _grade(rank_ic: pl.Expr, icir: pl.Expr, mono: pl.Expr, turnover: pl.Expr) -> pl.Expr:
    aligned = mono * rank_ic.sign()
    letters = [g[0] for g in GRADES] + ["F"]
    chain = None
    for letter, ic_min, ir_min, mono_min in GRADES:
        ok = (rank_ic.abs() >= ic_min) & (icir.abs() >= ir_min) & (aligned >= mono_min)
        chain = (pl if chain is None else chain).when(ok).then(pl.lit(letter))
    base = chain.otherwise(pl.lit("F"))  # type: ignore[union-attr]
    lower = dict(itertools.pairwise(letters))
    return pl.when(turnover > HIGH_TURNOVER).then(base.replace(lower)).otherwise(base)


def _z(x: pl.Expr, by: list[str]) -> pl.Expr:
    """x standardised within `by` (population sd); null where `by` is constant."""
    sd = x.std(ddof=0).over(by)
    return pl.when(sd > 0).then((x - x.mean().over(by)) / sd)


def evaluate_factors(
    features: pl.DataFrame,
    labels: pl.DataFrame,
    horizons: Sequence[int],
    cfg: EvaluateConfig | None = None,
) -> FactorEvaluation:
    """IC, rank IC, ICIR, decay, quantile spread, monotonicity, turnover and a grade per feature."""
    cfg = cfg or EvaluateConfig()
    names = [c for c, t in features.schema.items() if c not in KEY and t.is_numeric()]
    rets = [f"fwd_ret_{h}" for h in horizons]
    if missing := [r for r in rets if r not in labels.columns]:
        raise DataError(f"labels lack {missing}; build them with those horizons in labels.horizons")
    data = features.select(*KEY, *names).join(labels.select(*KEY, *rets), on=list(KEY))
    if data.is_empty():
        raise DataError("features and labels share no (symbol, open_time) rows")
    n_symbols = data["symbol"].n_unique()
    mode = cfg.mode
    if mode == "auto":
        mode = "cross_section" if n_symbols >= cfg.cross_section_min else "time_series"
    # Time series: compare each value with the symbol's own history (moments over the whole
    # sample, so a period's IC is its share of the full-sample correlation and carries no
    # short-window bias for persistent features). Cross-section: compare symbols per bar.
    group = ["feature", "symbol"] if mode == "time_series" else ["feature", "open_time"]
    long = (
        data.with_columns(pl.col(names).cast(pl.Float64))
        .unpivot(names, index=[*KEY, *rets], variable_name="feature")
        .filter(pl.col("value").is_not_null())
        .with_columns(pl.col("open_time").dt.truncate(cfg.period).alias("period"))
    )
    q = cfg.quantiles
    long = long.with_columns(
        ((pl.col("value").rank("ordinal").over(group) - 1) * q)
        .floordiv(pl.len().over(group))
        .add(1)
        .cast(pl.Int32)
        .alias("quantile")
    )
    turnover = (
        long.sort("feature", "symbol", "open_time")
        .with_columns(
            (pl.col("quantile") != pl.col("quantile").shift(1))
            .over("feature", "symbol")
            .alias("changed")
        )
        .group_by("feature")
        .agg(pl.col("changed").mean().alias("turnover"))
    )
    ics, quants = [], []
    for h, ret in zip(horizons, rets, strict=True):
        obs = long.filter(pl.col(ret).is_not_null()).with_columns(pl.lit(h).alias("horizon"))
        if mode == "time_series":
            x, r = pl.col("value"), pl.col(ret)
            obs = obs.with_columns(
                (_z(x, group) * _z(r, group)).alias("_ic"),
                (_z(x.rank().over(group), group) * _z(r.rank().over(group), group)).alias(
                    "_rank_ic"
                ),
            )
            per_period = obs.group_by("feature", "horizon", "period").agg(
                pl.len().alias("n"), pl.col("_ic").mean().alias("ic"), pl.col("_rank_ic").mean()
            )
        else:
            per_period = (
                obs.group_by("feature", "horizon", "open_time", "period")
                .agg(
                    pl.len().alias("n"),
                    pearson("value", ret).alias("ic"),
                    spearman("value", ret).alias("_rank_ic"),
                )
                .filter(pl.col("n") >= 3)
                .fill_nan(None)
                .group_by("feature", "horizon", "period")
                .agg(pl.col("n").sum(), pl.col("ic").mean(), pl.col("_rank_ic").mean())
            )
        ics.append(per_period.rename({"_rank_ic": "rank_ic"}).filter(pl.col("n") >= cfg.min_obs))
        quants.append(
            obs.group_by("feature", "horizon", "quantile").agg(
                pl.len().alias("n"), pl.col(ret).mean().alias("mean_ret")
            )
        )
    ic = pl.concat(ics).fill_nan(None).sort("feature", "horizon", "period")
    quantiles = pl.concat(quants).sort("feature", "horizon", "quantile")
    spread = quantiles.group_by("feature", "horizon").agg(
        (
            pl.col("mean_ret").filter(pl.col("quantile") == q).first()
            - pl.col("mean_ret").filter(pl.col("quantile") == 1).first()
        ).alias("q_spread"),
        spearman("quantile", "mean_ret").alias("monotonicity"),
    )
    summary = (
        ic.group_by("feature", "horizon")
        .agg(
            pl.col("n").sum().alias("n_obs"),
            pl.len().alias("n_periods"),
            pl.col("ic").mean().alias("ic"),
            pl.col("rank_ic").mean().alias("rank_ic"),
            pl.col("rank_ic").std().alias("rank_ic_sd"),
            (pl.col("ic").mean() / pl.col("ic").std()).alias("icir"),
            (pl.col("rank_ic").mean() / pl.col("rank_ic").std()).alias("rank_icir"),
            (pl.col("rank_ic") > 0).mean().alias("hit_rate"),
        )
        .join(spread, on=["feature", "horizon"], how="left")
        .join(turnover, on="feature", how="left")
        .with_columns(
            (pl.col("rank_icir") * pl.col("n_periods").sqrt()).alias("t_stat"),
        )
        .fill_nan(None)
    )
    first = min(horizons)
    base = summary.filter(pl.col("horizon") == first).select(
        "feature", pl.col("rank_ic").alias("_ic0")
    )
    summary = (
        summary.join(base, on="feature", how="left")
        .with_columns(
            pl.when(pl.col("_ic0") != 0).then(pl.col("rank_ic") / pl.col("_ic0")).alias("ic_decay"),
            _grade(
                pl.col("rank_ic"), pl.col("rank_icir"), pl.col("monotonicity"), pl.col("turnover")
            ).alias("grade"),
        )
        .drop("_ic0")
    )
    order = {n: i for i, n in enumerate(names)}
    summary = summary.sort(
        pl.col("feature").replace_strict(order, return_dtype=pl.Int64), "horizon"
    )
    return FactorEvaluation(summary, ic, quantiles, mode)


def report_path(ctx: RunContext, ref: DatasetRef) -> Path:
    """Where the HTML report of one `factor_report` version lives."""
    return ctx.catalog.artifacts(ref) / "report.html"


def run(
    ctx: RunContext, features: DatasetRef | None = None, labels: DatasetRef | None = None
) -> DatasetRef:
    """Evaluate `features` against `labels` (latest versions unless given); write `factor_report`."""
    from quantlab.features.html import render_report

    features = features or ctx.catalog.latest("features")
    labels = labels or ctx.catalog.latest("labels")
    cfg = ctx.config.features.evaluate
    horizons = ctx.config.labels.all_horizons
    result = evaluate_factors(ctx.catalog.read(features), ctx.catalog.read(labels), horizons, cfg)
    return ctx.catalog.write(
        DATASET,
        result.summary,
        stage="evaluate",
        inputs=[features, labels],
        config_hash=slice_hash(ctx.config, READS, IGNORES),
        extra={"horizons": list(horizons), "primary_horizon": ctx.config.labels.horizon},
        artifacts=lambda ref, folder: (folder / "report.html").write_text(
            render_report(
                result,
                title=f"quantlab {ref}: {features} vs {labels}",
                primary=ctx.config.labels.horizon,
                top=cfg.top,
            )
        ),
    )
