"""Benchmark: the backtest engine's sweep throughput, and a cold backtest task with a warm or an
empty numba cache (goals: >= 10 M orders/s on a sweep; <= 2 s beyond `import vectorbt`).

1. SWEEP. The shipped sample's real 1h spot bars (BTC, ETH, SOL, 2023-2024) and K SYNTHETIC
   target paths (seeded random weights that change every bar, so nearly every cell is an
   order: the dense case vectorbt's "1M orders" figure uses). quantlab's sweep core
   (`engine_nb.sweep`: fees, impact slippage, step rounding, min notional, margin, kill-switch)
   against vectorbt's cached `Portfolio.from_orders` on the same targets (TargetPercent,
   cash sharing per configuration, fees + a flat slippage; no filters, no funding: less
   work). Both compiled first; best of `--runs`. "orders/s" counts filled orders; "cells/s"
   counts the target cells looked at (configurations x bars x symbols).
2. COLD TASK. `quantlab run backtest` in a fresh interpreter on a copy of this project's
   catalog (run `make run` first), once with an empty NUMBA_CACHE_DIR and then twice with the
   cache it left (warm), against a fresh interpreter's `import vectorbt` (plotly, pandas,
   numba: what quantlab cannot change). Each run gets another `backtest.init_cash` so the
   stage really runs (a repeated fingerprint would reuse the version).

    .venv/bin/python bench/bench_backtest.py [--configs 200] [--runs 3] [--skip-cold]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import load_sample_klines  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
MONTHS = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))


def _bars() -> pl.DataFrame:
    return pl.concat([load_sample_klines(s, MONTHS) for s in SYMBOLS]).select(
        "symbol", "open_time", "open", "high", "low", "close", "volume", "quote_volume"
    )


def _rules(symbols: list[str]):
    from quantlab.portfolio.venue import venue_rules

    info = json_exchange_info()
    return venue_rules(info, symbols, "spot")


def json_exchange_info() -> pl.DataFrame:
    import json

    from quantlab.ingest.exchange_info import snapshot_frame

    raw = json.loads((ROOT / "data/sample/api/exchangeInfo/spot.json").read_text())
    return snapshot_frame(raw, "spot", int(raw.get("serverTime") or 0))


def bench_sweep(n_configs: int, runs: int) -> None:
    import vectorbt as vbt

    from quantlab.backtest.arrays import KillSettings, prepare_inputs
    from quantlab.config import BacktestConfig
    from quantlab.portfolio import engine_nb as nb

    bars = _bars()
    symbols = sorted(SYMBOLS)
    cfg = BacktestConfig()
    kill = KillSettings(kill_drawdown=0.99, kill_daily_loss=None, kill_cooldown_bars=24)
    inputs = prepare_inputs(bars, cfg, _rules(symbols), market="spot", kill=kill)
    n_bars, n_sym = inputs.open.shape
    rng = np.random.default_rng(7)
    # SYNTHETIC targets: long-only weights in [0, 1/S], a new draw every bar.
    targets = rng.uniform(0.0, 1.0 / n_sym, size=(n_configs, n_bars, n_sym))
    cells = targets.size

    def ours():
        _equity, counts = nb.sweep(
            inputs.open, inputs.close_ff, inputs.has_bar, targets, inputs.prev_qv, inputs.sigma,
            inputs.day_id, inputs.sym, inputs.par, inputs.ev,
        )  # fmt: skip
        return int(counts[:, nb.C_FILLS].sum())

    index = bars["open_time"].unique().sort().to_pandas()
    import pandas as pd

    wide = np.concatenate(list(targets), axis=1)  # [T, K*S], configuration-major
    close = np.tile(inputs.close_ff, (1, n_configs))
    price = np.tile(np.where(inputs.has_bar, inputs.open, np.nan), (1, n_configs))
    size = np.where(np.isnan(price), np.nan, wide)
    price = np.where(np.isnan(price), close, price)
    groups = np.repeat(np.arange(n_configs), n_sym)
    frame = lambda a: pd.DataFrame(a, index=index)  # noqa: E731

    def theirs():
        pf = vbt.Portfolio.from_orders(
            close=frame(close), size=frame(size), size_type="targetpercent", price=frame(price),
            fees=0.001, slippage=0.0005, init_cash=cfg.init_cash, cash_sharing=True,
            group_by=groups, call_seq="auto", freq="1h",
        )  # fmt: skip
        return int(pf.orders.count().sum())

    for fn in (ours, theirs):
        fn()  # compile / load the cache
    best = {}
    for name, fn in (("quantlab sweep core", ours), ("vectorbt from_orders", theirs)):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            orders = fn()
            times.append(time.perf_counter() - t0)
        best[name] = (min(times), orders)
        print(
            f"  {name:<22} {min(times):7.3f} s  {orders:>10,} orders  "
            f"{orders / min(times) / 1e6:6.1f} M orders/s  {cells / min(times) / 1e6:6.1f} M cells/s"
        )
    ours_t, theirs_t = best["quantlab sweep core"][0], best["vectorbt from_orders"][0]
    print(
        f"  {n_configs} configurations x {n_bars} bars x {n_sym} symbols (SYNTHETIC targets on "
        f"real prices); quantlab / vectorbt time ratio {ours_t / theirs_t:.2f}"
    )


def _fresh(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def bench_cold(runs: int) -> None:
    if not (ROOT / "data" / "catalog" / "targets").exists():
        print("  cold task: no research run in data/catalog; run `make run` first (skipped)")
        return
    with tempfile.TemporaryDirectory(prefix="quantlab-bench-") as tmp:
        home = Path(tmp)
        for part in ("configs", "data/catalog", "experiments"):
            shutil.copytree(ROOT / part, home / part, symlinks=True)
        cache = home / "numba-cache"
        env = {**os.environ, "QUANTLAB_HOME": str(home), "NUMBA_CACHE_DIR": str(cache)}
        env.pop("QUANTLAB_CONFIG", None)
        importing = min(_fresh("import vectorbt", env) for _ in range(runs))
        timings = []
        for i in range(1 + 2 * runs):
            if i == 0:
                shutil.rmtree(cache, ignore_errors=True)
            conf = home / "configs" / f"bench-{i}.yaml"
            conf.write_text(f"extends: default.yaml\nbacktest:\n  init_cash: {100001 + i}\n")
            code = "import sys; from quantlab.cli import main; sys.exit(main(['run', 'backtest']))"
            timings.append(_fresh(code, {**env, "QUANTLAB_CONFIG": str(conf)}))
        cold, warm = timings[0], min(timings[1:])
        print(f"  fresh `import vectorbt`: {importing:6.2f} s (best of {runs})")
        print(
            f"  backtest task, empty numba cache: {cold:6.2f} s = import + {cold - importing:5.2f} s"
        )
        print(
            f"  backtest task, warm numba cache:  {warm:6.2f} s = import + {warm - importing:5.2f} s"
            f"  (goal <= 2 s beyond the import)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    print("sweep:")
    bench_sweep(args.configs, args.runs)
    if not args.skip_cold:
        print("cold backtest task:")
        bench_cold(args.runs)


if __name__ == "__main__":
    main()
