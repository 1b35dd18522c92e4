"""Typed lineage facts: what stages read from each other's lineage, through one model each."""

from __future__ import annotations

import polars as pl
import pytest

from quantlab.catalog import BacktestRun, Catalog, GateVerdict, RiskRun, TrainingRun
from quantlab.errors import SchemaError
from quantlab.schema import UTC_MS

STATS = {
    "sharpe": 0.2,
    "max_drawdown": -0.1471,
    "total_return": 0.0239,
    "trades": 686,
    "sortino": None,
}


@pytest.fixture
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


def _equity() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "open_time": [0, 3_600_000],
            "equity": [1.0, 1.01],
            "cash": [1.0, 0.5],
            "gross_exposure": [0.0, 0.51],
            "net_exposure": [0.0, 0.51],
            "returns": [0.0, 0.01],
            "gross_pnl": [0.0, 0.0101],
            "fees": [0.0, 0.0001],
            "slippage": [0.0, 0.0],
            "funding": [0.0, 0.0],
            "drawdown": [0.0, 0.0],
        }
    ).with_columns(pl.col("open_time").cast(UTC_MS))


def test_backtest_stats_round_trip_and_keep_the_stored_json_shape(catalog):
    ref = catalog.write("backtest", _equity(), stage="backtest", extra={"stats": STATS})
    run = catalog.extra(ref, BacktestRun)
    assert (run.stats.sharpe, run.stats.max_drawdown, run.stats.trades) == (0.2, -0.1471, 686)
    assert run.stats.model_extra == {"sortino": None}  # figures no reader names are kept
    assert catalog.lineage(ref).extra == {"stats": STATS}  # old readers and old versions agree


def test_training_run_and_kill_switch_read_from_a_lineage(catalog):
    folds = [
        {"fold": 0, "auc": 0.51, "logloss": 0.69, "rank_ic": 0.02, "train_rows": 9, "test_rows": 3}
    ]
    preds = pl.DataFrame(
        {
            "symbol": ["BTCUSDT"],
            "open_time": [0],
            "model": ["lightgbm"],
            "fold": [0],
            "prob_up": [0.5],
            "prob_down": [None],  # filled by 3-class targets only
            "prob_flat": [None],
            "pred_ret": [None],  # filled by regression only
            "score": [0.0],
        },
        schema_overrides={
            "open_time": UTC_MS,
            "fold": pl.Int32,
            **dict.fromkeys(("prob_down", "prob_flat", "pred_ret"), pl.Float64),
        },
    )
    extra = {"mlflow_run_id": "abc", "mlflow_experiment": "quantlab", "fold_metrics": folds}
    ref = catalog.write("predictions", preds, stage="train", extra=extra)
    run = TrainingRun.of(catalog.lineage(ref))
    assert run.mlflow_run_id == "abc" and run.fold_metrics[0].auc == 0.51
    assert run.fold_metrics[0].model == "lightgbm"  # lineage from before train.models
    assert RiskRun.of(catalog.lineage(ref)) == RiskRun()  # absent keys read as defaults


def test_an_extra_that_does_not_fit_its_model_is_refused_at_write(catalog):
    with pytest.raises(SchemaError, match="does not read as BacktestRun"):
        catalog.write("backtest", _equity(), stage="backtest", extra={"stats": {"trades": "many"}})
    assert not catalog.exists("backtest")


def test_reading_an_extra_as_another_model_is_an_error(catalog):
    ref = catalog.write("backtest", _equity(), stage="backtest", extra={"stats": STATS})
    with pytest.raises(SchemaError, match="declared as BacktestRun, not GateVerdict"):
        catalog.extra(ref, GateVerdict)
