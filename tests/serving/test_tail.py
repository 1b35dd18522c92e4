"""The newest bars' features from the minimum history equal the whole table's.

Real data: BTC, ETH and SOL spot 1h klines of the shipped sample, 2023-2024, with the default
feature set (multi-timeframe, cross-section, normalized and regime features included).
Tolerance: the recursive indicators run until their seed weighs less than
`history.TOLERANCE` (1e-9); the seed of a Wilder average can sit well off its state, so the
test allows 10x that, relative (rtol 1e-8; measured worst: 2e-10, natr_14_1d), and 1e-11
absolute for values near zero, where rolling sums round differently by where the data starts
(measured worst: 6e-13). Integer features (the regime code) and nulls must match exactly.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from quantlab.config import FeaturesConfig
from quantlab.features import REGISTRY, library, plan_features
from quantlab.serving.history import FINITE, SETTLE, history_rows, settle
from quantlab.serving.tail import build_tail, tail_rows

RTOL, ATOL = 1e-8, 1e-11


@pytest.fixture(scope="module")
def full(real_klines) -> pl.DataFrame:
    from quantlab.features import build_features

    return build_features(real_klines, FeaturesConfig(), interval="1h")


def _tail_at(bars: pl.DataFrame, t, rows: int) -> pl.DataFrame:
    """Each symbol's newest `rows` bars up to open_time t: what serving reads at t's close."""
    upto = bars.filter(pl.col("open_time") <= t).sort("symbol", "open_time")
    return upto.group_by("symbol", maintain_order=True).tail(rows)


def _assert_rows_match(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.columns == want.columns
    assert got.select("symbol", "open_time").equals(want.select("symbol", "open_time"))
    for c in got.columns[2:]:
        a, b = got[c], want[c]
        assert a.is_null().to_list() == b.is_null().to_list(), c
        if not a.dtype.is_float():
            assert a.to_list() == b.to_list(), c
            continue
        np.testing.assert_allclose(
            a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy(), rtol=RTOL, atol=ATOL, err_msg=c
        )


def test_newest_and_random_bars_equal_the_whole_table(real_klines, full):
    cfg = FeaturesConfig()
    rows = tail_rows(cfg, "1h", extra=3)
    times = full["open_time"].unique().sort()
    assert rows is not None and rows < times.len() / 2  # a real cut, not the whole table
    picks = np.random.default_rng(16).integers(rows, times.len() - 1, 4)
    for t in [times[-1], *(times[int(i)] for i in picks)]:
        tail = _tail_at(real_klines, t, rows)
        got = build_tail(tail, cfg, "1h").filter(pl.col("open_time") > t - pl.duration(hours=3))
        want = full.filter(pl.col("open_time").is_in(got["open_time"].unique().implode()))
        assert got.height == 9  # the newest 3 bars of each of 3 symbols
        _assert_rows_match(got, want.sort("symbol", "open_time"))


def test_the_settling_margin_is_what_makes_recursive_features_match(real_klines, full):
    # The warm-up alone leaves EMA200's seed in the newest value: far off the table's.
    cfg = FeaturesConfig(columns=("ema_dist_200",), timeframes={}, normalize={"columns": ()})
    cfg = cfg.model_copy(
        update={"cross_section": cfg.cross_section.model_copy(update={"rank": (), "zscore": ()})}
    )
    t = full["open_time"].max()
    want = full.filter(pl.col("open_time") == t).sort("symbol")["ema_dist_200"].to_numpy()
    warmup_only = build_tail(_tail_at(real_klines, t, 200 + 1), cfg, "1h")
    got = warmup_only.filter(pl.col("open_time") == t).sort("symbol")["ema_dist_200"].to_numpy()
    assert np.abs(got - want).max() > 1e-6
    settled = build_tail(_tail_at(real_klines, t, tail_rows(cfg, "1h")), cfg, "1h")
    got = settled.filter(pl.col("open_time") == t).sort("symbol")["ema_dist_200"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _only(columns, **kw) -> FeaturesConfig:
    base = FeaturesConfig()
    cs = base.cross_section.model_copy(update={"rank": (), "zscore": ()})
    update = {"columns": tuple(columns), "timeframes": {}, "cross_section": cs}
    update["normalize"] = base.normalize.model_copy(update={"columns": ()})
    return base.model_copy(update=update | kw)


def test_history_comes_from_the_plan():
    interval = "1h"
    assert history_rows(plan_features(_only(["logret_1"])), interval) == 2  # warm-up 1, then t
    assert history_rows(plan_features(_only(["sma_50"])), interval) == 50
    assert history_rows(plan_features(_only(["rsi_14"])), interval) == 14 + settle(1 / 14) + 1
    ema = 199 + settle(2 / 201) + 1
    assert history_rows(plan_features(_only(["ema_dist_200", "rsi_7"])), interval) == ema
    # A daily feature counts its rows in days, plus the open day and a partly seen first one.
    daily = _only(["logret_1"], timeframes={"1d": ("natr_14",)})
    assert history_rows(plan_features(daily), interval) == (14 + settle(1 / 14) + 1 + 2) * 24 - 1
    # Normalizing over a window needs the column settled across the whole window.
    base = _only(["natr_14"])
    norm = base.model_copy(
        update={
            "normalize": base.normalize.model_copy(update={"window": 300, "columns": ("natr_14",)})
        }
    )
    assert history_rows(plan_features(norm), interval) == 14 + settle(1 / 14) + 1 + 299
    # The regime's quantile window comes from features.regime.lookback.
    longer = FeaturesConfig().regime.model_copy(update={"lookback": 2000})
    r1 = history_rows(plan_features(_only(["regime"])), interval)
    r2 = history_rows(plan_features(_only(["regime"], regime=longer)), interval)
    assert r2 - r1 == 2000 - FeaturesConfig().regime.lookback
    # A running total since the first bar never forgets: only the whole history will do.
    assert history_rows(plan_features(_only(["obv"])), interval) is None


def test_every_registered_indicator_has_a_known_memory():
    library()  # loads every family
    assert set(SETTLE) | FINITE == set(REGISTRY)
    assert not set(SETTLE) & FINITE
