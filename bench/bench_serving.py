"""Benchmark: `quantlab predict` and `quantlab regime current` latency (issue 16, item 8).

On the catalog and registry of `--config` (after `make run`), real shipped data, measured in
the same run:

1. Warm: one process, one Scorer, `--calls` calls each, p50/p95/max. The klines version does
   not change between calls, so the newest bars' features are cached: a call reads the
   champion alias, checks the validated klines version and scores.
2. Warm, a new bar every call: the cached tail dropped before each call, so each reads the
   newest bars (pushdown on the Delta table) and builds their features: what the first call
   after a new klines version costs.
3. Reference: the newest bar's features from the whole table (every bar read, then
   `build_features`), what the tail avoids; printed as a ratio to (2).
4. The champion's scoring alone, warm, on the rows a `predict` scores: `lgbm_text` (what
   serving runs) against `lightgbm.Booster.predict` (the library, same rows, same rounds);
   and, in a fresh process, `import lightgbm` + `Booster(model_file=)` against
   `lgbm_text.load_text` on the same file: what the library would add to a cold call.
5. Cold: a fresh process per answer. The first call's latency measured inside it, and the
   whole process's wall time (interpreter start and imports included), each printed; and
   the CLI command's wall time (`quantlab predict SYMBOL --json`).

Goals: p95 <= 50 ms warm; cold first call <= 500 ms. A regime answer needs a
`<lifecycle.regime.register_as>-<SYMBOL>` champion; without one it is skipped, and says so.

    uv run python bench/bench_serving.py [--config PATH] [--symbol BTCUSDT] [--calls 100]

The machine is shared: the load average is printed next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COLD = """
import json, sys, time
t0 = time.perf_counter()
from quantlab.context import RunContext
from quantlab.serving import answers
from quantlab.serving.scorer import Scorer
ctx = RunContext.load(sys.argv[1])
t1 = time.perf_counter()
answer = getattr(answers, sys.argv[2])(Scorer(ctx), sys.argv[3])
t2 = time.perf_counter()
print(json.dumps({"imports_ms": (t1 - t0) * 1e3, "first_ms": (t2 - t1) * 1e3,
                  "answer_ms": answer["latency_ms"], "version": answer["version"]}))
"""


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (
        f"p50 {np.percentile(a, 50):7.2f} ms  p95 {np.percentile(a, 95):7.2f} ms  "
        f"max {a.max():7.2f} ms  (n={len(a)})"
    )


def _warm(scorer, fn, symbol: str, calls: int, fresh: bool) -> list[float]:
    out = []
    for _ in range(calls):
        if fresh:
            scorer._tails.clear()  # a new klines version: the tail is read and built again
        out.append(fn(scorer, symbol)["latency_ms"])
    return out


def _reference(ctx, symbol: str, runs: int) -> list[float]:
    """The newest bar's features from the whole table, as the features stage builds them."""
    from datetime import UTC, datetime

    import polars as pl

    from quantlab.serving.tail import build_tail, read_tail, serving_symbols, validated

    out = []
    for _ in range(runs):
        t = time.perf_counter()
        klines = validated(ctx.catalog)
        syms = serving_symbols(ctx.config, symbol)
        bars = read_tail(ctx.catalog, klines, ctx.config, syms, None, datetime.now(UTC))
        feats = build_tail(bars, ctx.config.features, ctx.config.universe.interval)
        feats.filter(pl.col("symbol") == symbol).tail(1)
        out.append((time.perf_counter() - t) * 1e3)
    return out


LIBRARY = """
import sys, time
t0 = time.perf_counter()
from quantlab.serving.lgbm_text import load_text
text = load_text(sys.argv[1])
t1 = time.perf_counter()
import lightgbm
booster = lightgbm.Booster(model_file=sys.argv[1])
t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3)
"""


def _library(scorer, symbol: str, runs: int) -> None:
    """The champion scored by `lgbm_text` and by `lightgbm.Booster.predict`, same rows."""
    from quantlab.tracking.registry import model_file

    model = scorer.champion(scorer.main_name(symbol))
    if model.trees is None:
        print(f"scoring: {model.ref} is {model.kind}; no lgbm_text reference")
        return
    rows = scorer.tail(symbol, scorer.ctx.config.signal.smoothing).features
    rows = rows.filter(rows["symbol"] == symbol).tail(scorer.ctx.config.signal.smoothing)
    x = model.matrix(rows)
    ours, lib = [], []
    for _ in range(runs):
        t = time.perf_counter()
        a = model.trees.predict(x, model.rounds)
        ours.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        b = model.booster.predict(x, num_iteration=model.rounds)
        lib.append((time.perf_counter() - t) * 1e3)
    same = "the same bits" if np.array_equal(a, b) else f"max diff {np.abs(a - b).max():.2e}"
    print(
        f"scoring {len(x)} rows x {model.trees.iterations} iterations ({same}): "
        f"lgbm_text median {np.median(ours):.3f} ms, lightgbm.Booster.predict median "
        f"{np.median(lib):.3f} ms (same run)  load {_load()}"
    )
    path = str(model_file(model.folder, model.kind))
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", LIBRARY, path], capture_output=True, text=True, check=True
        )
        parse_ms, lib_ms = map(float, done.stdout.split())
        print(
            f"fresh process: lgbm_text.load_text {parse_ms:.1f} ms; import lightgbm + "
            f"Booster(model_file=) {lib_ms:.1f} ms  load {_load()}"
        )


def _cold(config: str, fn: str, symbol: str) -> dict:
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", COLD, config, fn, symbol], capture_output=True, text=True, cwd=ROOT
    )
    wall = (time.perf_counter() - t) * 1e3
    if done.returncode != 0:
        raise SystemExit(f"the cold {fn} process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"wall_ms": wall}


def _cli(config: str, argv: list[str]) -> float:
    t = time.perf_counter()
    exe = str(Path(sys.executable).parent / "quantlab")
    subprocess.run([exe, "--config", config, *argv], capture_output=True, check=True, cwd=ROOT)
    return (time.perf_counter() - t) * 1e3


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--fresh-calls", type=int, default=20)
    p.add_argument("--cold-runs", type=int, default=3)
    args = p.parse_args()

    from quantlab.context import RunContext
    from quantlab.serving import answers
    from quantlab.serving.scorer import NoChampion, Scorer
    from quantlab.serving.tail import tail_rows

    ctx = RunContext.load(args.config)
    cfg = ctx.config
    rows = tail_rows(cfg.features, cfg.universe.interval, cfg.signal.smoothing)
    print(
        f"config {args.config}: {cfg.universe.symbols} {cfg.universe.interval} "
        f"{cfg.universe.start}..{cfg.universe.end}; the tail reads {rows} bars per symbol"
    )
    scorer = Scorer(ctx)
    kinds = [("predict", answers.predict)]
    try:
        answers.regime_current(scorer, args.symbol)
        kinds.append(("regime_current", answers.regime_current))
    except NoChampion as exc:
        print(f"regime current: skipped ({exc})")
    first = {}
    for name, fn in kinds:
        first[name] = fn(scorer, args.symbol)["latency_ms"]
    for name, fn in kinds:
        warm = _warm(scorer, fn, args.symbol, args.calls, fresh=False)
        print(f"{name:<15} warm, cached tail     {_stats(warm)}  load {_load()}")
        fresh = _warm(scorer, fn, args.symbol, args.fresh_calls, fresh=True)
        print(f"{name:<15} warm, new bar         {_stats(fresh)}  load {_load()}")
    ref = _reference(ctx, args.symbol, 3)
    fresh = _warm(scorer, answers.predict, args.symbol, args.fresh_calls, fresh=True)
    print(
        f"reference: newest bar's features from the whole table: median {np.median(ref):.1f} ms "
        f"= {np.median(ref) / np.median(fresh):.1f}x predict with a new bar "
        f"({np.median(fresh):.1f} ms, same run)  load {_load()}"
    )
    _library(scorer, args.symbol, args.calls)
    for name, _ in kinds:
        for _ in range(args.cold_runs):
            c = _cold(args.config, name, args.symbol)
            print(
                f"{name:<15} cold process: first call {c['first_ms']:7.1f} ms, imports + config "
                f"{c['imports_ms']:7.1f} ms, process wall {c['wall_ms']:7.1f} ms  load {_load()}"
            )
    for argv in (["predict", args.symbol, "--json"], ["regime", "current", args.symbol, "--json"]):
        if argv[0] == "regime" and len(kinds) == 1:
            continue
        wall = [_cli(args.config, argv) for _ in range(args.cold_runs)]
        print(f"`quantlab {' '.join(argv)}` wall: median {np.median(wall):.0f} ms  load {_load()}")


if __name__ == "__main__":
    main()
