"""Cross-sectional ranks and z-scores per timestamp, and rolling per-symbol normalisation."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig
from quantlab.features import build_features

CFG = FeaturesConfig(
    columns=("logret_24", "rsi_14", "natr_14"),
    timeframes={},
    cross_section={"rank": ("logret_24",), "zscore": ("rsi_14",), "min_symbols": 2},
    normalize={"window": 48, "columns": ("natr_14",)},
)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


@pytest.fixture(scope="module")
def bars():
    return pl.concat([load_sample_klines(s, ("2023-03",)) for s in SYMBOLS])


@pytest.fixture(scope="module")
def out(bars):
    return build_features(bars, CFG)


def test_ranks_and_z_scores_compare_symbols_at_each_timestamp(out):
    ready = out.filter(pl.col("logret_24").is_not_null() & pl.col("rsi_14").is_not_null())
    per_time = ready.group_by("open_time").agg(
        pl.col("cs_rank_logret_24").sort(),
        pl.col("cs_z_rsi_14").sum().alias("z_sum"),
        pl.col("cs_z_rsi_14").pow(2).mean().alias("z_var"),
        pl.len().alias("n"),
    )
    assert (per_time["n"] == 3).all()
    assert per_time["cs_rank_logret_24"].to_list() == [[0.0, 0.5, 1.0]] * per_time.height
    assert per_time["z_sum"].abs().max() < 1e-9
    assert per_time["z_var"].to_numpy() == pytest.approx(1.0)
    # The symbol with the largest 24-bar return is ranked 1.
    t = ready["open_time"][100]
    at = ready.filter(pl.col("open_time") == t)
    assert at.sort("logret_24")["cs_rank_logret_24"].to_list() == [0.0, 0.5, 1.0]


def test_too_few_symbols_give_null_not_a_made_up_rank(bars, out):
    alone = build_features(bars.filter(pl.col("symbol") == "BTCUSDT"), CFG)
    assert alone["cs_rank_logret_24"].is_null().all() and alone["cs_z_rsi_14"].is_null().all()
    strict = CFG.model_copy(
        update={"cross_section": CFG.cross_section.model_copy(update={"min_symbols": 4})}
    )
    assert build_features(bars, strict)["cs_z_rsi_14"].is_null().all()
    # The halt hour (13:00 on 2023-03-24) is missing for all three, so no row exists at all.
    assert out.group_by("open_time").len()["len"].max() == 3


def test_rolling_normalisation_uses_the_past_window_of_the_same_symbol(out):
    eth = out.filter(pl.col("symbol") == "ETHUSDT").sort("open_time")
    x = eth["natr_14"].to_numpy().astype(float)
    i = 200
    window = x[i - 47 : i + 1]
    expected = (x[i] - window.mean()) / window.std(ddof=1)
    assert eth["natr_14_rz48"][i] == pytest.approx(expected)
    assert eth["natr_14_rz48"].head(14 + 47).is_null().all()
    assert eth["natr_14_rz48"][14 + 47] is not None
    assert np.isfinite(eth["natr_14_rz48"].drop_nulls().to_numpy()).all()
