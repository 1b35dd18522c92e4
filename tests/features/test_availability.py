"""Features on bars whose source lacks quote volume, trades and taker volumes (freqtrade):
the features reading them are left out, and the run says so, never computed from zeros."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import polars as pl

from helpers import ROOT, write_config
from quantlab import features, ingest, quality
from quantlab.config import FeaturesConfig
from quantlab.context import RunContext
from quantlab.features import resolve
from quantlab.features.availability import leave_out, optional_reads
from quantlab.features.timeframes import resample
from quantlab.schema import SOURCE_OPTIONAL

NEEDY = {
    "vwap_dist_24": ["quote_volume"],
    "taker_buy_ratio_24": ["taker_buy_base_volume"],
    "trades_z_24": ["trades"],
}


def test_what_a_feature_reads_comes_from_its_expression():
    assert optional_reads(resolve("vwap_dist_24")) == ("quote_volume",)
    assert optional_reads(resolve("taker_buy_ratio")) == ("taker_buy_base_volume",)
    assert optional_reads(resolve("trades_z_168")) == ("trades",)
    for name in ("rsi_14", "volume_z_24", "obv_flow_24", "mfi_14", "regime"):
        assert optional_reads(resolve(name)) == (), name


def test_leave_out_drops_the_features_and_what_is_built_on_them():
    cfg = FeaturesConfig().model_copy(
        update={
            "timeframes": {"4h": ("logret_1", "trades_z_24")},
            "cross_section": FeaturesConfig().cross_section.model_copy(
                update={"rank": ("logret_24", "vwap_dist_24")}
            ),
        }
    )
    reduced, out = leave_out(cfg, SOURCE_OPTIONAL)
    assert out == {
        **NEEDY,
        "trades_z_24_4h": ["trades"],
        "cs_rank_vwap_dist_24": ["quote_volume"],
    }
    assert not set(NEEDY) & set(reduced.columns)
    assert len(reduced.columns) == len(cfg.columns) - 3
    assert reduced.timeframes == {"4h": ("logret_1",)}
    assert reduced.cross_section.rank == ("logret_24",)
    assert leave_out(cfg, ()) == (cfg, {})
    # Only what reads the absent column goes.
    assert leave_out(cfg, ("trades",))[1] == {
        "trades_z_24": ["trades"],
        "trades_z_24_4h": ["trades"],
    }


def test_higher_timeframe_bars_keep_an_absent_column_null():
    bars = pl.DataFrame(
        {
            "open_time": pl.datetime_range(
                pl.datetime(2024, 1, 1, time_zone="UTC"),
                pl.datetime(2024, 1, 1, 7, time_zone="UTC"),
                timedelta(hours=1),
                eager=True,
            ).dt.cast_time_unit("ms"),
            **{c: [1.0] * 8 for c in ("open", "high", "low", "close", "volume")},
            "quote_volume": pl.Series([None] * 8, dtype=pl.Float64),
            "trades": pl.Series([None] * 8, dtype=pl.Int64),
            "taker_buy_base_volume": pl.Series([None] * 8, dtype=pl.Float64),
            "taker_buy_quote_volume": pl.Series([None] * 8, dtype=pl.Float64),
        }
    )
    out = resample(bars.lazy(), "4h", 4).collect()
    assert out["volume"].to_list() == [4.0, 4.0]
    for c in SOURCE_OPTIONAL:
        assert out[c].null_count() == 2, c


def test_the_stage_leaves_them_out_on_freqtrade_bars_and_says_so(tmp_path: Path, caplog):
    cfg = write_config(
        tmp_path,
        universe={"market": "futures_um", "start": "2024-01-01", "end": "2024-02-01"},
        exchange={"source": "freqtrade", "freqtrade_root": str(ROOT / "data" / "freqtrade")},
    )
    ctx = RunContext.load(cfg)
    assert set(NEEDY) <= set(ctx.config.features.columns)  # the default set asks for them
    klines = ingest.run(ctx)
    checks = quality.run(ctx, klines, data_docs=False)
    with caplog.at_level(logging.WARNING, logger="quantlab.features.stage"):
        ref = features.run(ctx, klines, checks)
    frame = ctx.catalog.read(ref)
    assert not set(NEEDY) & set(frame.columns)
    assert {"rsi_14", "volume_z_24", "mfi_14"} <= set(frame.columns)
    extra = ctx.catalog.lineage(ref).extra
    assert extra["left_out"] == NEEDY
    assert extra["absent_columns"] == list(SOURCE_OPTIONAL)
    (line,) = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert "vwap_dist_24, taker_buy_ratio_24, trades_z_24" in line and "quote_volume" in line
