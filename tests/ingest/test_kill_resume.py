"""kill -9 an ingest at several points (mid-download, mid-commit, between commits), then rerun.

Each killed run leaves only whole commits behind; the run after them completes the table,
which then equals the source files row for row, with no gap and no duplicate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
from deltalake import DeltaTable
from polars.testing import assert_frame_equal

from ingest.support import HALT_OPEN, sort, source_klines
from quantlab.catalog import Catalog
from quantlab.ingest import RestSource, ingest_klines
from quantlab.schema import KLINES_KEY

CHILD = Path(__file__).with_name("_ingest_child.py")
RUN = {
    "market": "spot",
    "interval": "1h",
    "symbols": ["BTCUSDT", "ETHUSDT"],
    "start_ms": 1672531200000,
    "end_ms": 1735689600000,
}
YEARS = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))
# Mid-download; inside a commit (one symbol, so the other is left for the runs after);
# between two commits; inside a commit again. A commit kill may land just after the
# commit instead: then it is one more kill between commits.
KILLS = ["request:4", "commit:1@BTCUSDT", "after-commit:2", "commit:1@ETHUSDT"]


def child(root: Path, base_url: str, kill: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, str(CHILD), str(root), base_url, kill],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def uncommitted_files(table: Path) -> set[Path]:
    """Files in the table's folder that no committed version references."""
    if not (table / "_delta_log").is_dir():
        return {p for p in table.rglob("*") if p.is_file()}
    committed = {Path(u.removeprefix("file://")) for u in DeltaTable(str(table)).file_uris()}
    data = {p for p in table.rglob("*") if p.is_file() and "_delta_log" not in p.parts}
    return data - committed


def test_killed_runs_resume_to_the_exact_source(tmp_path, replay):
    root = tmp_path / "catalog"
    catalog = Catalog(root)
    source = sort(
        pl.concat([source_klines("spot", s, "1h", months=YEARS) for s in ("BTCUSDT", "ETHUSDT")])
    )
    versions, orphans = [], 0
    for kill in KILLS:
        run = child(root, replay.base_url, kill)
        assert run.returncode == -signal.SIGKILL, (kill, run.returncode, run.stderr[-2000:])
        if not catalog.exists("klines"):
            versions.append(None)
            continue
        # Whatever a killed run left is whole: real rows, each once.
        table = sort(catalog.load("klines"))
        assert table.height == table.unique(subset=list(KLINES_KEY)).height, kill
        assert_frame_equal(table.join(source, on=list(KLINES_KEY), how="semi"), table)
        versions.append(catalog.latest("klines").version)
        if kill.startswith("commit"):
            orphans += sum(len(uncommitted_files(root / t)) for t in ("klines", "klines_gaps"))
    assert versions[-2] is not None and versions[-2] >= 1  # the kills did land between commits
    assert orphans, versions  # and at least one inside a commit: data written, never committed

    # The rerun, here in the test process, completes what the killed runs left.
    rest = RestSource(replay.base_url)
    done = ingest_klines(catalog, rest, **RUN)
    assert done.ok
    assert_frame_equal(sort(catalog.load("klines")), source)
    gaps = catalog.load("klines_gaps").sort("symbol")
    assert gaps["symbol"].to_list() == ["BTCUSDT", "ETHUSDT"]
    assert gaps["gap_start"].dt.epoch("ms").to_list() == [HALT_OPEN, HALT_OPEN]
    again = ingest_klines(catalog, rest, **RUN)
    rest.close()
    assert again.rows_added == 0 and again.gaps_recorded == 0
