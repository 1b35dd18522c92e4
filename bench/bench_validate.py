"""Benchmark: what the validation gate adds on top of the bulk ingest of the same 1m klines.

The data is synthetic: one symbol-year of 1m candles (525,600 rows) made by re-timing the
real AVAXUSDT USD-M file of 2026-02 shipped in data/sample (13 copies of its 28 days and
one more day, each copy rescaled to open where the previous one closed), written in the
data.binance.vision layout as monthly zips with their checksums. Ten series are ten
renamed copies (SYN00USDT ...), so they are synthetic too.

For 1 and for 10 series it times, in the same process:
- ingest: `quantlab.ingest.ingest_klines` from those bulk files into a fresh catalog;
- gate: `quantlab.quality.check_version` on the version ingest wrote: read it one series
  at a time, run every check through the klines GX Checkpoint (which stores the result and
  adds it to the Data Docs site), write `klines_checks`. Each run starts from a fresh data
  folder, so this first gate also creates the folder's GX project (context, suite,
  validation definition, Checkpoint, Data Docs site);
- next gate: `check_version` once more on the same version, as every later validation in
  that folder: the project exists;
and prints both, the ratio, and where the first gate's time went (its parts timed inside that
call). The goal: gate <= 25% of ingest.
Great Expectations' import (once per process) is paid before timing and printed apart, and
so is the first compile of the Data Docs templates (cached on disk by Jinja, see
`quantlab.quality._views`).

    .venv/bin/python bench/bench_validate.py [--series 1 10] [--runs 2]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "data/sample/data/futures/um/monthly/klines/AVAXUSDT/1m/AVAXUSDT-1m-2026-02.zip"
YEAR = 2025
ROWS = 525_600
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
PRICES = ("open", "high", "low", "close")
QUOTES = ("quote_volume", "taker_buy_quote_volume")


def synthetic_year() -> pl.DataFrame:
    """525,600 1m candles of 2025 from the real 28-day AVAXUSDT month, re-timed and rescaled."""
    from quantlab.schema import BINANCE_KLINE_FIELDS

    with zipfile.ZipFile(SOURCE) as zf:
        month = pl.read_csv(
            zf.read(zf.namelist()[0]),
            has_header=True,
            new_columns=list(BINANCE_KLINE_FIELDS),
            schema_overrides={"ignore": pl.String},
        )
    start = int(datetime(YEAR, 1, 1, tzinfo=UTC).timestamp() * 1000)
    first = month["open_time"][0]
    span = month.height * 60_000
    tiles, level = [], 1.0
    for i in range(-(-ROWS // month.height)):
        scale = level / month["open"][0]
        tile = month.with_columns(
            pl.col("open_time", "close_time") - first + start + i * span,
            *[pl.col(c) * scale for c in (*PRICES, *QUOTES)],
        )
        level = tile["close"][-1]
        tiles.append(tile)
    return pl.concat(tiles).head(ROWS)


def write_vision(year: pl.DataFrame, root: Path, symbols: list[str]) -> None:
    """Monthly zips and `.zip.CHECKSUM` files as data.binance.vision publishes them."""
    month = pl.from_epoch("open_time", time_unit="ms").dt.month()
    parts = year.with_columns(month.alias("_m")).partition_by("_m", as_dict=True)
    for symbol in symbols:
        folder = root / "data/futures/um/monthly/klines" / symbol / "1m"
        folder.mkdir(parents=True, exist_ok=True)
        for (m,), part in sorted(parts.items()):
            name = f"{symbol}-1m-{YEAR}-{m:02d}"
            text = HEADER + "\n" + part.drop("_m").write_csv(include_header=False)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(f"{name}.csv", text)
            blob = buf.getvalue()
            (folder / f"{name}.zip").write_bytes(blob)
            digest = hashlib.sha256(blob).hexdigest()
            (folder / f"{name}.zip.CHECKSUM").write_text(f"{digest}  {name}.zip\n")


def config(tmp: Path) -> Path:
    path = tmp / "config.yaml"
    path.write_text(
        f"paths: {{data: {tmp / 'data'}, experiments: {tmp / 'experiments'}}}\n"
        f"universe: {{market: futures_um, symbols: [SYN00USDT], interval: 1m, "
        f"start: {YEAR}-01-01, end: {YEAR + 1}-01-01}}\n"
    )
    return path


@contextmanager
def timing_parts() -> Iterator[dict[str, float]]:
    """Time, inside the gate call being timed, its parts: reading the version (listing its
    series, and waiting for each series' read, which runs while the one before is checked),
    the polars helper columns, the GX Checkpoint run (validation, storing the result, Data
    Docs) and the `klines_checks` write. Each is wrapped for the duration, restored after."""
    from quantlab import catalog
    from quantlab.quality import _project, klines
    from quantlab.quality import stage as gate

    parts = dict.fromkeys(("read", "helpers", "checkpoint", "record"), 0.0)

    def timed(fn: Callable, part: str) -> Callable:
        def wrapper(*args: object, **kwargs: object) -> object:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[part] += time.perf_counter() - t0

        return wrapper

    read_ahead = gate._read_ahead

    def waited(*args: object) -> Iterator[object]:
        frames = read_ahead(*args)
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            parts["read"] += time.perf_counter() - t0
            if frame is None:
                return
            yield frame

    targets = [
        (gate, "_series", timed(gate._series, "read")),
        (gate, "_read_ahead", waited),
        (klines, "prepare_columns", timed(klines.prepare_columns, "helpers")),
        (_project.Project, "validate", timed(_project.Project.validate, "checkpoint")),
        (catalog.Catalog, "write", timed(catalog.Catalog.write, "record")),
    ]
    originals = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in targets]
    for owner, attr, wrapped in targets:
        setattr(owner, attr, wrapped)
    try:
        yield parts
    finally:
        for owner, attr, fn in originals:
            setattr(owner, attr, fn)


def run_once(mirror: Path, symbols: list[str]) -> dict[str, float]:
    from quantlab import quality
    from quantlab.context import RunContext
    from quantlab.ingest import BulkSource, ingest_klines

    tmp = Path(tempfile.mkdtemp(prefix="bench-validate-"))
    try:
        ctx = RunContext.load(config(tmp))
        start = int(datetime(YEAR, 1, 1, tzinfo=UTC).timestamp() * 1000)
        end = int(datetime(YEAR + 1, 1, 1, tzinfo=UTC).timestamp() * 1000)
        source = BulkSource(mirror)
        t0 = time.perf_counter()
        ingest_klines(
            ctx.catalog,
            source,
            market="futures_um",
            interval="1m",
            symbols=symbols,
            start_ms=start,
            end_ms=end,
        )
        ingest_s = time.perf_counter() - t0
        source.close()
        ref = ctx.catalog.latest("klines")

        with timing_parts() as parts:
            t0 = time.perf_counter()
            result = quality.check_version(ctx, ref)
            gate_s = time.perf_counter() - t0
        assert result.report.row_count == ROWS * len(symbols), result.report.row_count
        assert result.report.passed, result.report.summary()
        assert result.data_docs is not None and result.data_docs.is_file()
        t0 = time.perf_counter()
        quality.check_version(ctx, ref)
        next_s = time.perf_counter() - t0
        return {
            "ingest": ingest_s,
            "gate": gate_s,
            "next": next_s,
            **parts,
            "gx_rows": result.report.gx_result.meta["quantlab"]["rows_given_to_gx"],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--runs", type=int, default=2, help="best of this many runs")
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    t0 = time.perf_counter()
    from quantlab.quality._gx import gx

    gx()
    print(f"Great Expectations import (once per process, not in the figures): "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    year = synthetic_year()
    print(f"cpu cores: {os.cpu_count()}; data: SYNTHETIC 1m klines, {ROWS:,} rows per series")
    with tempfile.TemporaryDirectory(prefix="bench-vision-") as mirror:
        mirror_path = Path(mirror)
        symbols = [f"SYN{i:02d}USDT" for i in range(max(args.series))]
        write_vision(year, mirror_path, symbols)
        run_once(mirror_path, symbols[:1])  # warm-up: first Delta write, first GX validation
        for n in args.series:
            runs = [run_once(mirror_path, symbols[:n]) for _ in range(args.runs)]
            # Ingest and gate: each the best of the runs. The gate's parts were timed inside
            # the run with the best gate, so that they add up.
            best = min(runs, key=lambda r: r["gate"]) | {
                k: min(r[k] for r in runs) for k in ("ingest", "next")
            }
            ratio = best["gate"] / best["ingest"]
            print(
                f"{n:>2} series, {n * ROWS:>9,} rows: ingest {best['ingest']:6.2f} s | "
                f"gate {best['gate']:5.2f} s | gate/ingest {ratio:6.1%} "
                f"({'within' if ratio <= 0.25 else 'OVER'} the 25% goal)"
            )
            print(
                f"{'':>25}next gate in that data folder {best['next']:5.2f} s | "
                f"next/ingest {best['next'] / best['ingest']:6.1%}"
            )
            named = ("read", "helpers", "checkpoint", "record")
            rest = best["gate"] - sum(best[k] for k in named)
            print(
                f"{'':>25}gate parts: reading (not overlapped) {best['read']:.2f} s | helper "
                f"columns (polars) {best['helpers']:.2f} s | GX Checkpoint on the "
                f"{int(best['gx_rows']):,} screened rows (validation, stored result, Data Docs) "
                f"{best['checkpoint']:.2f} s"
                f" | klines_checks write {best['record']:.2f} s | the rest {rest:.2f} s "
                "(screen, report, GX suite and project)"
            )


if __name__ == "__main__":
    main()
