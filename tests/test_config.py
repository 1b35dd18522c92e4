"""Config: a typo is an error that names the key, environment references expand, paths resolve."""

from __future__ import annotations

import re

import pytest

from quantlab.config import DEFAULT_CONFIG, load_config
from quantlab.errors import ConfigError


def test_default_config_loads_with_absolute_paths():
    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.paths.data.is_absolute()
    assert cfg.universe.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    assert cfg.paper.ledger_url.startswith("sqlite:////")


def test_a_typo_in_a_key_is_an_error_naming_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  fold: 5\n")
    with pytest.raises(ConfigError, match=r"train\.fold"):
        load_config(path)


def test_bad_values_are_explained(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("universe:\n  start: 2024-01-01\n  end: 2023-01-01\n")
    with pytest.raises(ConfigError, match="must be after"):
        load_config(path)


def test_environment_references_expand_and_missing_ones_fail(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("paper:\n  ledger_url: postgresql://q:${LEDGER_PW}@127.0.0.1:5432/test\n")
    monkeypatch.setenv("LEDGER_PW", "s3cret")
    assert load_config(path).paper.ledger_url == "postgresql://q:s3cret@127.0.0.1:5432/test"
    monkeypatch.delenv("LEDGER_PW")
    with pytest.raises(ConfigError, match="LEDGER_PW is not set"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_stack_config_extends_the_default_and_reads_secrets_from_env(monkeypatch):
    from quantlab.config import PROJECT_ROOT

    monkeypatch.setenv("QUANTLAB_DB_USER", "quantlab")
    monkeypatch.setenv("QUANTLAB_DB_PASSWORD", "pw")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    cfg = load_config(PROJECT_ROOT / "configs" / "stack.yaml")
    default = load_config(DEFAULT_CONFIG)
    assert cfg.paper.ledger_url == "postgresql://quantlab:pw@127.0.0.1:5432/quantlab"
    assert cfg.tracking.uri == "http://mlflow:5000"
    assert cfg.universe == default.universe
    # Only where the Optuna studies live differs: the stack's Postgres, same credentials.
    assert cfg.train.storage == "postgresql+psycopg2://quantlab:pw@127.0.0.1:5432/quantlab"
    assert cfg.train.model_copy(update={"storage": None}) == default.train


def test_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load_config(tmp_path / "a.yaml")


def test_secret_variables_a_config_expands_go_to_the_log_maskers(tmp_path, monkeypatch):
    from quantlab import secrets

    seen: list[str] = []
    monkeypatch.setattr(secrets, "_maskers", [seen.append])
    monkeypatch.setenv("LEDGER_PASSWORD", "pw-0123456789")
    monkeypatch.setenv("LEDGER_USER", "quant")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "paper:\n  ledger_url: postgresql://${LEDGER_USER}:${LEDGER_PASSWORD}@db:5432/q\n"
    )
    assert load_config(cfg).paper.ledger_url == "postgresql://quant:pw-0123456789@db:5432/q"
    assert seen == ["pw-0123456789"]  # the password, not the user name


@pytest.mark.parametrize(
    ("artifacts", "kept"),
    [("mlflow-artifacts:/", True), ("s3://bucket/ql", True), ("experiments/a", False)],
)
def test_artifact_uris_stay_uris_and_paths_become_absolute(tmp_path, artifacts, kept):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"tracking:\n  artifacts: {artifacts}\n")
    resolved = load_config(cfg).tracking.artifacts
    assert (resolved == artifacts) is kept
    if not kept:
        assert resolved.startswith("/") and resolved.endswith("experiments/a")


def test_quantlab_home_moves_outputs_but_the_shipped_inputs_stay_readable(tmp_path, monkeypatch):
    from quantlab.config import PROJECT_ROOT

    monkeypatch.setenv("QUANTLAB_HOME", str(tmp_path))
    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.paths.data == tmp_path / "data"
    assert cfg.exchange.replay_root == PROJECT_ROOT / "data" / "sample"
    assert cfg.validate_.known_outages == PROJECT_ROOT / "configs" / "known_outages.yaml"
    # A home folder with its own sample and outage list uses them.
    (tmp_path / "data" / "sample").mkdir(parents=True)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "known_outages.yaml").write_text("outages: []\n")
    moved = load_config(DEFAULT_CONFIG)
    assert moved.exchange.replay_root == tmp_path / "data" / "sample"
    assert moved.validate_.known_outages == tmp_path / "configs" / "known_outages.yaml"


@pytest.mark.parametrize("timeout", ["0", "-1"])
def test_exchange_timeout_must_be_positive(tmp_path, timeout):
    """A zero timeout makes every request fail at once, and looks like a flaky exchange."""
    path = tmp_path / "c.yaml"
    path.write_text(f"exchange:\n  timeout_s: {timeout}\n")
    with pytest.raises(ConfigError, match=r"exchange\.timeout_s.*greater than 0"):
        load_config(path)


@pytest.mark.parametrize("bad", ["btcusdt", "BTC/USDT", "BTC USDT", "..", "A" * 21, ""])
def test_universe_symbols_must_be_binance_symbols(tmp_path, bad):
    path = tmp_path / "c.yaml"
    path.write_text(f"universe:\n  symbols: [BTCUSDT, {bad!r}]\n")
    with pytest.raises(ConfigError, match=rf"universe.*symbol {re.escape(repr(bad))} is not"):
        load_config(path)


def test_binance_s_symbol_pattern_is_accepted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("universe:\n  symbols: [BTCUSDT, 1000SHIBUSDT, BTCUSDT_250328, BTC-USD.X]\n")
    assert load_config(path).universe.symbols[-1] == "BTC-USD.X"


@pytest.mark.parametrize(
    "url",
    [
        "http://api.binance.com",
        "http://fapi.binance.com/",
        "http://data.binance.vision",
        "http://testnet.binancefuture.com",
        "HTTP://API.BINANCE.COM",
    ],
)
def test_plain_http_to_a_real_binance_host_is_rejected(tmp_path, url):
    path = tmp_path / "c.yaml"
    path.write_text(f"exchange:\n  source: binance\n  base_url: {url}\n")
    with pytest.raises(ConfigError, match=r"exchange.*plain http; use https://"):
        load_config(path)


@pytest.mark.parametrize(
    "url", ["https://api.binance.com", "http://127.0.0.1:8000", "http://localhost:9000"]
)
def test_https_to_binance_and_http_to_a_local_replay_are_accepted(tmp_path, url):
    path = tmp_path / "c.yaml"
    path.write_text(f"exchange:\n  source: binance\n  base_url: {url}\n")
    assert load_config(path).exchange.base_url == url


def test_the_models_defaults_are_the_shipped_config_s():
    """A core called without its config (`build_features(bars)`) gets configs/default.yaml's."""
    from quantlab.config import FeaturesConfig, LabelsConfig

    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.features == FeaturesConfig()
    assert cfg.labels == LabelsConfig()


def test_only_the_edges_load_config_files():
    """Cores take their config as an argument: only the CLI, the run context and the loaders
    themselves read a file of configs/."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "quantlab"
    # ... and the replay exchange's --accounts-file, a server input, not a quantlab config.
    edges = {
        "config/loader.py",
        "markets.py",
        "context.py",
        "quality/outages.py",
        "exchange/_replay_accounts.py",
    }
    callers = [
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if re.search(r"\b(load_config|load_markets|yaml\.safe_load)\(", path.read_text())
        and str(path.relative_to(src)) not in edges
        and path.parent.name != "cli"
    ]
    assert callers == []


def test_the_markets_file_goes_through_the_same_loader(tmp_path, monkeypatch):
    """`extends` and `${VAR}` work in configs/markets.yaml as in the run config."""
    from quantlab.markets import load_markets

    base = tmp_path / "base.yaml"
    base.write_text("markets:\n  spot:\n    symbols: [BTCUSDT]\nmax_active_symbols: 2\n")
    path = tmp_path / "markets.yaml"
    path.write_text("extends: base.yaml\nschedule: ${MARKETS_CRON:-0 * * * *}\n")
    monkeypatch.setenv("MARKETS_CRON", "5 * * * *")
    markets = load_markets(path)
    assert markets.schedule == "5 * * * *"
    assert markets.max_active_symbols == 2
    assert markets.symbol_tasks() == [{"market": "spot", "symbol": "BTCUSDT", "intervals": ["1h"]}]


def test_the_outage_list_goes_through_the_same_loader(tmp_path):
    from quantlab.quality.outages import load_outages

    path = tmp_path / "outages.yaml"
    path.write_text("outages:\n  - market: spot\n    start: 2023-03-24T12:00:00Z\n")
    with pytest.raises(ConfigError, match=r"known outages file .* is invalid:\n  outages\.0\.end"):
        load_outages(path)
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_outages(path)
