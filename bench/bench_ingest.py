"""Benchmark: the ingest stage at scale, against the goals of issue 3.

1. bulk: one symbol-year of 1m klines (525,600 rows in 12 monthly zips, each SHA-256
   verified against its .CHECKSUM) from a data.binance.vision folder into `klines`;
   goal <= 3 s.
2. REST: the same year through the replay exchange (run as its own process, no weight
   limit), end to end into `klines`; goal >= 100,000 klines/s.
3. incremental: the hourly update of 50 symbols (one new closed 1h candle each) on a
   table already holding a year of them; goal <= 5 s.

The klines are SYNTHETIC (a seeded random walk), written by this script into a temporary
folder in the data.binance.vision layout: the shipped sample is far smaller than these
sizes. Every figure is printed with its ratio to the goal.

    uv run python bench/bench_ingest.py [--symbols 50] [--runs 1]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from calendar import timegm
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl

from quantlab.catalog import Catalog
from quantlab.ingest import BulkSource, IngestResult, RestSource, ingest_klines
from quantlab.ingest.sources import KlineSource

YEAR = 2023  # 365 days: 525,600 one-minute candles
JAN = timegm((YEAR, 1, 1, 0, 0, 0)) * 1000
NEXT_JAN = timegm((YEAR + 1, 1, 1, 0, 0, 0)) * 1000
STEP = {"1m": 60_000, "1h": 3_600_000}
DECIMALS = ("open", "high", "low", "close", "volume", "qv", "tbb", "tbq")
T = TypeVar("T")


def write_year(root: Path, symbol: str, interval: str, seed: int) -> int:
    """12 monthly zips (+ .CHECKSUM) of synthetic klines for `symbol`; returns the row count."""
    rng = np.random.default_rng(seed)
    step = STEP[interval]
    folder = root / "data" / "spot" / "monthly" / "klines" / symbol / interval
    folder.mkdir(parents=True, exist_ok=True)
    price, rows = 100.0, 0
    for month in range(1, 13):
        lo = timegm((YEAR, month, 1, 0, 0, 0)) * 1000
        hi = timegm((YEAR + month // 12, month % 12 + 1, 1, 0, 0, 0)) * 1000
        opens = np.arange(lo, hi, step, dtype=np.int64)
        n = opens.size
        close = price * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
        open_ = np.concatenate([[price], close[:-1]])
        price = float(close[-1])
        wick = np.abs(rng.normal(0, 0.0005, (2, n)))
        volume = rng.gamma(2.0, 10.0, n)
        frame = pl.DataFrame(
            {
                "open_time": opens,
                "open": open_,
                "high": np.maximum(open_, close) * (1 + wick[0]),
                "low": np.minimum(open_, close) * (1 - wick[1]),
                "close": close,
                "volume": volume,
                "close_time": opens + step - 1,
                "qv": volume * close,
                "trades": rng.integers(1, 5000, n),
                "tbb": volume / 2,
                "tbq": volume * close / 2,
                "ignore": np.zeros(n, dtype=np.int64),
            }
        ).with_columns(pl.col(c).round(8).cast(pl.String) for c in DECIMALS)
        csv = io.BytesIO()
        frame.write_csv(csv, include_header=False)
        name = f"{symbol}-{interval}-{YEAR}-{month:02d}"
        blob = io.BytesIO()
        with zipfile.ZipFile(blob, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr(f"{name}.csv", csv.getvalue())
        (folder / f"{name}.zip").write_bytes(blob.getvalue())
        digest = hashlib.sha256(blob.getvalue()).hexdigest()
        (folder / f"{name}.zip.CHECKSUM").write_text(f"{digest}  {name}.zip\n")
        rows += n
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReplayProcess:
    """The replay exchange in its own process, as a remote exchange would be; no weight limit."""

    def __init__(self, root: Path, now_ms: int | None = None):
        self.port = free_port()
        code = (
            "import sys, time\n"
            "from quantlab.exchange.replay import ReplayServer\n"
            f"s = ReplayServer({str(root)!r}, port={self.port}, weight_limit_per_min=10**12,"
            f" now_ms={now_ms!r}).start()\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        self.base_url = f"http://127.0.0.1:{self.port}"

    def warm(self, symbols: list[str], interval: str) -> None:
        """Let the exchange load its files first: that is its cost, not the ingest's."""
        source = RestSource(self.base_url)
        client = source.client("spot")
        for symbol in symbols:
            client.fetch_klines(symbol, interval, JAN, JAN)
        source.close()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def verdict(ok: bool) -> str:
    return "meets the goal" if ok else "MISSES the goal"


def timed_ingest(
    catalog: Catalog,
    source: KlineSource,
    symbols: list[str],
    interval: str,
    start_ms: int,
    end_ms: int,
) -> tuple[float, IngestResult]:
    """Seconds one spot ingest takes end to end, and its result; `source` is closed after."""
    try:
        t0 = time.perf_counter()
        result = ingest_klines(
            catalog,
            source,
            market="spot",
            interval=interval,
            symbols=symbols,
            start_ms=start_ms,
            end_ms=end_ms,
        )
        return time.perf_counter() - t0, result
    finally:
        source.close()


def best_of(runs: int, run_once: Callable[[int], tuple[float, T]]) -> tuple[float, T]:
    """The fastest of `runs` calls of `run_once(run)`, each returning (seconds, details)."""
    return min((run_once(run) for run in range(runs)), key=lambda timed: timed[0])


def bench_bulk(tmp: Path, vision: Path, runs: int) -> float:
    def run_once(run: int) -> tuple[float, None]:
        catalog = Catalog(tmp / f"bulk{run}")
        seconds, result = timed_ingest(
            catalog, BulkSource(vision), ["SYNUSDT"], "1m", JAN, NEXT_JAN
        )
        assert result.ok and result.rows_added == 525_600, result
        assert catalog.load("klines").height == 525_600
        return seconds, None

    return best_of(runs, run_once)[0]


def bench_rest(tmp: Path, vision: Path, runs: int) -> tuple[float, int, int]:
    def run_once(run: int) -> tuple[float, tuple[int, int]]:
        # A fresh exchange per run, so its weight counter holds this run's requests only.
        server = ReplayProcess(vision)
        try:
            server.warm(["SYNUSDT"], "1m")
            source = RestSource(server.base_url, {"weight_limit_per_min": 10**12})
            catalog = Catalog(tmp / f"rest{run}")
            seconds, result = timed_ingest(catalog, source, ["SYNUSDT"], "1m", JAN, NEXT_JAN)
        finally:
            server.close()
        assert result.ok and result.rows_added == 525_600, result
        return seconds, (result.requests, result.weight_used)

    best, (requests, weight) = best_of(runs, run_once)
    return best, requests, weight


def bench_incremental(tmp: Path, n_symbols: int, runs: int) -> tuple[float, int, int]:
    root = tmp / "vision_1h"
    symbols = [f"SYN{i:02d}USDT" for i in range(n_symbols)]
    for i, symbol in enumerate(symbols):
        write_year(root, symbol, "1h", seed=100 + i)
    last_open = NEXT_JAN - STEP["1h"]

    def run_once(run: int) -> tuple[float, tuple[int, int]]:
        catalog = Catalog(tmp / f"incremental{run}")
        # The history: the year up to the candle before the last, from the bulk files
        # (not timed: it is the table the update starts from).
        _, seed = timed_ingest(catalog, BulkSource(root), symbols, "1h", JAN, last_open)
        assert seed.ok
        stored = catalog.load("klines").height
        # An hour later the exchange has closed one more candle per symbol.
        server = ReplayProcess(root, now_ms=NEXT_JAN + 1000)
        try:
            server.warm(symbols, "1h")
            source = RestSource(server.base_url)
            seconds, result = timed_ingest(catalog, source, symbols, "1h", JAN, NEXT_JAN)
        finally:
            server.close()
        assert result.ok and result.rows_added == n_symbols, result
        return seconds, (stored, result.requests)

    best, (stored, requests) = best_of(runs, run_once)
    return best, stored, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50, help="symbols of the incremental run")
    parser.add_argument("--runs", type=int, default=1, help="best of this many runs each")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-bench-ingest-"))
    try:
        print(
            "data: SYNTHETIC klines (seeded random walk) generated by this benchmark into a "
            f"temporary data.binance.vision folder ({tmp}); not market data"
        )
        vision = tmp / "vision"
        t0 = time.perf_counter()
        rows = write_year(vision, "SYNUSDT", "1m", seed=1)
        print(
            f"generated 1 symbol-year of 1m: {rows:,} rows, 12 zips "
            f"in {time.perf_counter() - t0:.1f} s"
        )

        bulk = bench_bulk(tmp, vision, args.runs)
        print(
            f"bulk ingest, 1 symbol-year of 1m ({rows:,} rows, 12 monthly zips, checksums "
            f"verified): {bulk:.2f} s; goal <= 3 s: {bulk / 3:.2f}x the budget, "
            f"{verdict(bulk <= 3)}"
        )

        rest, requests, weight = bench_rest(tmp, vision, args.runs)
        rate = rows / rest
        print(
            f"REST ingest through the replay exchange, no weight limit ({rows:,} klines, "
            f"{requests:,} requests, weight {weight:,} incl. the warm-up's 3): {rest:.2f} s = "
            f"{rate:,.0f} klines/s; "
            f"goal >= 100,000 klines/s: {rate / 100_000:.2f}x the goal, {verdict(rate >= 100_000)}"
        )

        inc, stored, inc_requests = bench_incremental(tmp, args.symbols, args.runs)
        print(
            f"hourly incremental update of {args.symbols} symbols (1 new 1h candle each on "
            f"{stored:,} stored rows, {inc_requests} requests): {inc:.2f} s; goal <= 5 s: "
            f"{inc / 5:.2f}x the budget, {verdict(inc <= 5)}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
