"""A trained, judged catalog to serve from (`build_served`, the session fixture `served` of
tests/conftest.py, which tests/serving and tests/cli share): real BTC and ETH spot 1h bars of
January to June 2023 from the shipped sample, validated, features and labels built by their stages, the main
model trained (3 folds, 1 trial, 20 rounds) and the per-symbol regime models by their stage
(1 trial, 20 rounds), each made champion by the promote stage.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import polars as pl

from helpers import load_sample_klines, write_config

SYMBOLS = ("BTCUSDT", "ETHUSDT")
MONTHS = tuple(f"2023-{m:02d}" for m in range(1, 7))
MAIN = "quantlab-research"
REGIME = "quantlab-regime"


def register_booster(ctx, name: str, booster, meta: dict):
    """Log a LightGBM booster in a run of its own and register it as `name` with `meta`."""
    import mlflow

    from quantlab.tracking import start_experiment
    from quantlab.tracking.models import log_booster
    from quantlab.tracking.registry import registry_for

    columns = json.loads(meta["columns"])
    example = pl.DataFrame(np.zeros((2, len(columns))), schema=columns, orient="row")
    # The configured artifact folder, not MLflow's default ./mlruns in the working directory.
    experiment = start_experiment(ctx.config.tracking, "serving-tests")
    with mlflow.start_run(experiment_id=experiment) as run:
        info = log_booster(
            "lightgbm", booster, name="model", example=example, output=booster.predict(example)
        )
    registry = registry_for(ctx.config.tracking.uri)
    return registry.register(
        name, info.model_uri, run.info.run_id, meta | {"run_id": run.info.run_id}
    )


def build_served(tmp):
    from quantlab import features, labels, quality, regime, train
    from quantlab.context import RunContext
    from quantlab.lifecycle import promote
    from quantlab.schema import KLINES_KEY, conform_klines
    from quantlab.tracking.registry import registry_for

    config = write_config(
        tmp,
        universe={"symbols": list(SYMBOLS), "start": "2023-01-01", "end": "2023-07-01"},
        # Without the daily features the newest bar needs ~2,300 bars (EMA200 settling), so
        # half a year is a real cut and trains in half the time a year would.
        features={"timeframes": {"4h": ["logret_1", "rsi_14"]}},
        train={"register_as": MAIN, "folds": 3, "trials": 1, "num_boost_round": 20},
        lifecycle={"regime": {"register_as": REGIME, "trials": 1, "num_boost_round": 20}},
    )
    ctx = RunContext.load(config)
    bars = pl.concat([load_sample_klines(s, MONTHS) for s in SYMBOLS])
    klines = ctx.catalog.upsert("klines", conform_klines(bars), KLINES_KEY, stage="ingest")
    checks = quality.run(ctx, klines)
    feats = features.run(ctx, klines, checks)
    labs = labels.run(ctx, klines, checks)
    predictions = train.run(ctx, feats, labs)
    regimes = regime.run(ctx, feats, labs)  # the real per-symbol regime models
    promote.run(ctx, predictions, labs, None, regimes)  # the gate makes each first one champion
    registry = registry_for(ctx.config.tracking.uri)
    return SimpleNamespace(
        ctx=ctx,
        config=config,
        registry=registry,
        bars=bars,
        klines=klines,
        features=feats,
        labels=labs,
        predictions=predictions,
    )
