"""Secrets such as exchange API keys, read from the environment at run time, never from config.

`get_secret("binance_api_key")` reads `QUANTLAB_BINANCE_API_KEY`. Where the variable is
unset, an Airflow Connection given as an environment variable is the fallback:
`AIRFLOW_CONN_BINANCE` (Airflow's own way of defining a connection outside its database,
as a URI or as JSON) supplies `binance_api_key` from its login and `binance_api_secret` from
its password. quantlab never imports Airflow, so a connection stored only in Airflow's
metadata DB is invisible here: define it as `AIRFLOW_CONN_<ID>` (or in `.env` for the
stack) instead.

A secret is never logged and never written to MLflow or to a dataset. Values that do leak
into a task log are masked when the DAG layer registers Airflow's masker with
`add_masker(mask_secret)` (`from airflow.sdk.log import mask_secret`) (see `mask`): every value `get_secret` returns is
passed to each registered masker first.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

_PREFIX = "QUANTLAB_"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# <connection id>_<field>: the connection field that holds each kind of secret.
_CONNECTION_FIELDS = {"api_key": "login", "api_secret": "password"}
_maskers: list[Callable[[str], object]] = []


def get_secret(name: str) -> str | None:
    """The secret `name` (e.g. "binance_api_key") from the environment, or None if it is unset.

    `QUANTLAB_<NAME>` wins; else `<conn>_api_key` / `<conn>_api_secret` come from the login /
    password of the Airflow connection variable `AIRFLOW_CONN_<CONN>`.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"secret name {name!r} must be letters, digits and underscores")
    value = os.environ.get(_PREFIX + name.upper()) or _from_connection(name.lower())
    if value:
        mask(value)
        return value
    return None


def add_masker(masker: Callable[[str], object]) -> None:
    """Register a function that hides a secret value in logs (Airflow's `mask_secret`)."""
    if masker not in _maskers:
        _maskers.append(masker)


def mask(value: str) -> None:
    """Hand `value` to every registered masker."""
    for masker in _maskers:
        masker(value)


def _from_connection(name: str) -> str | None:
    for suffix, field in _CONNECTION_FIELDS.items():
        conn_id = name.removesuffix("_" + suffix)
        if conn_id and conn_id != name:
            raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
            return _connection_field(raw, field) if raw else None
    return None


def _connection_field(raw: str, field: str) -> str | None:
    """`login` or `password` of a connection in Airflow's JSON or URI form."""
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            value = json.loads(raw).get(field)
        except (json.JSONDecodeError, AttributeError):
            return None
        return str(value) if value else None
    parts = urlsplit(raw)
    value = parts.username if field == "login" else parts.password
    return unquote(value) if value else None
