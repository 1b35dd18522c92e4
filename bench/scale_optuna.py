"""Benchmark: Optuna trials per minute with 1 and 2 `train tune` workers on PostgreSQL.

Runs `quantlab.train.tune.tune` (what `quantlab train tune --workers N` runs: N spawned
processes on the train stage's studies) once with 1 worker and once with 2, each on a fresh
database of the server at --postgres (dropped afterwards), over the shipped sample's features
and labels under the default config with --trials finished trials per study. Two rates per
run: finished trials over the wall time of the whole call (process start, imports, the data,
the refits: what a user waits for) and over the storage's own span (first trial start to
last trial end: the search alone). Prints each and the 2-worker / 1-worker ratio.

    PYTHONPATH=src .venv/bin/python bench/scale_optuna.py \
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--trials 8] [--months 24]
        [--threads 1]

Every worker fits with --threads threads in both runs (default 1), so the ratio is the
workers' alone: at `train tune`'s own defaults (2 threads for one worker, cores / workers for
two) on a loaded 2-core machine, the one worker's OpenMP stalled and the ratio read 6.9x.

The machine may be shared: the load average is printed next to every figure. Not in
run_all.py (bench_*.py): it needs a PostgreSQL server.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import polars as pl
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # helpers.load_sample_klines reads the shipped sample


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def write_catalog(folder: Path, months: int) -> Path:
    """A default config over `folder` whose catalog holds the sample's features and labels
    (the config's symbols, the last `months` months of 2023-2024)."""
    from helpers import load_sample_klines
    from quantlab.context import RunContext
    from quantlab.features import build_features
    from quantlab.labels import build_labels

    path = folder / "config.yaml"
    raw = {
        "extends": str(ROOT / "configs" / "default.yaml"),
        "paths": {"data": str(folder / "data"), "experiments": str(folder / "exp")},
    }
    path.write_text(yaml.safe_dump(raw))
    ctx = RunContext.load(path)
    every = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13)]
    bars = pl.concat(
        [load_sample_klines(s, tuple(every[-months:])) for s in ctx.config.universe.symbols]
    )
    ctx.catalog.write(
        "features", build_features(bars, ctx.config.features), stage="f", config_hash="b"
    )
    ctx.catalog.write("labels", build_labels(bars, ctx.config.labels), stage="l", config_hash="b")
    return path


def run_tune(config: Path, storage: str, trials: int, workers: int, threads: int | None) -> dict:
    """`tune` with `workers` processes on `storage`: its wall time and both rates."""
    from quantlab.context import RunContext
    from quantlab.train.tune import tune, with_trials

    ctx = RunContext.load(config)
    train = ctx.config.train.model_copy(update={"storage": storage})
    ctx = RunContext(
        config=with_trials(ctx.config.model_copy(update={"train": train}), trials),
        catalog=ctx.catalog,
    )
    features, labels = ctx.catalog.latest("features"), ctx.catalog.latest("labels")
    start = time.perf_counter()
    report = tune(ctx, features, labels, workers, threads)
    wall = time.perf_counter() - start
    if not report.done or any(code != 0 for code in report.exit_codes):
        raise SystemExit(f"--workers {workers} did not finish: {report}")
    finished = sum(s.finished for s in report.studies)
    return {
        "studies": len(report.studies),
        "finished": finished,
        "wall_s": wall,
        "wall_rate": finished / (wall / 60),
        "storage_rate": report.trials_per_minute,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="an admin URL to a server where databases may be created",
    )
    parser.add_argument("--trials", type=int, default=8, help="finished trials per study")
    parser.add_argument("--months", type=int, default=24, help="of the sample's 2023-2024")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per fit in every worker, the same in both runs so the ratio is the "
        "workers' (0: train tune's default, 2 for one worker and cores / workers for two)",
    )
    args = parser.parse_args()

    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(args.postgres)
    admin = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
    )
    admin.autocommit = True
    runs: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-optuna-") as tmp:
        config = write_catalog(Path(tmp), args.months)
        print(
            f"train tune on PostgreSQL {url.host}:{url.port}, default config, sample "
            f"{args.months} months, {args.trials} trials per study, threads per fit "
            f"{args.threads or 'as train tune'}, {os.cpu_count()} cores "
            f"({load()})",
            flush=True,
        )
        for workers in (1, 2):
            db = f"quantlab_bench_{uuid.uuid4().hex[:8]}"
            admin.cursor().execute(f"CREATE DATABASE {db}")
            try:
                storage = url.set(drivername="postgresql+psycopg2", database=db)
                r = runs[workers] = run_tune(
                    config,
                    storage.render_as_string(hide_password=False),
                    args.trials,
                    workers,
                    args.threads or None,
                )
            finally:
                admin.cursor().execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            print(
                f"  --workers {workers}: {r['finished']} trials in {r['studies']} studies, "
                f"{r['wall_s']:.1f} s wall: {r['wall_rate']:.1f} trials/min (wall), "
                f"{r['storage_rate']:.1f} trials/min (storage span) ({load()})",
                flush=True,
            )
    one, two = runs[1], runs[2]
    print(
        f"ratio 2 workers / 1: {two['wall_rate'] / one['wall_rate']:.2f}x (wall), "
        f"{two['storage_rate'] / one['storage_rate']:.2f}x (storage span)"
    )


if __name__ == "__main__":
    main()
