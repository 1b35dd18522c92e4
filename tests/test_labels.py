"""Labels: forward returns per symbol, resolution time, nothing past the horizon."""

from __future__ import annotations

import math
from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import load_sample_klines
from quantlab.config import LabelsConfig
from quantlab.labels import build_labels


@pytest.fixture(scope="module")
def bars():
    return pl.concat([load_sample_klines(s, ("2023-03",)) for s in ("BTCUSDT", "SOLUSDT")])


def test_forward_return_and_resolution_time(bars):
    cfg = LabelsConfig(horizon=4)
    out = build_labels(bars, cfg).filter(pl.col("symbol") == "BTCUSDT").sort("open_time")
    btc = bars.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")
    assert out["fwd_ret_4"][0] == pytest.approx(math.log(btc["close"][4] / btc["close"][0]))
    assert out["label_time"][0] == btc["close_time"][4]
    assert out["label_up"][0] == int(btc["close"][4] > btc["close"][0])
    assert out["fwd_ret_4"].tail(4).is_null().all()
    assert out["label_up"].tail(4).is_null().all()


def test_labels_depend_on_nothing_after_their_resolution_time(bars):
    cfg = LabelsConfig(horizon=3)
    full = build_labels(bars, cfg)
    cut = bars["open_time"].sort()[400]
    partial = build_labels(bars.filter(pl.col("open_time") <= cut), cfg)
    resolved = full.filter(pl.col("label_time") <= cut + timedelta(hours=1))
    joined = resolved.join(partial, on=["symbol", "open_time"], suffix="_cut")
    assert joined.height == resolved.height
    assert_frame_equal(
        joined.select("fwd_ret_3"), joined.select(pl.col("fwd_ret_3_cut").alias("fwd_ret_3"))
    )


def test_symbols_are_shifted_separately(bars):
    out = build_labels(bars, LabelsConfig(horizon=2))
    per_symbol_nulls = out.group_by("symbol").agg(pl.col("fwd_ret_2").null_count())
    assert sorted(per_symbol_nulls["fwd_ret_2"].to_list()) == [2, 2]
