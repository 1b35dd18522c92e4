"""Real bars and filters for the session tests, with SYNTHETIC targets (a fixed on/off pattern,
not a model's): what a session trades is the point here, not whether the targets are good."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from engine_data import spot_exchange_info, spot_rules
from helpers import load_sample_klines
from quantlab.config import BacktestConfig, Config
from quantlab.execution.inputs import assets_of
from quantlab.execution.paper_venue import PaperVenue
from quantlab.execution.session import SessionInputs
from quantlab.portfolio.costs import CostModel

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
HOUR_MS = 3_600_000


def real_bars(months: tuple[str, ...] = ("2023-03",)) -> pl.DataFrame:
    cols = ["symbol", "open_time", "open", "high", "low", "close", "volume", "quote_volume"]
    return pl.concat([load_sample_klines(s, months).select(cols) for s in SYMBOLS]).sort(
        "symbol", "open_time"
    )


def synthetic_targets(bars: pl.DataFrame, period: int = 6) -> pl.DataFrame:
    """SYNTHETIC: BTC holds 0.3 for `period` bars, then 0; ETH 0.2 then 0.1, alternating."""
    times = bars.select("open_time").unique().sort("open_time").with_row_index("i")
    on = (pl.col("i") // period) % 2 == 0
    btc = times.select(
        pl.lit("BTCUSDT").alias("symbol"),
        "open_time",
        pl.when(on).then(0.3).otherwise(0.0).alias("target_weight"),
    )
    eth = times.select(
        pl.lit("ETHUSDT").alias("symbol"),
        "open_time",
        pl.when(on).then(0.2).otherwise(0.1).alias("target_weight"),
    )
    return pl.concat([btc, eth]).sort("symbol", "open_time")


def session_inputs(
    bars: pl.DataFrame, account: str = "paper", source: str = "targets@v1"
) -> SessionInputs:
    info = spot_exchange_info()
    targets = synthetic_targets(bars)
    scores = targets.select(
        "symbol",
        "open_time",
        pl.col("target_weight").alias("score"),
        pl.lit(None, pl.Int8).alias("class"),
    )
    return SessionInputs(
        account=account, bars=bars, targets=targets, scores=scores, rules=spot_rules(SYMBOLS),
        assets=assets_of(info, SYMBOLS, "spot"), source=source, interval_ms=HOUR_MS,
    )  # fmt: skip


def costs(config: Config | None = None) -> CostModel:
    cfg = config.backtest if config is not None else BacktestConfig()
    return CostModel.from_config(cfg, "spot", SYMBOLS)


def paper_venue(
    tmp: Path, inputs: SessionInputs, config: Config, name: str = "venue.sqlite"
) -> PaperVenue:
    cfg = config.paper
    return PaperVenue(
        f"sqlite:///{tmp / name}", inputs.account, inputs.bars, inputs.interval_ms, inputs.rules,
        inputs.assets, costs(config), cfg.max_participation, dict(cfg.initial_balances),
    )  # fmt: skip


def bar_times(inputs: SessionInputs) -> list[int]:
    return sorted(set(inputs.bars["open_time"].dt.epoch("ms").to_list()))
