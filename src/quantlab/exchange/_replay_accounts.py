"""Trading accounts of the replay exchange: API keys, how they sign, and their balances.

An account is an API key with either an HMAC secret or an Ed25519 public key (PEM), and
starting balances per asset. `parse_account` reads the CLI form `KEY:SECRET:USDT=100000,BTC=0.5`;
`load_accounts` reads a JSON or YAML list of `{api_key, secret | public_key | public_key_file,
balances: {ASSET: amount}}`. A `Wallet` keeps each asset's free and locked amounts as Decimals, so
free + locked stays exact however many fills and cancels move them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from quantlab.errors import ConfigError

_PEM = "-----BEGIN PUBLIC KEY-----"


@dataclass(frozen=True)
class Account:
    """An API key, its HMAC secret or Ed25519 public key (PEM text), and starting balances."""

    api_key: str
    secret: str
    balances: Mapping[str, Any] = field(default_factory=dict)
    can_trade: bool = True

    def __post_init__(self) -> None:
        if not self.api_key or not self.secret:
            raise ConfigError("a replay account needs an api_key and a secret or public key")
        if self.key_type == "ed25519":
            public_key(self.secret)  # refuse a broken or non-Ed25519 key now, not per request
        for asset, amount in self.balances.items():
            if to_decimal(amount) < 0:
                raise ConfigError(f"replay account {self.api_key!r}: {asset} balance is negative")

    @property
    def key_type(self) -> str:
        return "ed25519" if self.secret.lstrip().startswith(_PEM) else "hmac"

    def __repr__(self) -> str:  # never show the secret
        return f"Account(api_key={self.api_key!r}, key_type={self.key_type!r}, balances={dict(self.balances)!r})"


def public_key(pem: str) -> Any:
    """The Ed25519 public key in `pem`; ConfigError for any other key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ConfigError(f"replay account public key is not valid PEM ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("replay accounts take an Ed25519 public key (or an HMAC secret)")
    return key


def to_decimal(value: Any) -> Decimal:
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{value!r} is not a number") from None
    if not out.is_finite():
        raise ConfigError(f"{value!r} is not a finite number")
    return out


def parse_balances(text: str) -> dict[str, Decimal]:
    """`USDT=100000,BTC=0.5` -> {"USDT": 100000, "BTC": 0.5}."""
    out: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        asset, sep, amount = part.partition("=")
        if not sep or not asset:
            raise ConfigError(f"balance {part!r} is not ASSET=AMOUNT (e.g. USDT=100000)")
        out[asset.strip().upper()] = to_decimal(amount.strip())
    return out


def parse_account(spec: str) -> Account:
    """`KEY:SECRET:USDT=100000,BTC=0.5` (balances optional) -> Account with an HMAC secret."""
    key, sep, rest = spec.partition(":")
    secret, _, balances = rest.partition(":")
    if not sep or not key or not secret:
        raise ConfigError(
            f"--account {key or '?'}:...: expected KEY:SECRET:USDT=100000,BTC=0.5 "
            "(an Ed25519 public key goes in --accounts-file)"
        )
    return Account(key, secret, parse_balances(balances))


def load_accounts(path: Path) -> list[Account]:
    """Accounts from a JSON or YAML list (a .json file is read as JSON, anything else as YAML)."""
    text = Path(path).read_text()
    if Path(path).suffix == ".json":
        rows = json.loads(text)
    else:
        import yaml

        rows = yaml.safe_load(text)
    if not isinstance(rows, list):
        raise ConfigError(f"{path}: expected a list of accounts, got {type(rows).__name__}")
    accounts = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "api_key" not in row:
            raise ConfigError(f"{path}: account #{i} is not a mapping with an api_key")
        secret = row.get("secret") or row.get("public_key")
        if not secret and row.get("public_key_file"):
            secret = (Path(path).parent / row["public_key_file"]).read_text()
        if not secret:
            raise ConfigError(f"{path}: account {row['api_key']!r} has no secret or public_key")
        balances = {str(a).upper(): to_decimal(v) for a, v in (row.get("balances") or {}).items()}
        accounts.append(
            Account(str(row["api_key"]), str(secret), balances, row.get("can_trade", True))
        )
    return accounts


class InsufficientBalance(Exception):
    """What Binance answers -2010 "Account has insufficient balance for requested action." for."""


class Wallet:
    """Free and locked amounts per asset; every move keeps both >= 0 or raises."""

    def __init__(self, balances: Mapping[str, Any]):
        self._free = {a: to_decimal(v) for a, v in balances.items()}
        self._locked: dict[str, Decimal] = {}

    def free(self, asset: str) -> Decimal:
        return self._free.get(asset, Decimal(0))

    def locked(self, asset: str) -> Decimal:
        return self._locked.get(asset, Decimal(0))

    def assets(self) -> list[str]:
        return sorted(set(self._free) | set(self._locked))

    def require(self, asset: str, amount: Decimal) -> None:
        if amount > self.free(asset):
            raise InsufficientBalance(asset)

    def lock(self, asset: str, amount: Decimal) -> None:
        self.require(asset, amount)
        self._free[asset] = self.free(asset) - amount
        self._locked[asset] = self.locked(asset) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        amount = min(amount, self.locked(asset))
        self._locked[asset] = self.locked(asset) - amount
        self._free[asset] = self.free(asset) + amount

    def spend(self, asset: str, amount: Decimal, *, from_locked: bool) -> None:
        if from_locked:
            if amount > self.locked(asset):
                raise InsufficientBalance(asset)
            self._locked[asset] = self.locked(asset) - amount
        else:
            self.require(asset, amount)
            self._free[asset] = self.free(asset) - amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self._free[asset] = self.free(asset) + amount
