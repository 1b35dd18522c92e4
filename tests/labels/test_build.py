"""Labels: forward returns, cost-aware direction, triple barrier, future regime; none peeks past its time."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import load_sample_klines
from quantlab.config import DEFAULT_CONFIG, BarrierConfig, LabelsConfig, load_config
from quantlab.labels import build_labels, label_names, target_column

CFG = LabelsConfig(
    horizon=4,
    horizons=(1, 4, 12),
    dead_zone=0.002,
    barrier=BarrierConfig(vertical=6, tp_mult=1.0, sl_mult=0.8, vol_window=24),
    regime={"horizon": 5, "rules": {"lookback": 100}},
)
# Which resolution time each label column waits for.
RESOLVED_AT = {
    "label_up": "label_time",
    **{f"{p}_{h}": f"label_time_{h}" for h in (1, 4, 12) for p in ("fwd_ret", "dir")},
    **{c: "tb_time" for c in ("tb_label", "tb_ret", "tb_bars", "tb_time")},
    "regime_5": "label_time_5",
}


@pytest.fixture(scope="module")
def bars():
    return pl.concat([load_sample_klines(s, ("2023-03",)) for s in ("BTCUSDT", "SOLUSDT")])


@pytest.fixture(scope="module")
def full(bars):
    return build_labels(bars, CFG)


def _btc(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")


def test_columns_and_the_trainer_contract(full):
    assert full.columns == ["symbol", "open_time", *label_names(CFG)]
    assert set(RESOLVED_AT) | {"label_time"} | {f"label_time_{h}" for h in (1, 4, 5, 12)} == set(
        label_names(CFG)
    )
    assert target_column(CFG) == "fwd_ret_4"
    assert full["label_up"].dtype == pl.Int8 and set(full["label_up"].drop_nulls()) == {0, 1}
    assert full["label_time"].equals(full["label_time_4"].alias("label_time"))
    assert load_config(DEFAULT_CONFIG).labels == LabelsConfig()
    assert build_labels(load_sample_klines("BTCUSDT", ("2023-03",))).columns[2:] == label_names()


def test_forward_return_and_resolution_time(bars, full):
    out, btc = _btc(full), _btc(bars)
    assert out["fwd_ret_4"][0] == pytest.approx(math.log(btc["close"][4] / btc["close"][0]))
    assert out["label_time"][0] == btc["close_time"][4]
    assert out["label_up"][0] == int(btc["close"][4] > btc["close"][0])
    assert out["fwd_ret_4"].tail(4).is_null().all()
    assert out["label_up"].tail(4).is_null().all()
    assert out["fwd_ret_12"].tail(12).is_null().all() and out["fwd_ret_12"][-13] is not None


def test_direction_has_a_cost_aware_dead_zone(full):
    fwd, direction = full["fwd_ret_4"].to_numpy(), full["dir_4"].to_numpy()
    known = ~np.isnan(fwd)
    expected = np.where(fwd > 0.002, 1, np.where(fwd < -0.002, -1, 0))
    assert (direction[known] == expected[known]).all()
    assert full["dir_4"].null_count() == (~known).sum()
    assert set(full["dir_4"].drop_nulls()) == {-1, 0, 1}


def _barrier_oracle(btc: pl.DataFrame, cfg: BarrierConfig) -> list[tuple]:
    """The triple barrier written as the obvious loop over bars."""
    c, h, lo = (btc[x].to_list() for x in ("close", "high", "low"))
    times = btc["close_time"].to_list()
    lr = np.diff(np.log(c))
    out = []
    for t in range(len(c)):
        if t < cfg.vol_window:
            out.append((None, None, None, None))
            continue
        w = np.std(lr[t - cfg.vol_window : t], ddof=1) * math.sqrt(cfg.vertical)
        tp, sl = cfg.tp_mult * w, -cfg.sl_mult * w
        result = None
        for k in range(1, cfg.vertical + 1):
            if t + k >= len(c):
                break
            if math.log(lo[t + k] / c[t]) <= sl:  # a bar touching both is a stop
                result = (-1, sl, k, times[t + k])
                break
            if math.log(h[t + k] / c[t]) >= tp:
                result = (1, tp, k, times[t + k])
                break
        if result is None and t + cfg.vertical < len(c):
            v = cfg.vertical
            result = (0, math.log(c[t + v] / c[t]), v, times[t + v])
        out.append(result or (None, None, None, None))
    return out


def test_triple_barrier_matches_a_plain_loop(bars, full):
    btc = _btc(bars)
    got = _btc(full).select("tb_label", "tb_ret", "tb_bars", "tb_time").rows()
    expected = _barrier_oracle(btc, CFG.barrier)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g[0] == e[0] and g[2] == e[2] and g[3] == e[3], i
        assert g[1] == pytest.approx(e[1], abs=1e-12) if e[1] is not None else g[1] is None
    labels = [g[0] for g in got]
    assert {-1, 0, 1} <= set(labels)


def test_close_touch_barriers_ignore_wicks(bars):
    cfg = LabelsConfig(barrier={"vertical": 6, "touch": "close"}, regime=None)
    by_close = _btc(build_labels(bars, cfg))
    by_wick = _btc(
        build_labels(bars, cfg.model_copy(update={"barrier": BarrierConfig(vertical=6)}))
    )
    hits = lambda f: f["tb_label"].is_in([-1, 1]).sum()  # noqa: E731
    assert hits(by_close) < hits(by_wick)
    assert (by_close["tb_bars"].drop_nulls() <= 6).all()


def test_labels_depend_on_nothing_after_their_resolution_time(bars, full):
    """A label known on data cut at t equals the full-data label; an unresolved one is null."""
    times = bars["open_time"].unique().sort()
    for cut in random.Random(11).sample(list(times[50:]), 6):
        cut_bars = bars.filter(pl.col("open_time") <= cut)
        partial = build_labels(cut_bars, CFG)
        expected = full.filter(pl.col("open_time") <= cut)
        last_close = cut_bars.group_by("symbol").agg(pl.col("close_time").max().alias("_last"))
        expected = expected.join(last_close, on="symbol")
        for col, at in RESOLVED_AT.items():
            known = pl.col(at) <= pl.col("_last")
            assert_frame_equal(
                partial.select(col).filter(expected.select(known).to_series()),
                expected.filter(known).select(col),
            )
            unresolved = expected.select(~known.fill_null(False)).to_series()
            assert partial.filter(unresolved)[col].is_null().all(), col


def test_symbols_are_shifted_separately(bars):
    out = build_labels(bars, LabelsConfig(horizon=2, horizons=(2,), barrier=None, regime=None))
    per_symbol_nulls = out.group_by("symbol").agg(pl.col("fwd_ret_2").null_count())
    assert sorted(per_symbol_nulls["fwd_ret_2"].to_list()) == [2, 2]


def test_a_label_over_the_halt_says_it_resolves_an_hour_later(full):
    """2023-03-24 13:00 is missing: the 4-bar label from 10:00 resolves at 15:59, not 14:59."""
    btc = _btc(full)
    row = btc.filter(pl.col("open_time") == datetime(2023, 3, 24, 10, tzinfo=UTC))
    assert row["label_time"][0] == datetime(2023, 3, 24, 15, 59, 59, 999000, tzinfo=UTC)
