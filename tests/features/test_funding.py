"""Funding-rate features: a rate is used from the first bar that closes after it was paid."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from helpers import load_funding_events, load_sample_klines
from quantlab.config import FeaturesConfig
from quantlab.errors import SchemaError
from quantlab.features import build_features, feature_names

CFG = FeaturesConfig(
    columns=("logret_1",),
    timeframes={},
    cross_section={"rank": (), "zscore": ()},
    normalize={"columns": ()},
    funding=("funding_rate", "funding_mean_3", "funding_z_21"),
)


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return load_funding_events()


@pytest.fixture(scope="module")
def out(events):
    bars = pl.concat(
        [load_sample_klines(s, ("2023-02", "2023-03")) for s in ("BTCUSDT", "ETHUSDT")]
    )
    return bars, build_features(bars, CFG, funding=events)


def test_each_bar_sees_the_last_rate_paid_by_its_close(events, out):
    bars, feats = out
    btc = bars.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")
    got = feats.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")
    times = events["funding_time"].dt.epoch("ms").to_list()
    rates = events["funding_rate"].to_numpy()
    for i, close_ms in enumerate(btc["close_time"].dt.epoch("ms").to_list()):
        k = bisect.bisect_right(times, close_ms) - 1
        assert got["funding_rate"][i] == rates[k]
        assert got["funding_mean_3"][i] == pytest.approx(rates[k - 2 : k + 1].mean())
        w = rates[k - 20 : k + 1]
        if (w == w[0]).all():  # often: 21 payments at the 0.01% default have no spread
            assert got["funding_z_21"][i] is None
        else:
            z = (rates[k] - w.mean()) / w.std(ddof=1)
            assert got["funding_z_21"][i] == pytest.approx(z)


def test_a_rate_paid_a_few_ms_after_a_bar_closes_waits_for_the_next_bar(events, out):
    """fundingTime carries real jitter: 2023-02-01 00:00:00.005 is after the 23:00 bar's close."""
    _, feats = out
    paid = events.filter(pl.col("funding_time") >= datetime(2023, 2, 1, tzinfo=UTC))[0]
    assert paid["funding_time"].dt.millisecond()[0] > 0
    btc = feats.filter(pl.col("symbol") == "BTCUSDT")
    before = btc.filter(pl.col("open_time") == datetime(2023, 1, 31, 23, tzinfo=UTC))
    at = btc.filter(pl.col("open_time") == datetime(2023, 2, 1, 0, tzinfo=UTC))
    assert at["funding_rate"][0] == paid["funding_rate"][0]
    assert before.height == 0 or before["funding_rate"][0] != paid["funding_rate"][0]


def test_symbols_without_funding_get_nulls_and_names_include_funding(out):
    _, feats = out
    assert feats.columns[2:] == feature_names(CFG, funding=True)
    eth = feats.filter(pl.col("symbol") == "ETHUSDT")
    assert eth.select(pl.col("funding_rate", "funding_mean_3").is_null().all()).row(0) == (
        True,
        True,
    )
    assert np.isfinite(feats["funding_z_21"].drop_nulls().to_numpy()).all()


def test_a_funding_frame_without_the_columns_is_a_schema_error(out):
    bars, _ = out
    with pytest.raises(SchemaError, match="funding_rates lacks"):
        build_features(bars, CFG, funding=pl.DataFrame({"symbol": ["BTCUSDT"], "rate": [0.1]}))


def test_a_payment_stored_twice_is_a_schema_error(events, out):
    """Two markets' rates mixed (or a bad merge) would count one payment twice in every window."""
    bars, _ = out
    twice = pl.concat([events, events.slice(10, 1)])
    with pytest.raises(SchemaError, match="repeat BTCUSDT's payment at"):
        build_features(bars, CFG, funding=twice)
