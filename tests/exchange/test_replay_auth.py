"""Signed requests to the replay exchange: Binance's key, signature and timestamp checks and codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, urlencode

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from helpers import SAMPLE, FakeClock
from quantlab.errors import ConfigError
from quantlab.exchange._replay_auth import signature_payload
from quantlab.exchange.replay import Account, ReplayServer, load_accounts, parse_account

# Binance's published HMAC test keys (rest-api.md "SIGNED Endpoint Examples").
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
ED_KEY = Ed25519PrivateKey.generate()
ED_PEM = ED_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
CLOCK_S = 1_700_000_000.0


@pytest.fixture(scope="module")
def srv():
    accounts = [Account(API_KEY, SECRET, {"USDT": "1000"}), Account("edKey", ED_PEM, {"USDT": "5"})]
    with ReplayServer(SAMPLE, accounts=accounts, clock=FakeClock(CLOCK_S)) as server:
        yield server


def sign(payload: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def account_get(srv, query: str, key: str | None = API_KEY) -> httpx.Response:
    headers = {"X-MBX-APIKEY": key} if key is not None else {}
    return httpx.get(f"{srv.base_url}/api/v3/account?{query}", headers=headers)


def now_ms() -> int:
    return int(CLOCK_S * 1000)


def test_the_official_vector_concatenates_query_and_body_without_a_separator():
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    sig = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"  # Binance's V3
    payload, sent = signature_payload(query, f"{body}&signature={sig}")
    assert (payload, sent) == ((query + body).encode(), sig)
    assert sign(query + body) == sig


@pytest.mark.parametrize("case", ["upper", "lower"])
def test_a_valid_hmac_signature_in_either_letter_case_is_accepted(srv, case):
    query = f"timestamp={now_ms()}"
    sig = sign(query).upper() if case == "upper" else sign(query)
    resp = account_get(srv, f"{query}&signature={sig}")
    assert resp.status_code == 200
    assert {"asset": "USDT", "free": "1000.00000000", "locked": "0.00000000"} in resp.json()[
        "balances"
    ]


def test_parameters_in_the_body_are_signed_with_the_query(srv):
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = f"quantity=0.001&price=10000&timestamp={now_ms()}"  # rests far below the price
    resp = httpx.post(
        f"{srv.base_url}/api/v3/order/test?{query}",
        content=f"{body}&signature={sign(query + body)}",
        headers={"X-MBX-APIKEY": API_KEY, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (resp.status_code, resp.json()) == (200, {})


@pytest.mark.parametrize(
    ("key", "status", "code", "msg"),
    [
        (None, 401, -2014, "API-key format invalid."),
        ("not a key!", 401, -2014, "API-key format invalid."),
        ("x" * 65, 401, -2014, "API-key format invalid."),
        ("unknownKey", 401, -2015, "Invalid API-key, IP, or permissions for action."),
    ],
)
def test_key_errors(srv, key, status, code, msg):
    query = f"timestamp={now_ms()}"
    resp = account_get(srv, f"{query}&signature={sign(query)}", key=key)
    assert (resp.status_code, resp.json()) == (status, {"code": code, "msg": msg})


def test_a_wrong_signature_is_refused_with_1022(srv):
    query = f"timestamp={now_ms()}"
    resp = account_get(srv, f"{query}&signature={sign(query, 'another secret')}")
    assert resp.json() == {"code": -1022, "msg": "Signature for this request is not valid."}
    tampered = account_get(srv, f"{query}&omitZeroBalances=true&signature={sign(query)}")
    assert tampered.json()["code"] == -1022


@pytest.mark.parametrize("missing", ["timestamp", "signature"])
def test_timestamp_and_signature_are_mandatory(srv, missing):
    query = "recvWindow=5000" if missing == "timestamp" else f"timestamp={now_ms()}"
    resp = account_get(srv, query if missing == "signature" else f"{query}&signature={sign(query)}")
    msg = f"Mandatory parameter '{missing}' was not sent, was empty/null, or malformed."
    assert (resp.status_code, resp.json()) == (400, {"code": -1102, "msg": msg})


@pytest.mark.parametrize(
    ("offset_ms", "window", "msg"),
    [
        (1000, 5000, "Timestamp for this request was 1000ms ahead of the server's time."),
        (-5001, 5000, "Timestamp for this request is outside of the recvWindow."),
        (-20_000, 10_000, "Timestamp for this request is outside of the recvWindow."),
    ],
)
def test_timestamps_outside_the_window_are_refused_with_1021(srv, offset_ms, window, msg):
    query = urlencode({"recvWindow": window, "timestamp": now_ms() + offset_ms})
    resp = account_get(srv, f"{query}&signature={sign(query)}")
    assert resp.json() == {"code": -1021, "msg": msg}


def test_timestamps_inside_the_window_pass(srv):
    for offset_ms, window in ((999, 5000), (-5000, 5000), (-59_000, 60_000)):
        query = urlencode({"recvWindow": window, "timestamp": now_ms() + offset_ms})
        assert account_get(srv, f"{query}&signature={sign(query)}").status_code == 200


def test_a_client_synced_to_the_replay_clock_is_judged_against_it(srv):
    server_time = httpx.get(f"{srv.base_url}/api/v3/time").json()["serverTime"]
    query = f"timestamp={server_time - 100}"
    assert account_get(srv, f"{query}&signature={sign(query)}").status_code == 200


def test_recv_window_above_60000_is_refused(srv):
    query = f"recvWindow=60001&timestamp={now_ms()}"
    assert account_get(srv, f"{query}&signature={sign(query)}").json()["code"] == -1131


def test_ed25519_signatures_are_base64_over_the_same_payload(srv):
    query = f"timestamp={now_ms()}"
    good = quote(base64.b64encode(ED_KEY.sign(query.encode())).decode(), safe="")
    assert account_get(srv, f"{query}&signature={good}", key="edKey").status_code == 200
    other = Ed25519PrivateKey.generate()
    bad = quote(base64.b64encode(other.sign(query.encode())).decode(), safe="")
    assert account_get(srv, f"{query}&signature={bad}", key="edKey").json()["code"] == -1022


def test_signed_requests_are_charged_their_weight(srv):
    query = f"timestamp={now_ms()}"
    before = srv.used_weight()
    account_get(srv, f"{query}&signature={sign(query)}")
    assert srv.used_weight() - before == 20  # GET /api/v3/account


def test_accounts_from_the_cli_form_and_from_files(tmp_path):
    account = parse_account("k1:s1:USDT=100000,BTC=0.5")
    assert (account.api_key, account.key_type, dict(account.balances)) == (
        "k1",
        "hmac",
        {"USDT": 100000, "BTC": 0.5},
    )
    assert "s1" not in repr(account)
    with pytest.raises(ConfigError, match="KEY:SECRET"):
        parse_account("only-a-key")
    yaml_file = tmp_path / "accounts.yaml"
    yaml_file.write_text(
        f"- api_key: ed\n  public_key: |\n{_indent(ED_PEM)}  balances: {{USDT: 7}}\n"
    )
    json_file = tmp_path / "accounts.json"
    json_file.write_text('[{"api_key": "h", "secret": "s", "balances": {"btc": "0.5"}}]')
    loaded = load_accounts(yaml_file) + load_accounts(json_file)
    assert [(a.api_key, a.key_type, dict(a.balances)) for a in loaded] == [
        ("ed", "ed25519", {"USDT": 7}),
        ("h", "hmac", {"BTC": 0.5}),
    ]


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines())
