"""Test helpers: the shipped sample and fixtures, the real shipped klines, an isolated project config, and `airflow dags test`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import polars as pl
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
# The one fixtures tree: real Binance responses and files, each described in its README.
FIXTURES = ROOT / "tests" / "fixtures" / "binance"


class FakeClock:
    """A clock for the weight windows and the sleeps of a test: `sleep` advances it and is recorded.

    Pass it as `clock` (and its `sleep` as `sleep`) to a ReplayServer, a BinanceClient or a
    WeightTracker; it is safe across threads.
    """

    def __init__(self, t: float):
        self.t = t
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.t += seconds


def load_sample_klines(symbol: str, months: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Real spot 1h klines of `symbol` from the shipped monthly zips, optionally only some months (YYYY-MM)."""
    from quantlab.exchange._klines_csv import read_kline_csv
    from quantlab.schema import normalize_klines

    folder = SAMPLE / "data" / "spot" / "monthly" / "klines" / symbol / "1h"
    zips = sorted(folder.glob(f"{symbol}-1h-*.zip"))
    if months is not None:
        zips = [z for z in zips if z.stem.removeprefix(f"{symbol}-1h-") in months]
    assert zips, f"no sample klines under {folder} for {months}"
    parts = []
    for path in zips:
        with zipfile.ZipFile(path) as zf:
            (name,) = zf.namelist()
            # The production reader: it also turns the 2025+ spot files' µs into ms.
            parts.append(read_kline_csv(zf.read(name), str(path)))
    return normalize_klines(pl.concat(parts), "spot", symbol, "1h")


# BTCUSDT funding events, Jan 20 to Apr 30 2023, as the feature tests use them.
FUNDING_EVENTS = FIXTURES / "fundingRate_BTCUSDT_2023-01-20_2023-04-30_RECONSTRUCTED_DERIVED.json"


def load_funding_events(path: Path = FUNDING_EVENTS) -> pl.DataFrame:
    """A fundingRate JSON fixture as the frame `build_features` takes as `funding`."""
    rows = json.loads(path.read_text())
    return pl.DataFrame(
        {
            "symbol": [r["symbol"] for r in rows],
            "funding_time": [r["fundingTime"] for r in rows],
            "funding_rate": [float(r["fundingRate"]) for r in rows],
        }
    ).with_columns(pl.col("funding_time").cast(pl.Datetime("ms", "UTC")))


def _outputs_under(tmp: Path) -> dict:
    """The config sections that say where a run writes: the data, MLflow and the ledger."""
    return {
        "paths": {"data": str(tmp / "data"), "experiments": str(tmp / "experiments")},
        "paper": {"ledger_url": f"sqlite:///{tmp / 'ledger.sqlite'}"},
        "tracking": {
            "uri": f"sqlite:///{tmp / 'experiments' / 'mlflow.db'}",
            "artifacts": str(tmp / "experiments" / "artifacts"),
        },
    }


def write_config(tmp: Path, **overrides: dict) -> Path:
    """A config YAML whose every output lives under `tmp`; `overrides` replace whole sections' keys."""
    cfg: dict = {
        "universe": {
            "symbols": ["BTCUSDT", "ETHUSDT"],
            "interval": "1h",
            "start": "2023-02-01",
            "end": "2023-05-01",
        },
        "exchange": {"source": "replay", "replay_root": str(SAMPLE)},
        "train": {"folds": 3, "trials": 2, "num_boost_round": 40, "register_as": None},
        # The regime models are off unless a test turns them on (tests/regime): each is a
        # walk-forward of its own, which most tests have no use for.
        "lifecycle": {"regime": {"enabled": False}},
        **_outputs_under(tmp),
    }
    for section, values in overrides.items():
        cfg.setdefault(section, {}).update(values)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def write_default_config(tmp: Path, **overrides: dict) -> Path:
    """The shipped default config (what `make run` runs) with every output under `tmp`;
    `overrides` replace sections' keys, as in `write_config`."""
    cfg: dict = {
        "extends": str(ROOT / "configs" / "default.yaml"),
        "exchange": {"replay_root": str(SAMPLE)},
        **_outputs_under(tmp),
    }
    for section, values in overrides.items():
        cfg.setdefault(section, {}).update(values)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=value lines of a .env file (the stack's `.stack/.env`)."""
    values = {}
    for line in path.read_text().splitlines():
        if m := re.match(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)", line):
            values[m.group(1)] = m.group(2)
    return values


def airflow_dags_test(
    home: Path, dag_id: str, *args: str, env: dict[str, str], timeout: int = 600
) -> subprocess.CompletedProcess:
    """`airflow dags test DAG_ID ARGS` on a fresh SQLite metadata DB in `home` (its AIRFLOW_HOME).

    `env` adds to the environment (e.g. QUANTLAB_CONFIG). The DB is `home / "airflow.db"`.
    """
    environ = {
        **os.environ,
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    airflow = str(Path(sys.executable).parent / "airflow")

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [airflow, *argv], env=environ, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )

    migrate = run("db", "migrate")
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return run("dags", "test", dag_id, *args)


CHROMIUM = os.environ.get("QUANTLAB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("QUANTLAB_CHROMEDRIVER", "/usr/bin/chromedriver")


def headless_chromium(*args: str, window: str = "1280,900", browser_log: bool = False):
    """A headless Chromium through selenium (`.ci/run` installs Debian's chromium and
    chromium-driver); `args` are extra command-line switches. The caller quits it."""
    import pytest
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(
                f"{path} is missing; install Debian's chromium and chromium-driver packages"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={window}",
        *args,
    ):
        options.add_argument(arg)
    if browser_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    return driver


class WebhookReceiver:
    """A local HTTP receiver on 127.0.0.1 that records every POSTed JSON body (a stand-in for
    a Slack incoming webhook); `status` is what it answers. Use as a context manager."""

    def __init__(self, status: int = 200):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.status = status
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.paths.append(self.path)
                receiver.bodies.append(json.loads(raw))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/SECRET-TOKEN"

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posts_naming(self, text: str) -> int:
        """How many posted messages mention `text` anywhere in their JSON."""
        return sum(text in json.dumps(body) for body in self.bodies)
