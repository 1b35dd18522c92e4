"""Benchmark: LightGBM against XGBoost fit time on the same walk-forward folds, and SHAP time
against fit time (goal: SHAP <= 20% of the fit).

Two data sets, each with the default feature set, labels and `train` windows from configs/:
1. the SHIPPED SAMPLE: the configured universe's real 1h spot klines in data/sample;
2. a larger SYNTHETIC panel: seeded random-walk 1m klines (bench_features.synth_klines),
   `--symbols` x `--days`, which the stage would never see; it shows how the ratios scale.

Per fold, as the walk-forward refits it: each kind is fitted on the fold's train + valid rows
(`num_boost_round` rounds, fixed parameters of about the same capacity: 31 leaves, depth 5),
then explained on the fold's test rows. "SHAP" is `quantlab.train.explain.explain_fold` as the
stage runs it: on a seeded sample of at most EXPLAIN_ROWS test rows, the native contributions,
the raw margin for the additivity check and the importance rows. "whole" is the same on every
test row, with how well the sample's mean-|SHAP| ranking matches the whole slice's (Spearman,
top-10 Jaccard). The beeswarm PNGs are drawn once per fold and timed apart (plotting, not
SHAP). Fits, and SHAP, of the two kinds run alternately, best of `--runs`, so a burst of load
on the shared machine hits both alike; the totals also give CPU seconds, which other load
sways less than wall time. Ratios are of times measured in this run; nothing is asserted.
This ratio is against one fixed 200-round refit, the hardest reading of the goal; what SHAP
costs the train stage against its own tuning and refits is printed by bench_train_search.py.

    .venv/bin/python bench/bench_train_models.py [--runs 3] [--symbols 10] [--days 30]
"""

from __future__ import annotations

import argparse
import os
import time
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import optuna
import polars as pl

from quantlab.train.explain import EXPLAIN_ROWS

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "data" / "spot" / "monthly" / "klines"
KINDS = ("lightgbm", "xgboost")
# Comparable capacity: LightGBM grows 31 leaves leaf-wise, XGBoost depth 5 (up to 32) level-wise.
PARAMS = {
    "lightgbm": {
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 100,
        "feature_fraction": 0.8,
        "lambda_l2": 1.0,
    },
    "xgboost": {
        "eta": 0.05,
        "max_depth": 5,
        "min_child_weight": 10.0,
        "colsample_bytree": 0.8,
        "lambda": 1.0,
    },
}
SHAP_GOAL = 0.20


def sample_klines(symbols: tuple[str, ...], start, end) -> pl.DataFrame:
    """The shipped real 1h spot klines of `symbols` within [start, end)."""
    from quantlab.exchange._klines_csv import read_kline_csv
    from quantlab.schema import normalize_klines

    parts = []
    for symbol in symbols:
        for path in sorted((SAMPLE / symbol / "1h").glob(f"{symbol}-1h-*.zip")):
            with zipfile.ZipFile(path) as zf:
                (name,) = zf.namelist()
                raw = read_kline_csv(zf.read(name), str(path))
            parts.append(normalize_klines(raw, "spot", symbol, "1h"))
    bars = pl.concat(parts)
    lo = pl.lit(start).cast(pl.Datetime("ms", "UTC"))
    hi = pl.lit(end).cast(pl.Datetime("ms", "UTC"))
    return bars.filter((pl.col("open_time") >= lo) & (pl.col("open_time") < hi))


def frame_and_splits(bars: pl.DataFrame, interval: str):
    """The training frame (features x labels), feature names and folds, as the stage makes them."""
    from quantlab.config import load_config
    from quantlab.features import build_features
    from quantlab.labels import build_labels
    from quantlab.train import make_splits

    cfg = load_config()
    feats = build_features(bars, cfg.features, interval=interval)
    labels = build_labels(bars, cfg.labels)
    data = feats.join(labels, on=["symbol", "open_time"], how="inner")
    names = [c for c in feats.columns if c not in ("symbol", "open_time")]
    splits = make_splits(data, cfg.train, interval=interval, horizon=cfg.labels.horizon)
    return data, names, splits, cfg.train


def _best(calls: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Best wall time of each call, run alternately `runs` times, and its CPU time as
    `cpu_<key>` (both threads counted: less swayed than wall time by other load)."""
    best = dict.fromkeys(calls, float("inf"))
    cpu = dict.fromkeys(calls, float("inf"))
    for _ in range(runs):
        for key, call in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            call()
            best[key] = min(best[key], time.perf_counter() - t0)
            cpu[key] = min(cpu[key], time.process_time() - c0)
    return best | {f"cpu_{k}": v for k, v in cpu.items()}


def _fold(x, y, names, split, fit_rows, test, models, params, cfg, runs) -> dict[str, float]:
    """One fold's figures: each kind's fit, SHAP on the sample and on the whole test slice,
    the sample's agreement with the whole slice, and the LightGBM beeswarms."""
    from quantlab.train.explain import explain_fold
    from quantlab.train.explain_plots import fold_beeswarms
    from quantlab.train.explain_stability import jaccard, rank_correlation, top_k_of, top_set

    fitted, explained, whole = {}, {}, {}

    def fit(kind: str) -> None:
        fitted[kind] = models[kind].fit(
            x[fit_rows], y[fit_rows], None, None, params[kind], cfg.seed, cfg.num_boost_round
        )

    def explain(kind: str, max_rows: int | None, into: dict) -> None:
        into[kind] = explain_fold(fitted[kind], x[test], names, split.fold, cfg.seed, max_rows)

    t = _best({f"fit_{k}": partial(fit, k) for k in KINDS}, runs)
    t |= _best({f"shap_{k}": partial(explain, k, EXPLAIN_ROWS, explained) for k in KINDS}, runs)
    t |= _best({f"whole_{k}": partial(explain, k, None, whole) for k in KINDS}, 1)
    for kind in KINDS:  # how far the sample's ranking is from the whole slice's
        a = explained[kind].importance["mean_abs_shap"].to_numpy()
        b = whole[kind].importance["mean_abs_shap"].to_numpy()
        k = top_k_of(len(a))
        t[f"corr_{kind}"] = rank_correlation(a, b) or float("nan")
        t[f"jac_{kind}"] = jaccard(top_set(a, k), top_set(b, k))
    t0 = time.perf_counter()  # drawn once, as the stage draws each fold's plots once
    fold_beeswarms(explained["lightgbm"])
    t["plots"] = time.perf_counter() - t0
    return t


def bench(label: str, bars: pl.DataFrame, interval: str, runs: int) -> None:
    from quantlab.train import booster

    data, names, splits, cfg = frame_and_splits(bars, interval)
    x = data.select(names).to_numpy()
    has = data["label_up"].is_not_null().to_numpy()
    y = data["label_up"].fill_null(0).to_numpy().astype(float)
    models = {k: booster(k) for k in KINDS}
    params = {k: models[k].suggest(optuna.trial.FixedTrial(PARAMS[k])) for k in KINDS}
    print(
        f"\n== {label}: {data.height:,} rows x {len(names)} features, {len(splits)} folds, "
        f"{cfg.num_boost_round} rounds, best of {runs} [{_load()}]"
    )
    print(
        f"  SHAP = explain_fold on <= {EXPLAIN_ROWS:,} sampled test rows (what the stage runs); "
        "whole = on every test row; rho/J = Spearman and top-10 Jaccard of the sample's "
        "mean |SHAP| against the whole slice's"
    )
    print(
        f"  {'fold':>4} {'fit rows':>8} {'test':>6} | {'LGB fit':>7} {'XGB fit':>7} {'X/L':>5} | "
        f"{'LGB SHAP':>8} {'/fit':>5} {'whole':>6} {'/fit':>5} {'rho':>5} {'J':>4} | "
        f"{'XGB SHAP':>8} {'/fit':>5} {'whole':>6} {'/fit':>5} {'rho':>5} {'J':>4} | {'plots':>5}"
    )
    totals: dict[str, float] = {}
    for split in splits:
        fit_rows = np.concatenate([split.train, split.valid])
        fit_rows, test = fit_rows[has[fit_rows]], split.test[has[split.test]]
        t = _fold(x, y, names, split, fit_rows, test, models, params, cfg, runs)
        for key in ("fit", "shap", "whole", "cpu_fit", "cpu_shap", "cpu_whole"):
            for kind in KINDS:
                totals[f"{key}_{kind}"] = totals.get(f"{key}_{kind}", 0.0) + t[f"{key}_{kind}"]
        totals["plots"] = totals.get("plots", 0.0) + t["plots"]
        cells = " | ".join(
            f"{t[f'shap_{k}']:>7.2f}s {t[f'shap_{k}'] / t[f'fit_{k}']:>5.0%} "
            f"{t[f'whole_{k}']:>5.1f}s {t[f'whole_{k}'] / t[f'fit_{k}']:>5.0%} "
            f"{t[f'corr_{k}']:>5.2f} {t[f'jac_{k}']:>4.2f}"
            for k in KINDS
        )
        print(
            f"  {split.fold:>4} {len(fit_rows):>8,} {len(test):>6,} | "
            f"{t['fit_lightgbm']:>6.2f}s {t['fit_xgboost']:>6.2f}s "
            f"{t['fit_xgboost'] / t['fit_lightgbm']:>5.2f} | {cells} | {t['plots']:>4.2f}s"
        )
    lgb_fit, xgb_fit = totals["fit_lightgbm"], totals["fit_xgboost"]
    lgb_cpu, xgb_cpu = totals["cpu_fit_lightgbm"], totals["cpu_fit_xgboost"]
    print(
        f"  all folds: fit LightGBM {lgb_fit:.2f}s, XGBoost {xgb_fit:.2f}s "
        f"(XGBoost/LightGBM {xgb_fit / lgb_fit:.2f}x; in CPU seconds {lgb_cpu:.2f} and "
        f"{xgb_cpu:.2f}, {xgb_cpu / lgb_cpu:.2f}x)"
    )
    for kind in KINDS:
        share = totals[f"shap_{kind}"] / totals[f"fit_{kind}"]
        print(
            f"  SHAP {kind}: {totals[f'shap_{kind}']:.2f}s = {share:.1%} of its fit "
            f"(goal <= {SHAP_GOAL:.0%}: {'met' if share <= SHAP_GOAL else 'NOT met'}); "
            f"on every test row {totals[f'whole_{kind}']:.2f}s = "
            f"{totals[f'whole_{kind}'] / totals[f'fit_{kind}']:.1%}"
        )
        print(
            f"    in CPU seconds: fit {totals[f'cpu_fit_{kind}']:.2f}, SHAP "
            f"{totals[f'cpu_shap_{kind}']:.2f} "
            f"({totals[f'cpu_shap_{kind}'] / totals[f'cpu_fit_{kind}']:.1%}), every test row "
            f"{totals[f'cpu_whole_{kind}']:.2f} "
            f"({totals[f'cpu_whole_{kind}'] / totals[f'cpu_fit_{kind}']:.1%})"
        )
    print(
        f"  beeswarm PNGs (LightGBM, one per fold): {totals['plots']:.2f}s, "
        f"{totals['plots'] / lgb_fit:.1%} of the LightGBM fit [{_load()}]"
    )


def _load() -> str:
    return "load avg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=10, help="synthetic panel: symbols")
    parser.add_argument("--days", type=int, default=30, help="synthetic panel: days of 1m bars")
    parser.add_argument("--no-synthetic", action="store_true")
    args = parser.parse_args()

    from quantlab.config import load_config

    universe = load_config().universe
    print(f"machine: {os.cpu_count()} cores; boosters run {_threads()} threads [{_load()}]")
    t0 = time.perf_counter()
    import shap  # noqa: F401  (paid once per process, before any plot is timed)

    print(f"shap import: {time.perf_counter() - t0:.1f}s (once per process; not in the figures)")
    bars = sample_klines(tuple(universe.symbols), universe.start, universe.end)
    bench(
        f"SHIPPED SAMPLE ({', '.join(universe.symbols)} 1h, {universe.start} to {universe.end})",
        bars,
        "1h",
        args.runs,
    )
    if not args.no_synthetic:
        from bench_features import synth_klines

        bars = synth_klines(args.symbols, args.days)
        bench(
            f"SYNTHETIC panel ({args.symbols} symbols x {args.days} days of seeded 1m bars)",
            bars,
            "1m",
            max(1, args.runs - 2),
        )


def _threads() -> int:
    from quantlab.train.models import THREADS

    return THREADS


if __name__ == "__main__":
    main()
