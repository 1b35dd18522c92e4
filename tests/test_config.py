"""Config: a typo is an error that names the key, environment references expand, paths resolve."""

from __future__ import annotations

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
    assert cfg.train == default.train and cfg.universe == default.universe


def test_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load_config(tmp_path / "a.yaml")
