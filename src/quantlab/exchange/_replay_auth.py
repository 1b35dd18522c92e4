"""How the replay exchange authenticates a SIGNED request, in Binance's order and with its codes.

- The key comes in the X-MBX-APIKEY header: missing or not 1-64 ASCII letters/digits -> -2014
  "API-key format invalid."; a well-formed key no account holds -> -2015 (both HTTP 401).
- Parameters come from the query string and an application/x-www-form-urlencoded body (the
  query's value wins where both hold one). `timestamp` and `signature` are mandatory (-1102).
- The signature covers the query string and the body concatenated with no separator, each as
  sent, less the `signature=` pair itself: HMAC-SHA256 hex (any letter case) with the account's
  secret, or Ed25519 base64 (percent-encoded on the wire) with its public key; else -1022.
- recvWindow defaults to 5000 and may not exceed 60000 (-1131). The timestamp is judged against
  the server's wall clock (its `clock`), as Binance judges it, so a client sending real time
  needs no sync: more than 1000 ms ahead, or older than recvWindow -> -1021. A client that synced
  its offset from /api/v3/time (which reports the replay clock) sends replay-clock timestamps;
  those are judged the same way against the replay clock instead. Market time (which candle
  prices an order) is always the replay clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from quantlab.exchange._replay_accounts import Account, public_key

_KEY = re.compile(r"[A-Za-z0-9]{1,64}")
_MAX_RECV_WINDOW = 60_000
_AHEAD_MS = 1000


@dataclass(frozen=True)
class AuthError(Exception):
    status: int
    code: int
    msg: str


def mandatory(name: str) -> AuthError:
    return AuthError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def merge_params(query: str, body: str) -> dict[str, str]:
    """The request's parameters: the body's, then the query string's over them."""
    params = dict(parse_qsl(body, keep_blank_values=True))
    params.update(parse_qsl(query, keep_blank_values=True))
    return params


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """`raw` less its `signature=` pair (and the `&` that joined it), and the pair's raw value."""
    parts = raw.split("&") if raw else []
    kept = [p for p in parts if not p.startswith("signature=")]
    found = [p.partition("=")[2] for p in parts if p.startswith("signature=")]
    return "&".join(kept), (found[-1] if found else None)


def signature_payload(query: str, body: str) -> tuple[bytes, str | None]:
    """(the exact bytes a client signs, the signature sent)."""
    q, sig_q = _strip_signature(query)
    b, sig_b = _strip_signature(body)
    return (q + b).encode(), sig_q if sig_q is not None else sig_b


def signature_ok(account: Account, payload: bytes, signature: str) -> bool:
    if account.key_type == "hmac":
        want = hmac.new(account.secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(want, signature.lower())
    from cryptography.exceptions import InvalidSignature

    try:
        raw = base64.b64decode(unquote(signature), validate=True)
        public_key(account.secret).verify(raw, payload)
    except (ValueError, InvalidSignature):
        return False
    return True


def _check_time(timestamp: int, recv_window: int, now_ms: int) -> None:
    if timestamp >= now_ms + _AHEAD_MS:
        raise AuthError(
            400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if now_ms - timestamp > recv_window:
        raise AuthError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def authenticate(
    headers: Mapping[str, str],
    query: str,
    body: str,
    accounts: Mapping[str, Account],
    wall_ms: int,
    replay_ms: int,
) -> tuple[Account, dict[str, str]]:
    """The account a signed request acts for and its parameters; AuthError otherwise."""
    key = headers.get("X-MBX-APIKEY") or ""
    if not _KEY.fullmatch(key):
        raise AuthError(401, -2014, "API-key format invalid.")
    account = accounts.get(key)
    if account is None:
        raise AuthError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    params = merge_params(query, body)
    params.pop("signature", None)
    if not re.fullmatch(r"[0-9]{1,20}", params.get("timestamp", "")):
        raise mandatory("timestamp")
    payload, signature = signature_payload(query, body)
    if not signature:
        raise mandatory("signature")
    if not signature_ok(account, payload, signature):
        raise AuthError(400, -1022, "Signature for this request is not valid.")
    window = params.get("recvWindow", "5000")
    if not re.fullmatch(r"[0-9]{1,10}(\.[0-9]{1,3})?", window):
        raise AuthError(
            400,
            -1100,
            "Illegal characters found in parameter 'recvWindow'; legal range is '^[0-9]{1,10}(\\.[0-9]{1,3})?$'.",
        )
    recv_window = float(window)
    if recv_window > _MAX_RECV_WINDOW:
        raise AuthError(400, -1131, "recvWindow must be less than 60000")
    timestamp = int(params["timestamp"])
    if timestamp > 10**14:  # microseconds, which Binance also takes
        timestamp //= 1000
    # A timestamp nearer the replay clock than the wall clock came from a client synced to
    # /api/v3/time: judge it there.
    now = replay_ms if abs(timestamp - replay_ms) < abs(timestamp - wall_ms) else wall_ms
    _check_time(timestamp, int(recv_window), now)
    return account, params
