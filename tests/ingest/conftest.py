"""Fixtures of the ingest tests: a fresh catalog and a REST source on the root `replay` exchange."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.support import no_sleep
from quantlab.catalog import Catalog
from quantlab.exchange.replay import ReplayServer
from quantlab.ingest import RestSource


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "catalog")


@pytest.fixture
def rest(replay: ReplayServer) -> Iterator[RestSource]:
    source = RestSource(replay.base_url, {"sleep": no_sleep})
    yield source
    source.close()
