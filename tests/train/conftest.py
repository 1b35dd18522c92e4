"""Fixtures shared by the train tests."""

from __future__ import annotations

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig, LabelsConfig
from quantlab.features import build_features
from quantlab.labels import build_labels


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    """Real features joined to 4-bar labels: BTCUSDT and ETHUSDT 1h bars, Jan-Feb 2024."""
    bars = pl.concat(
        [load_sample_klines(s, ("2024-01", "2024-02")) for s in ("BTCUSDT", "ETHUSDT")]
    )
    feats = build_features(bars, FeaturesConfig())
    return feats.join(build_labels(bars, LabelsConfig(horizon=4)), on=["symbol", "open_time"])
