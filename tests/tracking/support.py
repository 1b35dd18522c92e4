"""A small catalog whose features and labels record the klines version they came from, and
the MLflow reads the tracking tests share."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from helpers import load_sample_klines, write_config

MONTHS = ("2023-02", "2023-03")  # two months of two symbols: three folds train in seconds
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def lineage_catalog(tmp: Path, **overrides: dict):
    """(ctx, features, labels): klines upserted by `ingest`, features and labels built from
    that klines version and naming it as their input, as the pipeline writes them."""
    from quantlab.context import RunContext
    from quantlab.features import build_features
    from quantlab.labels import build_labels

    ctx = RunContext.load(write_config(tmp, **overrides))
    bars = pl.concat([load_sample_klines(s, MONTHS) for s in SYMBOLS])
    klines = ctx.catalog.upsert("klines", bars, stage="ingest")
    features = ctx.catalog.write(
        "features", build_features(bars, ctx.config.features), stage="features", inputs=[klines]
    )
    labels = ctx.catalog.write(
        "labels", build_labels(bars, ctx.config.labels), stage="labels", inputs=[klines]
    )
    return ctx, features, labels


def children(client, run) -> list:
    """The nested runs under `run`, by run name."""
    found = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    return sorted(found, key=lambda r: r.info.run_name)


def artifact_files(client, run_id: str, path: str | None = None) -> list[str]:
    """Every artifact file of `run_id`, recursively."""
    out = []
    for item in client.list_artifacts(run_id, path):
        out += artifact_files(client, run_id, item.path) if item.is_dir else [item.path]
    return out
