"""Features: no lookahead for every feature, nulls during warm-up, per-symbol isolation, on real klines."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import load_funding_events, load_sample_klines
from quantlab.config import DEFAULT_CONFIG, FeaturesConfig, load_config
from quantlab.errors import ConfigError, SchemaError
from quantlab.features import build_features, feature_names, library, resolve

CFG = FeaturesConfig()
MONTHS = ("2023-02", "2023-03", "2023-04")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
# Every registered bar feature, every higher timeframe, cross-section, normalisation and funding.
EVERYTHING = FeaturesConfig(
    columns=tuple(f.name for f in library() if f.family != "funding"),
    timeframes={"4h": ("logret_1", "rsi_14", "adx_14", "regime"), "1d": ("natr_14", "ema_dist_9")},
    cross_section={"rank": ("logret_24", "rsi_14_4h"), "zscore": ("natr_14", "mfi_14")},
    normalize={"window": 100, "columns": ("natr_14", "volume_z_24", "logret_1_4h")},
    regime={"lookback": 200},
)


@pytest.fixture(scope="module")
def bars():
    return pl.concat([load_sample_klines(s, MONTHS) for s in SYMBOLS])


@pytest.fixture(scope="module")
def everything(bars):
    return build_features(bars, EVERYTHING, funding=load_funding_events())


def test_default_set_is_keyed_numeric_and_in_order(bars):
    out = build_features(bars, CFG)
    names = feature_names(CFG)
    assert out.columns == ["symbol", "open_time", *names]
    assert 25 <= len(names) <= 40  # what `make run` trains on must stay small enough
    assert all(out.schema[n].is_numeric() for n in names)  # the trainer feeds every column
    assert out.height == bars.height
    assert out.select("symbol", "open_time").is_duplicated().sum() == 0


def test_no_config_means_the_defaults_in_configs():
    assert load_config(DEFAULT_CONFIG).features == FeaturesConfig()
    assert feature_names() == feature_names(load_config(DEFAULT_CONFIG).features)


def test_the_library_is_registered_with_metadata():
    lib = library()
    assert len(lib) >= 50
    assert {f.family for f in lib} == {
        "price",
        "momentum",
        "trend",
        "volatility",
        "volume",
        "regime",
        "funding",
    }
    assert len({f.name for f in lib}) == len(lib)
    for f in lib:
        assert f.description and f.warmup >= 0
    assert resolve("rsi_21").params == {"n": 21} and resolve("rsi_21").warmup == 21
    assert resolve("macd_hist_pct_5_35_5").warmup == 35 + 5 - 2


def test_values_at_t_do_not_change_when_later_bars_are_cut_off(bars, everything):
    """The leakage test: every feature on data cut at t equals the same on all data, rows <= t."""
    funding = load_funding_events()
    times = bars["open_time"].unique().sort()
    rng = random.Random(7)
    cuts = [times[30], times[250], *rng.sample(list(times[300:]), 4)]
    for cut in cuts:
        partial = build_features(bars.filter(pl.col("open_time") <= cut), EVERYTHING, funding)
        assert_frame_equal(partial, everything.filter(pl.col("open_time") <= cut))


def test_values_at_t_ignore_what_later_bars_contain(bars, everything):
    """Scramble every bar after t: nothing at or before t may move."""
    cut = bars["open_time"].sort()[1500]
    later = pl.col("open_time") > cut
    noisy = bars.with_columns(
        [
            pl.when(later).then(pl.col(c) * 1.37).otherwise(pl.col(c))
            for c in ("open", "high", "low", "close", "volume", "quote_volume")
        ]
    )
    changed = build_features(noisy, EVERYTHING, load_funding_events())
    assert_frame_equal(
        changed.filter(~later), everything.filter(pl.col("open_time") <= cut), check_exact=True
    )
    assert not changed.filter(later).equals(everything.filter(later))


def test_warm_up_rows_are_null_then_the_value_exists(everything):
    btc = everything.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")
    for f in library(EVERYTHING):
        if f.family == "funding":
            continue
        col = btc[f.name]
        assert col.head(f.warmup).is_null().all(), f.name
        assert col[f.warmup] is not None, f.name


def test_missing_values_are_null_never_nan(everything):
    floats = [c for c, t in everything.schema.items() if t.is_float()]
    nans = everything.select(pl.col(floats).is_nan().sum()).row(0)
    assert sum(nans) == 0
    assert everything.select(pl.col(floats).is_infinite().sum()).row(0) == (0,) * len(floats)


def test_symbols_do_not_bleed_into_each_other(bars):
    per_symbol = [n for n in feature_names(EVERYTHING) if not n.startswith("cs_")]
    together = build_features(bars, EVERYTHING).filter(pl.col("symbol") == "ETHUSDT")
    alone = build_features(bars.filter(pl.col("symbol") == "ETHUSDT"), EVERYTHING)
    assert_frame_equal(together.select(per_symbol), alone.select(per_symbol))
    assert alone.select(pl.col("^cs_.*$").is_not_null().sum()).row(0) == (0, 0, 0, 0)


def test_hand_checked_values_on_real_bars(bars, everything):
    btc = bars.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")
    out = everything.filter(pl.col("symbol") == "BTCUSDT").sort("open_time")
    o, h, lo, c, v = (btc[x].to_numpy() for x in ("open", "high", "low", "close", "volume"))
    assert out["logret_1"][5] == pytest.approx(math.log(c[5] / c[4]))
    assert out["ret_4"][10] == pytest.approx(c[10] / c[6] - 1)
    w = c[0:20]
    mean, sd = w.mean(), w.std()  # Bollinger uses the population sd, as TA-Lib does
    assert out["bb_pctb_20"][19] == pytest.approx((c[19] - (mean - 2 * sd)) / (4 * sd))
    hl = np.log(h[0:24] / lo[0:24])
    assert out["parkinson_24"][23] == pytest.approx(math.sqrt((hl**2).mean() / (4 * math.log(2))))
    co = np.log(c[0:24] / o[0:24])
    gk = math.sqrt((0.5 * hl**2 - (2 * math.log(2) - 1) * co**2).mean())
    assert out["garman_klass_24"][23] == pytest.approx(gk)
    signed = np.sign(np.diff(c[0:25])) * v[1:25]
    assert out["obv_flow_24"][24] == pytest.approx(signed.sum() / v[1:25].sum())
    vwap = btc["quote_volume"].to_numpy()[1:25].sum() / v[1:25].sum()
    assert out["vwap_dist_24"][24] == pytest.approx(c[24] / vwap - 1)
    assert out["rvol_24"][24] == pytest.approx(np.diff(np.log(c[0:25])).std(ddof=1))


def test_the_2023_03_24_halt_candle_is_handled(everything):
    """The real halt: the 12:00 candle has zero volume and 13:00 is missing; nothing breaks."""
    btc = everything.filter(pl.col("symbol") == "BTCUSDT")
    halt = btc.filter(pl.col("open_time") == datetime(2023, 3, 24, 12, tzinfo=UTC))
    assert halt.height == 1
    assert halt["taker_buy_ratio"][0] is None  # zero volume: no ratio, not a division by zero
    assert halt["close_pos"][0] is None  # a flat bar has no place in its range
    assert halt["rsi_14"][0] is not None and halt["adx_14"][0] is not None
    assert btc.filter(pl.col("open_time") == datetime(2023, 3, 24, 13, tzinfo=UTC)).height == 0


def test_config_mistakes_are_errors_that_say_what_to_do(bars):
    with pytest.raises(ConfigError, match=r"unknown feature 'rsi14'.*features list"):
        feature_names(FeaturesConfig(columns=("rsi14",)))
    with pytest.raises(ConfigError, match="cross_section refers to"):
        feature_names(FeaturesConfig(columns=("rsi_14",)))
    with pytest.raises(ConfigError, match=r"belong in features\.funding"):
        feature_names(FeaturesConfig(columns=("funding_rate",), funding=()))
    with pytest.raises(ConfigError, match="MACD needs"):
        resolve("macd_26_12_9")
    with pytest.raises(ValueError, match="more than once"):
        FeaturesConfig(columns=("rsi_14", "rsi_14"))


def test_bars_in_any_row_order_give_the_same_features(bars):
    """Sorted by symbol but not by time (checked alongside the features), or not at all."""
    ordered = build_features(bars, EVERYTHING)
    backwards = bars.sort("symbol", "open_time", descending=[False, True])
    assert_frame_equal(build_features(backwards, EVERYTHING), ordered, check_exact=True)
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=11)
    assert_frame_equal(build_features(shuffled, EVERYTHING), ordered, check_exact=True)


def test_bad_input_is_a_schema_error(bars):
    with pytest.raises(SchemaError, match="repeat a"):
        build_features(pl.concat([bars, bars.head(3)]), CFG)
    with pytest.raises(SchemaError, match="repeat an open_time of BTCUSDT"):
        build_features(pl.concat([bars, bars.head(3)]).sort("symbol"), CFG)
    with pytest.raises(SchemaError, match="lacks column"):
        build_features(bars.drop("trades"), CFG)
    mixed = pl.concat([bars.head(50), bars.tail(50).with_columns(pl.lit("4h").alias("interval"))])
    with pytest.raises(SchemaError, match="mix intervals"):
        build_features(mixed, CFG)


def test_an_interval_the_caller_selected_skips_reading_it_and_changes_nothing(bars, everything):
    """The stage passes the interval it loaded; the result is the one read from the column."""
    given = build_features(bars.drop("interval"), EVERYTHING, load_funding_events(), interval="1h")
    assert_frame_equal(given, everything, check_exact=True)
    with pytest.raises(ConfigError, match="unknown interval '1x'"):
        build_features(bars, CFG, interval="1x")


def test_no_bars_give_an_empty_frame_with_every_column(bars):
    out = build_features(bars.clear(), CFG)
    assert out.height == 0 and out.columns == ["symbol", "open_time", *feature_names(CFG)]
