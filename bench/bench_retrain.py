"""Benchmark: incremental retraining (init_model, refit) against a full walk-forward retrain:
wall time, and the out-of-sample metric each reaches on the same held-out bars.

On the SHIPPED SAMPLE (the configured universe's real 1h spot klines, default features,
labels and `train` config; `--trials` Optuna trials per fold): for each of `--windows` cut
points, going back `holdout_bars` at a time from the newest labelled bar,
- the held-out bars: the newest `lifecycle.incremental.holdout_bars` labelled bars per symbol;
- the champion: the walk-forward's final model on the bars whose label resolved before the
  update window (`--days` days of bars before the holdout);
- full: the walk-forward from scratch on every bar whose label resolved before the holdout;
- init_model / refit: the champion continued on the update window (`quantlab.lifecycle.
  incremental`, as the stage does: same row selection, purge and settings);
- unchanged: the champion itself, scoring the same bars.
Each model scores the same held-out bars; AUC and logloss are `quantlab.lifecycle.evaluate`'s
(the gate's). Times are wall seconds of the fit alone (the data and features are shared).
Nothing is asserted.

    .venv/bin/python bench/bench_retrain.py [--windows 3] [--days 14] [--trials 4]
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import numpy as np
import polars as pl

from bench_train_models import sample_klines  # bench/ is sys.path[0] when run
from quantlab.config import load_config
from quantlab.features import build_features
from quantlab.labels import build_labels, target_column
from quantlab.lifecycle import incremental as inc
from quantlab.lifecycle.evaluate import score_main
from quantlab.train.models import THREADS, Fitted, booster
from quantlab.train.splits import make_splits
from quantlab.train.targets import encode, label_column, task_of, with_target_time
from quantlab.train.walkforward import design, walk_forward
from quantlab.vocab import KEY


def frame_of(cfg) -> tuple[pl.DataFrame, list[str]]:
    u = cfg.universe
    bars = sample_klines(tuple(u.symbols), u.start, u.end)
    feats = build_features(bars, cfg.features)
    data = feats.join(build_labels(bars, cfg.labels), on=list(KEY), how="inner")
    data = with_target_time(data, cfg.train.target, cfg.labels).sort("open_time", "symbol")
    names = [c for c in feats.columns if c not in KEY]
    return data, names


def full_model(cfg, data: pl.DataFrame, features: list[str]) -> tuple[Fitted, float]:
    """The walk-forward's final model on `data` (every row labelled in it), and its time."""
    splits = make_splits(
        data, cfg.train, interval=cfg.universe.interval, horizon=cfg.labels.horizon
    )
    t0 = time.perf_counter()
    result = walk_forward(
        data,
        features,
        label_column(cfg.train.target, cfg.labels),
        target_column(cfg.labels),
        cfg.train,
        splits,
        cfg.universe.symbols,
    )
    return result.models[result.primary], time.perf_counter() - t0


def scores(cfg, fitted: Fitted, rows: pl.DataFrame, features: list[str]) -> dict[str, float]:
    task = task_of(cfg.train.target)
    x, _, _ = design(rows, features, cfg.universe.symbols, not cfg.train.per_symbol)
    prob = booster(fitted.kind, task).predict(fitted, x)
    frame = rows.select("label_up", pl.col(target_column(cfg.labels)).alias("ret")).with_columns(
        pl.Series("prob_up", prob), pl.Series("score", 2 * prob - 1)
    )
    return {m: score_main(m, frame) for m in ("auc", "logloss")}


def one_window(cfg, data, features, end, days, out):
    """All five models on the holdout whose newest labelled bar resolves by `end`."""
    inc_cfg = cfg.lifecycle.incremental
    target = label_column(cfg.train.target, cfg.labels)
    task = task_of(cfg.train.target)
    data = data.filter(pl.col("label_time") <= end)  # the catalog as it stood at `end`
    labelled = data.filter(pl.col(target).is_not_null() & pl.col("label_time").is_not_null())
    holdout = (
        labelled.sort("symbol", "open_time")
        .group_by("symbol", maintain_order=True)
        .tail(inc_cfg.holdout_bars)
    )
    start = holdout["open_time"].min()
    cut = start - timedelta(days=days)
    champion, t_champion = full_model(cfg, data.filter(pl.col("label_time") < cut), features)
    full, t_full = full_model(cfg, data.filter(pl.col("label_time") < start), features)
    row = {"holdout_start": start, "holdout_rows": holdout.height}
    row |= {f"unchanged_{k}": v for k, v in scores(cfg, champion, holdout, features).items()}
    row |= {f"full_{k}": v for k, v in scores(cfg, full, holdout, features).items()}
    row["full_s"] = t_full
    train_end = data.filter(pl.col("label_time") < cut)["label_time"].max()
    rows = inc.select_rows(
        data,
        target=target,
        train_end=train_end,
        holdout_bars=inc_cfg.holdout_bars,
        min_new_bars=inc_cfg.min_new_bars,
    )
    assert isinstance(rows, inc.UpdateRows), rows
    x, _, cat = design(rows.update, features, cfg.universe.symbols, not cfg.train.per_symbol)
    y = encode(task, rows.update[target].to_numpy())
    fit, valid = inc.split_valid(rows.update)
    for method in ("init_model", "refit"):
        t0 = time.perf_counter()
        update = inc.update_booster(
            champion.kind,
            champion.booster,
            x,
            y,
            method=method,
            task=task,
            n_classes=1,
            champion_rounds=champion.rounds,
            rounds=inc_cfg.rounds,
            decay_rate=inc_cfg.decay_rate,
            categorical=cat,
            valid=valid,
            fit=fit,
            seed=cfg.train.seed,
            threads=THREADS,
        )
        row[f"{method}_s"] = time.perf_counter() - t0
        fitted = Fitted(champion.kind, update.booster, update.rounds, task, cat, champion.scale)
        row |= {f"{method}_{k}": v for k, v in scores(cfg, fitted, holdout, features).items()}
        row[f"{method}_trees_added"] = update.added
    row["update_rows"] = rows.update.height
    row["champion_fit_s"] = t_champion
    out.append(row)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3, help="cut points, newest first")
    parser.add_argument("--days", type=int, default=14, help="update window before the holdout")
    parser.add_argument("--trials", type=int, default=4, help="Optuna trials per fold (full)")
    args = parser.parse_args()
    base = load_config()
    cfg = base.model_copy(update={"train": base.train.model_copy(update={"trials": args.trials})})
    data, features = frame_of(cfg)
    end = data["label_time"].max()
    step = timedelta(hours=cfg.lifecycle.incremental.holdout_bars)
    out: list[dict] = []
    for w in range(args.windows):
        row = one_window(cfg, data, features, end - w * step, args.days, out)
        print(
            f"window {w}: holdout from {row['holdout_start']:%Y-%m-%d %H:%M} "
            f"({row['holdout_rows']} rows), update on {row['update_rows']} rows"
        )
        for name in ("unchanged", "full", "init_model", "refit"):
            t = row.get(f"{name}_s")
            print(
                f"  {name:<11} auc {row[f'{name}_auc']:.4f}  logloss {row[f'{name}_logloss']:.4f}"
                + ("" if t is None else f"  {t:7.2f} s")
            )
    table = pl.DataFrame(out)
    print(f"\nmean over {len(out)} windows ({args.trials} trials/fold, {args.days}-day update):")
    for name in ("unchanged", "full", "init_model", "refit"):
        t = f"{table[f'{name}_s'].mean():7.2f} s" if f"{name}_s" in table.columns else ""
        print(
            f"  {name:<11} auc {table[f'{name}_auc'].mean():.4f}  "
            f"logloss {table[f'{name}_logloss'].mean():.4f}  {t}"
        )
    wins = {
        m: int(np.sum(table[f"{m}_auc"].to_numpy() > table["unchanged_auc"].to_numpy()))
        for m in ("full", "init_model", "refit")
    }
    print(f"  windows beating the unchanged champion on AUC: {wins}")


if __name__ == "__main__":
    main()
