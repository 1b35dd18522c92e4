"""The webhook against a local HTTP receiver on 127.0.0.1: the body it records is the Slack
payload; a 500, a refused connection and a timeout raise AlertDeliveryError, and neither the
error nor httpx's log line holds the URL's secret path."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import polars as pl
import pytest

from quantlab.catalog.datasets import DATASETS
from quantlab.errors import AlertDeliveryError
from quantlab.monitoring.webhook import MAX_SECTIONS, host_of, post_json, slack_payload

SECRET = "/services/T000/B000/s3cr3tT0ken"
T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


class Receiver(ThreadingHTTPServer):
    """Records each POST's path and JSON body; answers `status` after `delay` seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status, self.delay = status, delay
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.hung_up = 0  # answers the client had stopped waiting for (timing-dependent)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{SECRET}?token=abc"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.paths.append(self.path)
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        time.sleep(self.server.delay)
        body = b"ok" if self.server.status < 300 else f"failed at {self.path}".encode()
        try:
            self.send_response(self.server.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.server.hung_up += 1

    def log_message(self, *args) -> None:  # keep the test output quiet
        return


def serve(status: int = 200, delay: float = 0.0) -> Iterator[Receiver]:
    server = Receiver(status, delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


@pytest.fixture
def failing() -> Iterator[Receiver]:
    yield from serve(status=500)


def alerts(n: int = 2) -> pl.DataFrame:
    rows = [
        {
            "key": f"freshness:spot:S{i}USDT:1h",
            "check": "freshness",
            "subject": f"spot:S{i}USDT:1h",
            "level": "alert" if i % 2 == 0 else "warn",
            "message": f"S{i}USDT is 4 bars behind <&> run market_data",
            "status": "fired",
            "at": T0,
            "sent_at": None,
            "channel": None,
        }
        for i in range(n)
    ]
    return pl.DataFrame(rows, schema=DATASETS["monitor_alerts"].schema, orient="row")


def test_the_receiver_gets_the_slack_payload(receiver, caplog):
    payload = slack_payload(alerts(2), title="quantlab test")
    with caplog.at_level(logging.INFO, logger="httpx"):
        post_json(receiver.url, payload, timeout=5)
    assert receiver.bodies == [payload]
    assert receiver.paths == [SECRET + "?token=abc"]
    assert payload["text"] == "quantlab test: 2 fired"
    header, first, second = payload["blocks"]
    assert header["text"]["text"] == "*quantlab test: 2 fired*"
    assert first == {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": ":red_circle: *ALERT* `freshness` *spot:S0USDT:1h*\n"
            "S0USDT is 4 bars behind &lt;&amp;&gt; run market_data",
        },
    }
    assert second["text"]["text"].startswith(":large_orange_circle: *WARN*")
    # httpx logs every request's URL at INFO: the webhook's is cut to its host
    assert "HTTP Request: POST http://127.0.0.1" in caplog.text
    assert "s3cr3t" not in caplog.text and "token=abc" not in caplog.text


def test_a_client_passed_in_is_used_and_left_open(receiver):
    with httpx.Client(headers={"X-Test": "1"}) as client:
        post_json(receiver.url, {"text": "one"}, timeout=5, client=client)
        post_json(receiver.url, {"text": "two"}, timeout=5, client=client)
    assert [b["text"] for b in receiver.bodies] == ["one", "two"]


def test_resolved_rows_and_a_long_batch_stay_within_slacks_limits():
    many = alerts(MAX_SECTIONS + 5).with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("resolved"))
        .otherwise("status")
        .alias("status")
    )
    payload = slack_payload(many)
    assert payload["text"] == f"quantlab: {MAX_SECTIONS + 4} fired, 1 resolved"
    assert len(payload["blocks"]) == MAX_SECTIONS + 2 <= 50
    assert payload["blocks"][1]["text"]["text"].startswith(":white_check_mark: *RESOLVED*")
    assert payload["blocks"][-1]["text"]["text"] == "_…and 5 more alerts_"
    assert slack_payload(alerts(0))["text"] == "quantlab: no alerts"


def test_a_500_raises_without_the_secret_path(failing):
    with pytest.raises(AlertDeliveryError) as err:
        post_json(failing.url, {"text": "x"}, timeout=5)
    message = str(err.value)
    assert "answered 500" in message
    assert f"http://127.0.0.1:{failing.server_address[1]}" in message
    assert "s3cr3t" not in message and "services" not in message and "token" not in message
    assert len(failing.bodies) == 1  # it was sent once; the retry is the caller's


def test_a_refused_connection_raises_without_the_secret_path():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://127.0.0.1:{port}{SECRET}"
    with pytest.raises(AlertDeliveryError) as err:
        post_json(url, {"text": "x"}, timeout=5)
    message = str(err.value)
    assert message.startswith(f"could not reach the alert webhook at https://127.0.0.1:{port}")
    assert "s3cr3t" not in message and "services" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_a_receiver_that_does_not_answer_in_time_raises():
    for slow in serve(delay=1.0):
        with pytest.raises(AlertDeliveryError, match=r"did not answer within 0\.2 s") as err:
            post_json(slow.url, {"text": "x"}, timeout=0.2)
        assert "s3cr3t" not in str(err.value)


@pytest.mark.parametrize("url", ["not a url", "ftp://example.invalid/x", ""])
def test_an_unusable_url_raises_a_delivery_error(url):
    with pytest.raises(AlertDeliveryError):
        post_json(url, {"text": "x"}, timeout=1)


def test_host_of_keeps_scheme_host_and_port_only():
    assert host_of("https://hooks.slack.com/services/T/B/X?y=1") == "https://hooks.slack.com"
    assert host_of(f"http://127.0.0.1:8080{SECRET}") == "http://127.0.0.1:8080"
