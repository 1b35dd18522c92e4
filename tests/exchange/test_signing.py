"""Request signatures against Binance's official HMAC vectors, and Ed25519 round trips."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, unquote

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from quantlab.exchange.signing import (
    hmac_signature,
    load_ed25519_key,
    make_signer,
    sign_ed25519,
    signature_payload,
    signed_query,
    signed_query_ed25519,
)

# Binance's documented test secret (binance-spot-api-docs rest-api.md, "SIGNED Endpoint Examples").
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
ORDER = {
    "symbol": "LTCBTC",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": 1,
    "price": 0.1,
    "recvWindow": 5000,
    "timestamp": 1499827319559,
}
V1_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
V2_SYMBOL = "\uff11\uff12\uff13\uff14\uff15\uff16"  # "１２３４５６", fullwidth digits
V2_ENCODED = "%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"


def test_v1_limit_order_signature_is_binances():
    expected = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert signed_query(ORDER, SECRET) == f"{V1_QUERY}&signature={expected}"


def test_v2_non_ascii_symbol_is_percent_encoded_before_signing():
    expected = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    query = V1_QUERY.replace("LTCBTC", V2_ENCODED)
    assert signed_query({**ORDER, "symbol": V2_SYMBOL}, SECRET) == f"{query}&signature={expected}"


def test_v3_query_and_body_are_signed_concatenated_without_separator():
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    expected = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    assert signature_payload(query, body) == query + body
    assert hmac_signature(signature_payload(query, body), SECRET) == expected


def test_v4_timestamp_only():
    expected = "d84e6641b1e328e7b418fff030caed655c266299c9355e36ce801ed14631eed4"
    assert signed_query({"timestamp": 1578963600000}, SECRET) == (
        f"timestamp=1578963600000&signature={expected}"
    )


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize("form", ["object", "pem", "pem_escaped_newlines"])
def test_ed25519_signature_verifies_with_the_public_key_and_fails_when_tampered(form):
    private = Ed25519PrivateKey.generate()
    key = {
        "object": private,
        "pem": _pem(private),
        "pem_escaped_newlines": _pem(private).replace("\n", "\\n"),
    }[form]
    query = signed_query_ed25519({"symbol": V2_SYMBOL, "timestamp": 1499827319559}, key)
    payload, _, encoded = query.rpartition("&signature=")
    assert payload == f"symbol={V2_ENCODED}&timestamp=1499827319559"
    signature = base64.b64decode(unquote(encoded))
    assert len(signature) == 64
    assert not set("+/=") & set(encoded), "the base64 signature must be percent-encoded"
    private.public_key().verify(signature, payload.encode())  # raises if it does not verify
    with pytest.raises(InvalidSignature):
        private.public_key().verify(signature, payload.replace("1499", "1500").encode())


def test_ed25519_signer_matches_sign_ed25519():
    private = Ed25519PrivateKey.generate()
    sign = make_signer("ed25519", _pem(private))
    payload = "timestamp=1578963600000"
    assert unquote(sign(payload)) == sign_ed25519(payload.encode(), private)
    assert dict(parse_qsl(signed_query_ed25519({"timestamp": 1578963600000}, private)))


@pytest.mark.parametrize(
    "bad",
    [
        "not a pem at all",
        generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode(),
    ],
    ids=["garbage", "rsa_key"],
)
def test_a_wrong_key_is_refused_without_quoting_it(bad):
    with pytest.raises(ValueError) as info:
        load_ed25519_key(bad)
    assert bad not in str(info.value)
    assert "Ed25519" in str(info.value)


def test_an_unknown_key_type_is_refused():
    with pytest.raises(ValueError, match="key_type 'rsa' is not supported"):
        make_signer("rsa", SECRET)
