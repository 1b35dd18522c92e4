"""Binance request signatures: HMAC-SHA256 (hex) and Ed25519 (base64, percent-encoded).

Binance signs the exact bytes it receives: the query string followed, with no separator, by
the form body. Since 2026-01 (testnet 2025-12) non-ASCII characters must be percent-encoded
*before* signing, so a query is encoded once (`urllib.parse.urlencode`), those bytes are
signed, and those same bytes are sent with `&signature=...` appended. Nothing here keeps or
prints a secret: an error names what is wrong with a key, never the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_TYPES = ("hmac", "ed25519")


def encode_query(params: Mapping[str, Any]) -> str:
    """`params` as Binance reads them: `urlencode` in insertion order, non-ASCII as UTF-8 %XX."""
    return urlencode(list(params.items()))


def signature_payload(query: str, body: str = "") -> str:
    """What Binance signs: the query string and the body concatenated with no `&` between."""
    return query + body


def hmac_signature(payload: str, secret: str) -> str:
    """HMAC-SHA256 of `payload` (already percent-encoded, so ASCII) under `secret`, as hex."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(params: Mapping[str, Any], secret: str) -> str:
    """`"<encoded params>&signature=<hex>"`: encoded once, signed over exactly those bytes."""
    query = encode_query(params)
    return f"{query}&signature={hmac_signature(query, secret)}"


def load_ed25519_key(key: str | bytes | Ed25519PrivateKey) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM (PKCS#8, unencrypted) or the key object itself.

    A PEM held in one environment variable often has its newlines written as `\\n`; those
    are turned back into newlines.
    """
    if isinstance(key, Ed25519PrivateKey):
        return key
    text = key.decode() if isinstance(key, bytes) else key
    if "\\n" in text and "-----BEGIN" in text:
        text = text.replace("\\n", "\n")
    try:
        loaded = serialization.load_pem_private_key(text.strip().encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The parser's message may quote the input; say what is wrong without it.
        raise ValueError(
            "the Ed25519 key is not an unencrypted PKCS#8 PEM private key "
            "('-----BEGIN PRIVATE KEY-----'); export it with "
            "`openssl genpkey -algorithm ed25519` and pass the private key, not the public one"
        ) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(
            f"the key is a {type(loaded).__name__}, not an Ed25519 private key; use "
            "key_type 'hmac' for an HMAC secret or generate an Ed25519 key"
        )
    return loaded


def sign_ed25519(payload: bytes, key: str | bytes | Ed25519PrivateKey) -> str:
    """The Ed25519 signature of `payload`, base64 (percent-encode it before sending)."""
    return base64.b64encode(load_ed25519_key(key).sign(payload)).decode("ascii")


def signed_query_ed25519(params: Mapping[str, Any], key: str | bytes | Ed25519PrivateKey) -> str:
    """`"<encoded params>&signature=<base64, percent-encoded>"` for an Ed25519 API key."""
    query = encode_query(params)
    return f"{query}&signature={quote(sign_ed25519(query.encode(), key), safe='')}"


def make_signer(key_type: str, secret: str) -> Callable[[str], str]:
    """A function from a signature payload to the `signature` value ready for a query string.

    The key is parsed here, once, so a bad key fails when the client is built, not at the
    first order.
    """
    if key_type == "hmac":
        return lambda payload: hmac_signature(payload, secret)
    if key_type == "ed25519":
        private = load_ed25519_key(secret)
        return lambda payload: quote(sign_ed25519(payload.encode(), private), safe="")
    raise ValueError(f"key_type {key_type!r} is not supported; use one of {list(KEY_TYPES)}")


class BinanceAuth(httpx.Auth):
    """An httpx auth that signs each request as it is sent (a retry gets a fresh timestamp).

    `stamp()` returns the encoded `recvWindow=...&timestamp=...`; `sign(payload)` the
    `signature` value ready for the query (`make_signer`).

    The query the caller built (encoded once) is kept byte for byte; recvWindow and timestamp
    are appended, the query plus the body is signed, and `&signature=` goes last.
    """

    requires_request_body = True

    def __init__(self, api_key: str, sign: Callable[[str], str], stamp: Callable[[], str]):
        self._api_key, self._sign, self._stamp = api_key, sign, stamp

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["X-MBX-APIKEY"] = self._api_key
        query = request.url.query.decode("ascii")
        query = f"{query}&{self._stamp()}" if query else self._stamp()
        signature = self._sign(signature_payload(query, request.content.decode()))
        request.url = request.url.copy_with(query=f"{query}&signature={signature}".encode())
        yield request

    def __repr__(self) -> str:
        return "BinanceAuth(api_key=<hidden>)"
