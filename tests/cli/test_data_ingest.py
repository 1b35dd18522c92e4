"""`quantlab data ingest` and `quantlab datasets export`, and every path under $QUANTLAB_HOME."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import ROOT, SAMPLE, write_config
from ingest.support import source_klines, stored
from quantlab.catalog import Catalog
from quantlab.cli import main
from quantlab.cli.data_ingest import ProgressBars
from quantlab.ingest import Progress

SPOT_MARCH = [
    "data",
    "ingest",
    "--source",
    "rest",
    "--root",
    str(SAMPLE),
    "--market",
    "spot",
    "--symbols",
    "BTCUSDT,ETHUSDT",
    "--interval",
    "1h",
    "--start",
    "2023-03-01",
    "--end",
    "2023-04-01",
]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def field(out: str, name: str) -> str:
    (line,) = [line for line in out.splitlines() if line.strip().startswith(name)]
    return line.split(name, 1)[1].strip()


def test_ingest_prints_a_bar_per_symbol_and_the_summary(config, capsys):
    assert main(["--config", str(config), *SPOT_MARCH]) == 0
    out, err = capsys.readouterr()
    assert field(out, "rows added") == f"{2 * (31 * 24 - 1):,}"  # March 2023, minus the halt hour
    assert field(out, "known gaps").startswith("2 (2 candles")
    assert int(field(out, "requests")) > 0 and int(field(out, "weight used")) > 0
    assert float(field(out, "seconds")) > 0
    assert field(out, "dataset") == "klines@v0"
    for symbol in ("BTCUSDT", "ETHUSDT"):
        bar = [line for line in err.splitlines() if line.startswith(symbol)][-1]
        assert "100%" in bar and "[" + "#" * 24 + "]" in bar and "done" in bar

    assert main(["--config", str(config), *SPOT_MARCH]) == 0
    out, _ = capsys.readouterr()
    # exchangeInfo (for the weight limit) and the clock: no klines are asked for.
    assert field(out, "rows added") == "0" and field(out, "requests") == "2"


def test_ingest_futures_from_bulk_files(config, capsys):
    args = [
        "--config",
        str(config),
        "data",
        "ingest",
        "--source",
        "vision",
        "--root",
        str(SAMPLE),
        "--market",
        "um",
        "--symbols",
        "AVAXUSDT",
        "--interval",
        "1m",
        "--start",
        "2026-02-01",
        "--end",
        "2026-03-01",
        "--no-progress",
    ]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert field(out, "rows added") == "40,320" and field(out, "requests") == "0"
    assert err == ""
    catalog = Catalog(config.parent / "data" / "catalog")
    assert_frame_equal(stored(catalog), source_klines("futures_um", "AVAXUSDT", "1m"))


def test_a_failed_symbol_is_reported_and_the_others_land(config, capsys):
    args = [a if a != "BTCUSDT,ETHUSDT" else "BTCUSDT,NOPEUSDT" for a in SPOT_MARCH]
    assert main(["--config", str(config), *args]) == 2
    out, err = capsys.readouterr()
    assert "error: spot NOPEUSDT 1h" in err and "Invalid symbol" in err
    assert field(out, "rows added") == f"{31 * 24 - 1:,}"


def test_progress_bars_redraw_in_place_on_a_terminal():
    stream = io.StringIO()
    bars = ProgressBars(stream, interactive=True)
    bars(Progress("spot", "BTCUSDT", "1h", 500, 1000, 500, False))
    bars(Progress("spot", "BTCUSDT", "1h", 1000, 1000, 999, True))
    bars.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("done\n")
    assert "[############............]  50%" in text

    plain = io.StringIO()
    bars = ProgressBars(plain, interactive=False)
    for done in range(0, 1001, 100):
        bars(Progress("spot", "ETHUSDT", "1h", done, 1000, done, done == 1000))
    assert "\r" not in plain.getvalue()
    lines = plain.getvalue().splitlines()
    assert [line.split("]")[1].split()[0] for line in lines] == ["30%", "50%", "80%", "100%"]
    assert lines[-1].endswith("done")


def test_everything_is_written_under_quantlab_home(tmp_path, monkeypatch, capsys):
    """The shipped default config, pointed at another folder by $QUANTLAB_HOME alone."""
    home = tmp_path / "home"
    project_catalog = ROOT / "data" / "catalog"
    before = sorted(project_catalog.rglob("*")) if project_catalog.exists() else []
    monkeypatch.delenv("QUANTLAB_CONFIG", raising=False)
    monkeypatch.setenv("QUANTLAB_HOME", str(home))
    assert main(SPOT_MARCH) == 0
    out = tmp_path / "out" / "klines.parquet"
    assert main(["datasets", "export", "klines", "--out", str(out), "--version", "0"]) == 0
    assert f"wrote {2 * (31 * 24 - 1):,} rows of klines@v0" in capsys.readouterr().out
    written = {p.relative_to(home).parts[:3] for p in home.rglob("*") if p.is_file()}
    assert written == {
        ("data", "catalog", "klines"),
        ("data", "catalog", "klines_gaps"),
        ("data", "locks", "klines.lock"),
        ("data", "locks", "klines_gaps.lock"),
    }
    after = sorted(project_catalog.rglob("*")) if project_catalog.exists() else []
    assert after == before  # the project's own catalog was not touched
    exported = pl.read_parquet(out)
    assert_frame_equal(exported, Catalog(home / "data" / "catalog").load("klines", 0))


def test_export_of_an_unknown_version_is_a_clear_error(config, capsys):
    assert main(["--config", str(config), *SPOT_MARCH]) == 0
    capsys.readouterr()
    out = config.parent / "k.parquet"
    assert (
        main(
            [
                "--config",
                str(config),
                "datasets",
                "export",
                "klines",
                "--out",
                str(out),
                "--version",
                "7",
            ]
        )
        == 2
    )
    assert "has no version 7" in capsys.readouterr().err
    assert not out.exists()


def gap_lines(out: str) -> list[list[str]]:
    """The rows of `quantlab data gaps list|clear`, split into their columns."""
    return [line.split() for line in out.splitlines() if line.startswith(("spot", "futures_um"))]


def test_gaps_list_clear_and_the_next_ingest_asks_again(config, capsys):
    run = ["--config", str(config)]
    assert main([*run, "data", "gaps", "list"]) == 0
    assert "no known gaps in" in capsys.readouterr().out
    assert main([*run, *SPOT_MARCH, "--no-progress"]) == 0
    capsys.readouterr()

    assert main([*run, "data", "gaps", "list"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:3] == ["market", "symbol", "interval"] and "source" in header
    assert "confirmed" in header and out.rstrip().endswith("2 gap(s), 2 candle(s)")
    rows = gap_lines(out)
    assert [r[:8] for r in rows] == [
        ["spot", s, "1h", "2023-03-24", "13:00", "2023-03-24", "13:00", "1"]
        for s in ("BTCUSDT", "ETHUSDT")
    ]
    assert {r[8] for r in rows} == {"rest"} and all(len(r) == 11 for r in rows)
    assert main([*run, "data", "gaps", "list", "--symbols", "ethusdt"]) == 0
    assert [r[1] for r in gap_lines(capsys.readouterr().out)] == ["ETHUSDT"]
    assert main([*run, "data", "gaps", "list", "--start", "2023-03-25"]) == 0
    assert "no known gaps matching" in capsys.readouterr().out

    assert main([*run, "data", "gaps", "clear"]) == 2  # no filter and no --all
    assert "--all" in capsys.readouterr().err
    assert main([*run, "data", "gaps", "clear", "--symbols", "BTCUSDT"]) == 0
    out = capsys.readouterr().out
    assert [r[1] for r in gap_lines(out)] == ["BTCUSDT"] and "cleared (klines_gaps@v" in out
    assert main([*run, "data", "gaps", "list"]) == 0
    assert [r[1] for r in gap_lines(capsys.readouterr().out)] == ["ETHUSDT"]

    # The next ingest asks for the cleared candle again (and only for it), and confirms it.
    assert main([*run, *SPOT_MARCH, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert field(out, "known gaps").startswith("2 (2 candles; 1 new)")
    assert int(field(out, "requests")) > 2 and field(out, "rows added") == "0"


@pytest.mark.parametrize("flag", ["--recheck-gaps", "--refresh"])
def test_ingest_recheck_gaps_and_refresh_ask_for_known_gaps_again(config, capsys, flag):
    run = ["--config", str(config), *SPOT_MARCH, "--no-progress"]
    assert main(run) == 0
    capsys.readouterr()
    assert main([*run, flag]) == 0
    out = capsys.readouterr().out
    assert field(out, "known gaps").startswith("2 (2 candles; 2 new)")
    assert field(out, "rows added") == "0"


def test_a_ban_met_by_the_cli_is_recorded_for_every_later_caller(config, tmp_path, capsys):
    """A 418 met by `quantlab data ingest` goes into the data folder's ban record, as the
    stages' bans do, so the DAG tasks and other processes on that folder refuse to call."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Banned(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"code": -1003, "msg": "Way too many requests; IP banned."}'
            self.send_response(418)
            self.send_header("Retry-After", "600")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Banned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        args = ["--config", str(config), *SPOT_MARCH]
        args[args.index("--root") : args.index("--root") + 2] = ["--base-url", url]
        assert main(args) != 0
    finally:
        server.shutdown()
        server.server_close()
    out, err = capsys.readouterr()
    assert "banned" in (out + err).lower()
    bans = json.loads((tmp_path / "data" / "exchange" / "bans.json").read_text())
    assert list(bans) == [url]
