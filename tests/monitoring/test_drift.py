"""PSI and the drift check on tiny frames and on the shipped BTCUSDT klines."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.catalog.datasets import DATASETS
from quantlab.config.monitoring import DriftConfig
from quantlab.monitoring.drift import EPS, check_drift, drift_windows, psi


def _psi_by_hand(p: list[float], q: list[float]) -> float:
    p2, q2 = [max(x, EPS) for x in p], [max(x, EPS) for x in q]
    return sum((b - a) * math.log(b / a) for a, b in zip(p2, q2, strict=True))


@pytest.mark.parametrize(
    ("reference", "recent", "bins", "p", "q"),
    [
        # median edge 5.5: half and half against all above it
        (list(range(1, 11)), [6, 7, 8, 9], 2, [0.5, 0.5], [0.0, 1.0]),
        # bin i is (edge[i-1], edge[i]]: 5.5 sits in the upper half, 5 in the lower
        (list(range(1, 11)), [5, 5.5, 6, 1], 2, [0.5, 0.5], [0.75, 0.25]),
        # a constant reference has one edge left after deduplication: two bins
        ([0.0] * 8, [0.0, 1.0, 2.0, 3.0], 10, [1.0, 0.0], [0.25, 0.75]),
        ([0.0] * 8, [0.0] * 3, 10, [1.0, 0.0], [1.0, 0.0]),
    ],
)
def test_psi_matches_the_formula(reference, recent, bins, p, q):
    got = psi(pl.Series(reference, dtype=pl.Float64), pl.Series(recent, dtype=pl.Float64), bins)
    assert got == pytest.approx(_psi_by_hand(p, q))


def test_psi_of_a_series_against_itself_is_zero_and_grows_with_a_shift():
    x = pl.Series(np.linspace(0.0, 1.0, 500))
    assert psi(x, x, 10) == pytest.approx(0.0, abs=1e-12)
    shifts = [psi(x, x + d, 10) for d in (0.02, 0.1, 0.3, 1.0)]
    assert shifts == sorted(shifts) and shifts[0] > 0


def test_psi_drops_nulls_nan_and_infinities():
    clean = pl.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    dirty = pl.Series([1.0, None, 2.0, float("nan"), 3.0, 4.0, float("inf"), 5.0, 6.0])
    recent = pl.Series([5.0, 6.0, None, float("nan")])
    assert psi(dirty, recent, 3) == pytest.approx(psi(clean, pl.Series([5.0, 6.0]), 3))


@pytest.mark.parametrize(
    ("reference", "recent"),
    [([], [1.0]), ([1.0, 2.0], []), ([None, None], [1.0]), ([1.0], [float("nan")])],
)
def test_psi_is_none_when_a_side_is_empty(reference, recent):
    assert (
        psi(pl.Series(reference, dtype=pl.Float64), pl.Series(recent, dtype=pl.Float64), 5) is None
    )


def test_psi_takes_integer_and_boolean_features():
    assert psi(pl.Series([1, 2, 3, 4]), pl.Series([1, 2, 3, 4]), 4) == pytest.approx(0.0)
    assert psi(pl.Series([True, False] * 5), pl.Series([True] * 5), 2) > 1.0


def test_psi_on_real_klines_finds_the_march_2023_volatility():
    k = load_sample_klines("BTCUSDT", ("2023-02", "2023-03"))
    ret = k.select(
        pl.col("open_time"), (pl.col("close") / pl.col("close").shift(1)).log().abs().alias("r")
    )
    feb = ret.filter(pl.col("open_time").dt.month() == 2)["r"]
    mar = ret.filter(pl.col("open_time").dt.month() == 3)["r"]
    # the SVB weeks moved more per hour than February: a clear shift, and never negative
    assert psi(feb, mar, 10) > psi(feb, feb.sample(fraction=0.5, seed=1), 10) >= 0


T0 = datetime(2023, 3, 31, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reference_days", "ref_start"),
    [(90, datetime(2022, 12, 31, 23, tzinfo=UTC)), (None, None)],
)
def test_drift_windows(reference_days, ref_start):
    cfg = DriftConfig(recent_days=7, reference_days=reference_days)
    as_of = T0 + timedelta(days=20)
    assert drift_windows(T0, as_of, cfg) == (ref_start, T0, as_of - timedelta(days=7), as_of)


CFG = DriftConfig(bins=10, warn_psi=0.1, alert_psi=0.25, min_rows=50)
WINDOWS = drift_windows(T0, T0 + timedelta(days=7), CFG)
AS_OF = WINDOWS[3]


def _frames(n_recent: int = 100) -> tuple[pl.DataFrame, pl.DataFrame]:
    base = np.linspace(0.0, 1.0, 400)
    recent = np.linspace(0.0, 1.0, n_recent)
    reference = pl.DataFrame({"same": base, "small": base, "big": base, "gone": base})
    recent_frame = pl.DataFrame({"same": recent, "small": recent + 0.08, "big": recent + 0.5})
    return reference, recent_frame


def _check(reference, recent, features):
    return check_drift(
        reference,
        recent,
        features,
        model="main_pooled",
        model_version=4,
        windows=WINDOWS,
        as_of=AS_OF,
        cfg=CFG,
    )


def test_check_drift_ranks_and_judges_each_feature():
    reference, recent = _frames()
    got = _check(reference, recent, ["same", "small", "big", "gone"])
    DATASETS["monitor_drift"].check(got)
    assert got["feature"].to_list() == ["big", "small", "same", "gone"]
    assert got["rank"].to_list() == [1, 2, 3, 4]
    assert got["level"].to_list() == ["alert", "warn", "ok", "n/a"]
    assert got["threshold"].to_list() == [0.25, 0.1, 0.25, 0.25]
    assert got["subject"].to_list() == [
        f"main_pooled/{f}" for f in ("big", "small", "same", "gone")
    ]
    assert (got["check"] == "drift").all() and (got["model_version"] == 4).all()
    assert got["psi"].to_list()[:3] == pytest.approx(
        [psi(reference[f], recent[f], 10) for f in ("big", "small", "same")]
    )
    assert got["value"].equals(got["psi"])
    assert got["reference_rows"].to_list() == [400, 400, 400, 400]
    assert got["recent_rows"].to_list() == [100, 100, 100, 0]
    assert "missing from the recent rows" in got["message"][3]
    row = got.row(0, named=True)
    assert (row["reference_start"], row["reference_end"]) == WINDOWS[:2]
    assert (row["recent_start"], row["recent_end"], row["as_of"]) == (*WINDOWS[2:], AS_OF)


def test_too_few_recent_rows_are_not_judged():
    reference, recent = _frames(n_recent=49)
    got = _check(reference, recent, ["same", "big"])
    DATASETS["monitor_drift"].check(got)
    assert got["level"].to_list() == ["n/a", "n/a"]
    assert all("fewer than drift.min_rows 50" in m for m in got["message"])
    assert got["feature"].to_list() == ["big", "same"]  # still ranked, for the page


def test_nulls_count_out_of_the_rows_but_not_out_of_the_window():
    reference, recent = _frames()
    holed = recent.with_columns(
        pl.when(pl.int_range(pl.len()) < 60).then(None).otherwise(pl.col("same")).alias("same")
    )
    got = _check(reference, holed, ["same"])
    assert got["recent_rows"].to_list() == [40]
    assert got["level"].to_list() != ["n/a"]


def test_no_features_gives_an_empty_frame():
    reference, recent = _frames()
    got = _check(reference, recent, [])
    assert got.height == 0
    DATASETS["monitor_drift"].check(got)
