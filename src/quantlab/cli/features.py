"""`quantlab features list|evaluate`: the feature registry, and how well each configured feature forecasts."""

from __future__ import annotations

import argparse

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext


def _cmd_list(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.features import feature_names, library

    configured = set(feature_names(ctx.config.features, funding=True))
    rows = [f for f in library(ctx.config.features) if args.family in (None, f.family)]
    print(f"{'':1} {'feature':<24} {'family':<10} {'warm-up':>8}  description")
    for f in rows:
        mark = "*" if f.name in configured else ""
        unit = "" if f.unit == "bars" else " ev"
        print(f"{mark:1} {f.name:<24} {f.family:<10} {f.warmup:>5}{unit:<3}  {f.description}")
    names = feature_names(ctx.config.features)
    print(
        f"\n{len(rows)} registered features listed; * = in this config's set "
        f"({len(names)} columns on bars, including {len(names) - len(ctx.config.features.columns)} "
        "multi-timeframe, cross-sectional and normalised ones; funding only with funding_rates)."
    )
    print(
        "Any parameters work, e.g. rsi_21 or ema_dist_100: the templates are `rsi_{n}` and so on."
    )
    return 0


def _cmd_evaluate(ctx: RunContext, args: argparse.Namespace) -> int:
    import polars as pl

    from quantlab.features.evaluate import report_path, run

    features = (
        DatasetRef("features", args.features_version) if args.features_version is not None else None
    )
    labels = DatasetRef("labels", args.labels_version) if args.labels_version is not None else None
    ref = run(ctx, features, labels)
    summary = ctx.catalog.read(ref).filter(pl.col("horizon") == ctx.config.labels.horizon)
    summary = summary.sort(pl.col("rank_icir").abs(), descending=True, nulls_last=True)
    print(f"{ref}  (horizon {ctx.config.labels.horizon}, ranked by |rank ICIR|)")
    print(
        f"{'feature':<26} {'grade':>5} {'rank_ic':>8} {'icir':>6} {'spread':>9} {'mono':>5} {'turn':>5}"
    )
    for r in summary.head(args.top).iter_rows(named=True):

        def f(v: float | None, spec: str) -> str:
            return "-" if v is None else format(v, spec)

        print(
            f"{r['feature']:<26} {r['grade']:>5} {f(r['rank_ic'], '+.4f'):>8} "
            f"{f(r['rank_icir'], '+.2f'):>6} {f(r['q_spread'], '+.5f'):>9} "
            f"{f(r['monotonicity'], '+.2f'):>5} {f(r['turnover'], '.2f'):>5}"
        )
    print(f"\nreport: {report_path(ctx, ref)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    feats = sub.add_parser("features", help="the feature registry and factor evaluation")
    feats_sub = feats.add_subparsers(dest="features_command", required=True)
    lst = feats_sub.add_parser(
        "list", help="every registered feature: family, warm-up, description"
    )
    lst.add_argument("--family", help="only this family (momentum, trend, volatility, ...)")
    lst.set_defaults(func=_cmd_list)
    ev = feats_sub.add_parser(
        "evaluate", help="IC, ICIR, decay, quantile spread, turnover and a grade per feature"
    )
    ev.add_argument("--features-version", type=int, help="default: the latest")
    ev.add_argument("--labels-version", type=int, help="default: the latest")
    ev.add_argument("--top", type=int, default=40, help="rows to print")
    ev.set_defaults(func=_cmd_evaluate)
