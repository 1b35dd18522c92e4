"""Shared by the exchange tests: one replay exchange over the shipped sample, and a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantlab.exchange import ReplayServer

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


class FakeTime:
    """One clock for the server's weight window and the client's sleep; safe across threads."""

    def __init__(self, t: float):
        self.t = t
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.t += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(1_000_000 * 60 + 10)


@pytest.fixture(scope="session")
def sample_server() -> Iterator[ReplayServer]:
    """The replay exchange over data/sample, shared: tests must not change its state."""
    with ReplayServer(SAMPLE) as srv:
        yield srv
