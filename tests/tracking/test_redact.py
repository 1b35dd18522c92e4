"""quantlab.tracking.redact: which values count as secrets, and how they are masked."""

from __future__ import annotations

import json

import pytest

from quantlab.tracking.redact import MASK, Redactor, environment_secrets


def test_secret_named_variables_and_connection_passwords_are_secrets():
    env = {
        "QUANTLAB_BINANCE_API_SECRET": "s3cret-value",
        "QUANTLAB_BINANCE_API_KEY": "k" * 64,
        "MLFLOW_TRACKING_PASSWORD": "hunter22",
        "AIRFLOW_CONN_BINANCE": json.dumps({"login": "L" * 20, "password": "conn-pass"}),
        "AIRFLOW_CONN_LEDGER": "postgresql://quant:url%40pass@db:5432/ledger",
        "DATABASE_URL": "postgresql://app:dbpass99@db/app",
        # not secrets: an ordinary name, a word that only contains TOKEN, flags and ports
        "HOME": "/home/quant",
        "TOKENIZERS_PARALLELISM": "false",
        "MLFLOW_TRACKING_INSECURE_TLS": "true",
        "QUANTLAB_DB_PASSWORD_PORT": "5432",
    }
    assert environment_secrets(env) == {
        "s3cret-value",
        "k" * 64,
        "hunter22",
        "L" * 20,
        "conn-pass",
        "url%40pass",
        "url@pass",
        "dbpass99",
    }


def test_a_short_connection_login_is_a_user_name_not_a_secret():
    env = {"AIRFLOW_CONN_DB": json.dumps({"login": "airflow", "password": "pw-123456"})}
    assert environment_secrets(env) == {"pw-123456"}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (
            "postgresql+psycopg2://quant:pw-9@db:5432/x",
            f"postgresql+psycopg2://quant:{MASK}@db:5432/x",
        ),
        ("http://user:p%40ss@mlflow:5000", f"http://user:{MASK}@mlflow:5000"),
        ("sqlite:///data/ledger.sqlite", "sqlite:///data/ledger.sqlite"),
        ("http://mlflow:5000", "http://mlflow:5000"),
        ("key=abcd-secret-1 and again abcd-secret-1", f"key={MASK} and again {MASK}"),
    ],
)
def test_text_masks_known_secrets_and_any_url_password(text, want):
    assert Redactor(["abcd-secret-1"]).text(text) == want


def test_a_password_found_in_a_url_is_masked_wherever_it_appears():
    config = json.dumps({"ledger_url": "postgresql://q:pw-found-1@db/l", "note": "pw-found-1"})
    redactor = Redactor.from_environment(config, environ={})
    assert "pw-found-1" not in redactor.text(config)


def test_value_masks_nested_strings_and_secret_named_keys():
    value = {
        "exchange": {"api_secret": "anything", "api_key": None, "url": "https://a:b-pass@x"},
        "list": ["tok-12345", 3, True],
        "n": 1.5,
    }
    assert Redactor(["tok-12345"]).value(value) == {
        "exchange": {"api_secret": MASK, "api_key": None, "url": f"https://a:{MASK}@x"},
        "list": [MASK, 3, True],
        "n": 1.5,
    }
