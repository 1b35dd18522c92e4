"""quantlab.secrets: exchange keys from QUANTLAB_* variables or an AIRFLOW_CONN_* connection."""

from __future__ import annotations

import json

import pytest

from quantlab import secrets


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("QUANTLAB_BINANCE_API_KEY", "QUANTLAB_BINANCE_API_SECRET", "AIRFLOW_CONN_BINANCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(secrets, "_maskers", [])


def test_reads_the_quantlab_variable(monkeypatch):
    monkeypatch.setenv("QUANTLAB_BINANCE_API_KEY", "k-123")
    assert secrets.get_secret("binance_api_key") == "k-123"
    assert secrets.get_secret("BINANCE_API_KEY") == "k-123"


def test_unset_or_empty_is_none(monkeypatch):
    assert secrets.get_secret("binance_api_key") is None
    monkeypatch.setenv("QUANTLAB_BINANCE_API_SECRET", "")
    assert secrets.get_secret("binance_api_secret") is None


@pytest.mark.parametrize(
    "conn",
    [
        "generic://k%2F1:s%40cret@api.binance.com",
        json.dumps({"conn_type": "generic", "login": "k/1", "password": "s@cret"}),
    ],
    ids=["uri", "json"],
)
def test_falls_back_to_an_airflow_connection_variable(monkeypatch, conn):
    monkeypatch.setenv("AIRFLOW_CONN_BINANCE", conn)
    assert secrets.get_secret("binance_api_key") == "k/1"
    assert secrets.get_secret("binance_api_secret") == "s@cret"
    monkeypatch.setenv("QUANTLAB_BINANCE_API_KEY", "wins")
    assert secrets.get_secret("binance_api_key") == "wins"


def test_a_connection_without_the_field_gives_none(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BINANCE", "generic://api.binance.com")
    assert secrets.get_secret("binance_api_secret") is None
    monkeypatch.setenv("AIRFLOW_CONN_BINANCE", "{not json")
    assert secrets.get_secret("binance_api_key") is None


def test_every_returned_secret_goes_to_the_maskers(monkeypatch):
    seen: list[str] = []
    secrets.add_masker(seen.append)
    secrets.add_masker(seen.append)  # registering twice masks once
    monkeypatch.setenv("QUANTLAB_BINANCE_API_SECRET", "s3")
    assert secrets.get_secret("binance_api_secret") == "s3"
    assert secrets.get_secret("binance_api_key") is None
    assert seen == ["s3"]


def test_a_malformed_name_is_an_error():
    with pytest.raises(ValueError, match="letters, digits"):
        secrets.get_secret("binance-api-key")
