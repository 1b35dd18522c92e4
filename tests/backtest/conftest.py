"""Real data fixtures for the engine tests (loaders in tests/engine_data.py)."""

from __future__ import annotations

import polars as pl
import pytest

import engine_data as data

PERP_START, PERP_END = "2024-03-01", "2024-04-01"


@pytest.fixture(scope="session")
def march_bars() -> pl.DataFrame:
    """March 2023 spot 1h bars of BTC/ETH/SOL (real; holds the 2023-03-24 halt)."""
    return data.spot_bars("2023-03")


@pytest.fixture(scope="session")
def spot_rules():
    return data.spot_rules()


@pytest.fixture(scope="session")
def perp_bars() -> pl.DataFrame:
    return data.perp_frames("futures", PERP_START, PERP_END)


@pytest.fixture(scope="session")
def perp_marks() -> pl.DataFrame:
    return data.perp_frames("mark", PERP_START, PERP_END)


@pytest.fixture(scope="session")
def perp_funding() -> pl.DataFrame:
    return data.perp_frames("funding_rate", PERP_START, PERP_END)


@pytest.fixture(scope="session")
def perp_rules():
    return data.perp_rules()
