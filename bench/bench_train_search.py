"""Benchmark: Optuna search for walk-forward, with and without pruning, and `train tune` workers.

1. Race: one fold's study (the last fold's train and valid rows), TPE with the configured
   pruner (`train.pruner`) against the same TPE without one, each for the same wall time on a fresh SQLite storage
   (as the stage runs): finished trials per minute and the best valid logloss each reached.
   Goal: >= 2x the trials per minute at an equal best score. On the shipped sample (BTC, ETH,
   SOL 1h, 2023-2024) and on a SYNTHETIC panel (random walks from bench_features, read as 1h
   bars: no signal, so every trial overfits and "best" is the least overfit).
2. The default config end to end: `walk_forward` on the sample, 4 folds x `train.trials`
   trials with pruning, SQLite storage. Goal: <= 60 s on the 2-core dev machine.
3. With --postgres URL (an admin URL to a server where databases may be created):
   `quantlab train tune --workers 1` against `--workers 2`, each on a scratch database.

    uv run python bench/bench_train_search.py [--budget 60] [--symbols 10] [--days 730]
        [--skip-default] [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/test]

The machine is shared: the load average is printed next to every figure.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import optuna
import polars as pl

from quantlab.config import load_config
from quantlab.features import build_features, feature_names
from quantlab.labels import build_labels
from quantlab.train import make_splits, walk_forward, walkforward
from quantlab.train.models import booster
from quantlab.train.pruning import pruning_callback
from quantlab.train.search import SearchSettings, SharpeRule, load_or_create

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # helpers.load_sample_klines reads the shipped sample
_CLI = "import sys; from quantlab.cli import main; sys.exit(main(sys.argv[1:]))"


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def sample_frame(cfg) -> pl.DataFrame:
    from helpers import load_sample_klines

    months = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))
    bars = pl.concat([load_sample_klines(s, months) for s in cfg.universe.symbols])
    return _frame(bars, cfg)


def synthetic_frame(cfg, symbols: int, days: int) -> pl.DataFrame:
    """SYNTHETIC: bench_features' random-walk klines, the first days*24 bars read as 1h bars."""
    from bench_features import synth_klines

    hours = days * 24
    raw = synth_klines(symbols, math.ceil(hours / 1440)).group_by("symbol").head(hours)
    t = pl.int_range(pl.len()).over("symbol").cast(pl.Int64) * 3_600_000 + 1_672_531_200_000
    bars = raw.with_columns(
        t.cast(pl.Datetime("ms", "UTC")).alias("open_time"),
        (t + 3_599_999).cast(pl.Datetime("ms", "UTC")).alias("close_time"),
        pl.lit("1h").alias("interval"),
    )
    return _frame(bars, cfg)


def _frame(bars: pl.DataFrame, cfg) -> pl.DataFrame:
    feats = build_features(bars, cfg.features)
    return feats.join(build_labels(bars, cfg.labels), on=["symbol", "open_time"])


def race(data: pl.DataFrame, cfg, pruner: str, budget: float, folder: Path) -> dict:
    """One study on the last fold for `budget` seconds: finished trials, their rate, the best."""
    train_cfg = cfg.train.model_copy(update={"pruner": pruner})
    split = make_splits(data, train_cfg, interval="1h", horizon=cfg.labels.horizon)[-1]
    has = data["label_up"].is_not_null().to_numpy()
    train, valid = (np.sort(r[has[r]]) for r in (split.train, split.valid))
    x = data.select(feature_names(cfg.features)).to_numpy()
    y = data["label_up"].fill_null(0).to_numpy().astype(float)
    model = booster("lightgbm")
    search = SearchSettings(storage=f"sqlite:///{folder / f'race-{uuid.uuid4().hex}.db'}")
    study = load_or_create("race", train_cfg, search, seed=7)

    def objective(trial: optuna.Trial) -> float:
        callbacks = [] if pruner == "none" else [pruning_callback("lightgbm", trial, 10)]
        fitted = model.fit(
            x[train], y[train], x[valid], y[valid], model.suggest(trial), 42,
            train_cfg.num_boost_round, callbacks=callbacks,
        )  # fmt: skip
        p = np.clip(model.predict_proba(fitted, x[valid]), 1e-12, 1 - 1e-12)
        return float(-np.mean(y[valid] * np.log(p) + (1 - y[valid]) * np.log(1 - p)))

    start = time.perf_counter()
    study.optimize(objective, timeout=budget)
    wall = time.perf_counter() - start
    states = [t.state.name for t in study.trials]
    done = states.count("COMPLETE") + states.count("PRUNED")
    return {
        "trials": done,
        "pruned": states.count("PRUNED"),
        "per_min": done / wall * 60,
        "best": study.best_value,
        "wall": wall,
    }


def bench_race(name: str, data: pl.DataFrame, cfg, budget: float, folder: Path) -> None:
    print(f"\n[{name}] {data.height:,} rows; one fold's study for {budget:.0f} s each ({load()})")
    results = {}
    arms = ("none", cfg.train.pruner if cfg.train.pruner != "none" else "percentile")
    for pruner in arms:
        r = results[pruner] = race(data, cfg, pruner, budget, folder)
        print(
            f"  pruner={pruner:<10} {r['trials']:>4} trials ({r['pruned']} pruned) in "
            f"{r['wall']:.0f} s = {r['per_min']:.1f}/min, best valid logloss {r['best']:.5f} "
            f"({load()})"
        )
    ratio = results[arms[1]]["per_min"] / results["none"]["per_min"]
    delta = results[arms[1]]["best"] - results["none"]["best"]
    print(f"  pruning: {ratio:.2f}x the trials per minute (goal >= 2x); best logloss {delta:+.5f}")


def bench_default(data: pl.DataFrame, cfg, folder: Path) -> None:
    splits = make_splits(data, cfg.train, interval="1h", horizon=cfg.labels.horizon)
    rule = SharpeRule(cfg.signal, cfg.backtest.fees + cfg.backtest.slippage, 8760)
    search = SearchSettings(storage=f"sqlite:///{folder / 'default.db'}", sharpe=rule)
    # The stage's SHAP (explain_fold per fold) timed inside the same walk-forward: its share
    # of what the stage spends fitting each fold (the tuning trials and the refit).
    explain, shap_s = walkforward.explain_fold, []

    def timed_explain(*args, **kwargs):
        begin = time.perf_counter()
        try:
            return explain(*args, **kwargs)
        finally:
            shap_s.append(time.perf_counter() - begin)

    walkforward.explain_fold = timed_explain
    start = time.perf_counter()
    try:
        result = walk_forward(
            data, feature_names(cfg.features), "label_up", "fwd_ret_4", cfg.train, splits,
            search=search,
        )  # fmt: skip
    finally:
        walkforward.explain_fold = explain
    wall = time.perf_counter() - start
    states = result.trials["state"].value_counts().sort("state").rows()
    print(
        f"\n[default config, sample] {len(splits)} folds x {cfg.train.trials} trials, "
        f"pruner {cfg.train.pruner}: {wall:.1f} s (goal <= 60 s), trials {states} ({load()})"
    )
    shap = sum(shap_s)
    print(
        f"  SHAP in it (explain_fold on {len(shap_s)} folds): {shap:.2f} s = "
        f"{shap / (wall - shap):.1%} of the folds' tuning and refits (goal <= 20%)"
    )


def bench_workers(admin_url: str, cfg_path: Path, trials: int) -> None:
    """`train tune` with 1 and 2 workers, each on a fresh database of the server at admin_url."""
    import psycopg2
    import yaml
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    admin = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
    )
    admin.autocommit = True
    print(f"\n[train tune on PostgreSQL] sample, {trials} trials per study ({load()})")
    base = None
    for workers in (1, 2):
        db = f"quantlab_bench_{uuid.uuid4().hex[:8]}"
        admin.cursor().execute(f"CREATE DATABASE {db}")
        try:
            raw = yaml.safe_load(cfg_path.read_text())
            raw["train"].update(storage=url.set(database=db).render_as_string(False), trials=trials)
            path = cfg_path.with_name(f"tune-{workers}.yaml")
            path.write_text(yaml.safe_dump(raw))
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", _CLI, "--config", str(path), "train", "tune",
                 "--workers", str(workers)],
                check=True, capture_output=True,
            )  # fmt: skip
            wall = time.perf_counter() - start
            base = base or wall
            print(f"  --workers {workers}: {wall:.1f} s ({base / wall:.2f}x of 1 worker, {load()})")
        finally:
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def write_catalog(cfg, data_dir: Path) -> Path:
    """A config over `data_dir` whose catalog holds the sample's features and labels."""
    import yaml

    from quantlab.context import RunContext

    raw = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    raw["paths"] = {"data": str(data_dir / "data"), "experiments": str(data_dir / "exp")}
    path = data_dir / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    ctx = RunContext.load(path)
    months = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))
    from helpers import load_sample_klines

    bars = pl.concat([load_sample_klines(s, months) for s in cfg.universe.symbols])
    ctx.catalog.write("features", build_features(bars, cfg.features), stage="f", config_hash="b")
    ctx.catalog.write("labels", build_labels(bars, cfg.labels), stage="l", config_hash="b")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per race arm")
    parser.add_argument("--symbols", type=int, default=10, help="synthetic panel symbols")
    parser.add_argument("--days", type=int, default=730, help="synthetic panel days of 1h bars")
    parser.add_argument("--skip-race", action="store_true")
    parser.add_argument("--skip-default", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--postgres", help="admin URL for the `train tune` workers benchmark")
    parser.add_argument("--pg-trials", type=int, default=8)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_config()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        folder = Path(tmp)
        sample = sample_frame(cfg)
        if not args.skip_race:
            bench_race("shipped sample", sample, cfg, args.budget, folder)
        if not args.skip_synthetic and not args.skip_race:
            synth = synthetic_frame(cfg, args.symbols, args.days)
            bench_race(f"SYNTHETIC {args.symbols} symbols", synth, cfg, args.budget, folder)
        if not args.skip_default:
            bench_default(sample, cfg, folder)
        if args.postgres:
            bench_workers(args.postgres, write_catalog(cfg, folder), args.pg_trials)


if __name__ == "__main__":
    main()
