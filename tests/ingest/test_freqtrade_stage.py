"""configs/usdm.yaml: the research stages read the shipped freqtrade folder (klines, mark
klines, funding) and the replay exchange's USD-M exchangeInfo, offline."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from helpers import ROOT
from quantlab import ingest, quality
from quantlab.catalog import GateVerdict
from quantlab.context import RunContext
from quantlab.features import resolve
from quantlab.pipeline import uses_funding


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch) -> RunContext:
    monkeypatch.setenv("QUANTLAB_HOME", str(tmp_path))
    cfg = tmp_path / "usdm-short.yaml"
    cfg.write_text(
        f"extends: {ROOT / 'configs' / 'usdm.yaml'}\n"
        "universe: {start: 2024-03-01, end: 2024-03-08}\n"
        f"tracking: {{uri: 'sqlite:///{tmp_path}/mlflow.db', artifacts: '{tmp_path}/artifacts'}}\n"
    )
    return RunContext.load(cfg)


def test_the_usdm_config(ctx):
    cfg = ctx.config
    assert cfg.universe.market == "futures_um"
    assert cfg.universe.symbols == ("BTCUSDT", "ETHUSDT")
    assert cfg.exchange.source == "freqtrade"
    assert cfg.exchange.freqtrade_root == ROOT / "data" / "freqtrade"
    assert cfg.signal.allow_short and uses_funding(cfg)
    assert not {"vwap_dist_24", "taker_buy_ratio_24", "trades_z_24"} & set(cfg.features.columns)


def test_ingest_writes_klines_and_gated_mark_klines(ctx):
    klines = ingest.run(ctx)
    bars = ctx.catalog.read(klines)
    assert bars.height == 2 * 7 * 24 and set(bars["market"]) == {"futures_um"}
    mark = quality.load_mark(ctx)
    assert mark is not None
    mark = mark.collect()
    assert mark.height == bars.height
    checks = ctx.catalog.latest("mark_klines_checks")
    assert GateVerdict.of(ctx.catalog.lineage(checks)).passed
    # The last price and the mark stay within a few basis points of each other.
    both = bars.join(mark, on=["symbol", "open_time"], suffix="_mark")
    assert ((both["close"] / both["close_mark"] - 1).abs() < 0.005).all()


def test_funding_comes_from_the_freqtrade_files_with_its_warm_up(ctx):
    ref = ingest.run_universe_funding(ctx)
    assert ref is not None
    rates = ctx.catalog.read(ref)
    start = datetime(2024, 3, 1, tzinfo=UTC)
    # The funding features' warm-up is there: as many payments per symbol before the start.
    warmup = max(resolve(n, ctx.config.features).warmup for n in ctx.config.features.funding)
    before = rates.filter(pl.col("funding_time") < start).group_by("symbol").len()
    assert before["len"].min() > warmup
    assert rates.filter(pl.col("funding_time") >= start).height == 2 * 7 * 3
    assert rates["mark_price"].null_count() == 0
    checks = quality.run(ctx, ref, data_docs=False)  # raises QualityError on a failed gate
    assert GateVerdict.of(ctx.catalog.lineage(checks)).passed


def test_exchange_info_for_usdm_comes_from_the_replay_exchange_offline(ctx):
    report = ingest.run_exchange_info(ctx, "futures_um", ["BTCUSDT", "ETHUSDT"])
    info = ctx.catalog.read(report.ref).sort("symbol")
    assert info["symbol"].to_list() == ["BTCUSDT", "ETHUSDT"]
    assert set(info["market"]) == {"futures_um"}
    assert (info["tick_size"] > 0).all() and (info["step_size"] > 0).all()
    assert info["min_notional"].to_list() == [100.0, 20.0]  # USD-M MIN_NOTIONAL, 2024-10
