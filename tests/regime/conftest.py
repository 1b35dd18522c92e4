"""Fixtures of the regime tests: real features and labels of two symbols, regime rules with a
one-week look-back so most of three months is labelled, and a small walk-forward."""

from __future__ import annotations

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig, LabelsConfig, RegimeConfig, TrainConfig

HORIZON = 12  # regime_12: unlike labels.horizon (4), so purging by the wrong time would show
RULES = {"lookback": 168}
MONTHS = ("2024-01", "2024-02", "2024-03")


@pytest.fixture(scope="module")
def tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    """(features, labels) of BTCUSDT and ETHUSDT 1h bars, Jan-Mar 2024."""
    from quantlab.features import build_features
    from quantlab.labels import build_labels

    bars = pl.concat([load_sample_klines(s, MONTHS) for s in ("BTCUSDT", "ETHUSDT")])
    rules = RegimeConfig(**RULES)
    feats = build_features(bars, FeaturesConfig(regime=rules))
    labels_cfg = LabelsConfig(horizon=4, regime={"horizon": HORIZON, "rules": rules})
    return feats, build_labels(bars, labels_cfg)


@pytest.fixture(scope="module")
def data(tables) -> pl.DataFrame:
    from quantlab.regime import training_frame

    feats, labels = tables
    return training_frame(feats, labels, HORIZON)


@pytest.fixture(scope="module")
def features(tables) -> list[str]:
    return [c for c in tables[0].columns if c not in ("symbol", "open_time")]


@pytest.fixture(scope="module")
def cfg() -> TrainConfig:
    """Three folds, two trials of at most 30 rounds each."""
    return TrainConfig(folds=3, trials=2, num_boost_round=30, early_stopping_rounds=10)
