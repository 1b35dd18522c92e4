"""Fixtures of the ingest tests: the shipped real sample, served by a replay exchange."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.support import SAMPLE, no_sleep
from quantlab.catalog import Catalog
from quantlab.exchange.replay import ReplayServer
from quantlab.ingest import RestSource


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    with ReplayServer(SAMPLE) as server:
        yield server


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "catalog")


@pytest.fixture
def rest(replay: ReplayServer) -> Iterator[RestSource]:
    source = RestSource(replay.base_url, {"sleep": no_sleep})
    yield source
    source.close()
