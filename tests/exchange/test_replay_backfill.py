"""A REST backfill through `quantlab replay-server` over a plain data.binance.vision tree.

The tree holds real monthly bulk files and no recorded `api/` responses, as one downloaded
from data.binance.vision does. The server is the real command in its own process; the
backfill is `quantlab data ingest --source rest` against it, which first reads exchangeInfo
for its weight limit. What lands in the catalog must equal the files, row for row.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from helpers import SAMPLE, write_config
from ingest.support import MARKET_DIRS, source_klines, stored
from quantlab.catalog import Catalog
from quantlab.cli import main

# (market, symbol, interval, months) copied from the shipped sample: the 2023-03-24 spot
# halt, months missing between files (BTCUSDT's holes lie under a page of candles from the
# stored months on both sides, which once made the recheck fetch a month twice and the
# write refuse the batch), the microsecond spot file of 2025-06, and a USD-M file with a
# header line.
TREE = (
    ("spot", "ETHUSDT", "1h", ("2023-02", "2023-03")),
    ("spot", "BTCUSDT", "1h", ("2023-03", "2024-12", "2025-06")),
    ("futures_um", "AVAXUSDT", "1m", ("2026-02",)),
)
CLI = "import sys; from quantlab.cli import main; sys.exit(main(sys.argv[1:]))"


def build_tree(root: Path) -> Path:
    for market, symbol, interval, months in TREE:
        rel = Path(MARKET_DIRS[market]) / "monthly" / "klines" / symbol / interval
        (root / rel).mkdir(parents=True)
        for month in months:
            name = f"{symbol}-{interval}-{month}.zip"
            for suffix in ("", ".CHECKSUM"):
                shutil.copy(SAMPLE / rel / (name + suffix), root / rel)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_tree(tmp_path_factory.mktemp("vision"))
    assert not (root / "api").exists()
    return root


@pytest.fixture(scope="module")
def replay_url(tree: Path) -> Iterator[str]:
    """`quantlab replay-server --root TREE --port 0` in its own process, stopped with Ctrl-C."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "replay-server", "--root", str(tree), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # "replaying ROOT on http://127.0.0.1:PORT (Ctrl-C to stop)"
        assert " on http://" in line, f"replay-server did not start: {line!r} {proc.stderr.read()}"
        yield line.split(" on ", 1)[1].split()[0]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert "Traceback" not in err, err


@pytest.mark.parametrize(
    ("market", "flag", "symbol", "interval", "start", "end"),
    [
        ("spot", "spot", "ETHUSDT", "1h", "2023-02-01", "2023-04-01"),
        ("spot", "spot", "BTCUSDT", "1h", "2023-01-01", "2025-07-01"),
        ("futures_um", "um", "AVAXUSDT", "1m", "2026-02-01", "2026-03-01"),
    ],
)
def test_rest_backfill_matches_the_bulk_files_row_for_row(
    tree, replay_url, tmp_path, capsys, market, flag, symbol, interval, start, end
):
    config = write_config(tmp_path)
    args = ["--config", str(config), "data", "ingest", "--source", "rest"]
    args += ["--base-url", replay_url, "--market", flag, "--symbols", symbol]
    args += ["--interval", interval, "--start", start, "--end", end, "--no-progress"]
    assert main(args) == 0, capsys.readouterr().err
    expected = source_klines(market, symbol, interval, root=tree)
    got = stored(Catalog(tmp_path / "data" / "catalog"), market)
    assert got.height == expected.height > 0
    assert_frame_equal(got, expected)
