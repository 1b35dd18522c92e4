"""Keeps secrets out of MLflow: every param, tag and text artifact quantlab logs passes here.

Secrets come from the environment (`quantlab.secrets`), but config may carry them too: a
`${VAR}` expanded into a value, or a password inside a URL (a PostgreSQL ledger, a tracking
server behind basic auth). A `Redactor` masks three things wherever they appear: the value
of every environment variable whose name says it is a secret, the password of every
Airflow connection given as an environment variable, and the password part of any URL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
# An environment variable whose name says it holds a secret (QUANTLAB_BINANCE_API_SECRET,
# POSTGRES_PASSWORD, MLFLOW_TRACKING_TOKEN, ...). A config key named so is masked as well.
# The word must stand between underscores: TOKENIZERS_PARALLELISM names no secret.
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:SECRET|PASSWORD|PASSWD|PASS|TOKEN|API_?KEY|CREDENTIALS?|PRIVATE_?KEY|ACCESS_?KEY)"
    r"(?:_|$)",
    re.I,
)
# scheme://user:password@host: the password, up to the '@' of the authority.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)")
# Shorter values would mask ordinary words ("on", "1h") in everything logged.
MIN_SECRET_LEN = 4


def environment_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """The secret values in `environ` (default: os.environ): named secrets, connection and URL
    passwords, and an Airflow connection's login where it is long enough to be an API key."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if not value:
            continue
        if _SECRET_NAME.search(name):
            found.add(value)
        found |= url_passwords(value)
        if name.startswith("AIRFLOW_CONN_"):
            found |= _connection_secrets(value)
    return {v for v in found if _maskable(v)}


def _maskable(value: str) -> bool:
    # A flag or a number in a secret-named variable (MLFLOW_TRACKING_INSECURE_TLS=false) is
    # no secret, and masking it would garble every "false" or "5432" in what is logged.
    return len(value) >= MIN_SECRET_LEN and value.lower() not in _NOT_SECRET and not value.isdigit()


_NOT_SECRET = {"true", "false", "none", "null", "yes"}


def url_passwords(text: str) -> set[str]:
    """The passwords of the URLs in `text`, as written and URL-decoded."""
    found = set()
    for match in _URL_PASSWORD.finditer(text):
        raw = match.group(0)[len(match.group("head")) :]
        found |= {raw, unquote(raw)}
    return found


def _connection_secrets(raw: str) -> set[str]:
    """An Airflow connection's password, and its login when it is an API key (quantlab reads
    `<conn>_api_key` from the login, `quantlab.secrets`): a user name is shorter than 16."""
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            conn = json.loads(raw)
        except json.JSONDecodeError:
            return set()
        login, password = conn.get("login"), conn.get("password")
    else:
        parts = urlsplit(raw)
        login = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
    found = {str(password)} if password else set()
    if login and len(str(login)) >= 16:
        found.add(str(login))
    return found


class Redactor:
    """Masks `secrets` (and any URL's password) in text and in nested params and configs."""

    def __init__(self, secrets: Iterable[str] = ()):
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if _maskable(s)}, key=len, reverse=True)

    @classmethod
    def from_environment(cls, *texts: str, environ: Mapping[str, str] | None = None) -> Redactor:
        """The environment's secrets plus the URL passwords found in `texts` (e.g. a config
        dump), so a password is masked also where it appears outside its URL."""
        found = environment_secrets(environ)
        for text in texts:
            found |= url_passwords(text)
        return cls(found)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)

    def value(self, value: Any) -> Any:
        """`value` with every string masked; a mapping's value under a secret-like key is
        masked whole (a config key `api_secret`, `password`)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k: MASK
                if isinstance(k, str) and _SECRET_NAME.search(k) and v not in (None, "")
                else self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
