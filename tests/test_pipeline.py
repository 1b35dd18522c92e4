"""The stage graph's rules: a stage off for a config, an absent input, latest inputs for one stage."""

from __future__ import annotations

from dataclasses import replace

import pytest

from helpers import write_config


def record(ctx, *inputs):
    """A stand-in stage `run`: hands on a version named after the inputs it was given."""
    from quantlab.catalog import DatasetRef

    return DatasetRef(" ".join(str(ref) for ref in inputs), 0)


@pytest.fixture
def ctx(tmp_path):
    from quantlab.context import RunContext

    return RunContext.load(write_config(tmp_path))


def test_funding_is_off_for_a_spot_universe_and_on_for_usd_m_with_funding_features(ctx):
    from quantlab.pipeline import STAGES

    funding = STAGES["funding"]
    assert not funding.when(ctx.config)
    usdm = ctx.config.model_copy(
        update={"universe": ctx.config.universe.model_copy(update={"market": "futures_um"})}
    )
    assert funding.when(usdm) == bool(usdm.features.funding)


def test_absent_inputs_turn_a_stage_off_unless_optional(ctx):
    from quantlab.catalog import DatasetRef
    from quantlab.pipeline import STAGES, run_stage

    k, c = DatasetRef("klines", 3), DatasetRef("klines_checks", 4)
    features = replace(STAGES["features"], call="test_pipeline:record")
    # Funding absent: passed on as None.
    out = run_stage(ctx, features, [k, c, None, None])
    assert out == DatasetRef("klines@v3 klines_checks@v4 None None", 0)
    gate = replace(STAGES["validate_funding"], call="test_pipeline:record")
    assert run_stage(ctx, gate, [None]) is None  # nothing to validate: not called
    assert run_stage(ctx, gate, [k]) == DatasetRef("klines@v3", 0)
    off = replace(STAGES["funding"], call="test_pipeline:record")
    assert run_stage(ctx, off, []) is None  # spot: not called


def test_one_stage_runs_on_the_latest_versions_or_names_the_stage_to_run_first(ctx):
    from quantlab.errors import DatasetNotFound
    from quantlab.pipeline import STAGES, latest_inputs

    with pytest.raises(DatasetNotFound, match="run `quantlab run ingest` first"):
        latest_inputs(ctx, STAGES["features"])
    import polars as pl

    from quantlab.catalog import DATASETS, Catalog, Dataset

    # Stand-ins for the inputs: only their versions matter here, not their rows.
    stand_ins = [Dataset(n, {"a": pl.Int64()}, "test") for n in ("klines", "klines_checks")]
    stand_ins.append(Dataset("funding_rates", {"a": pl.Int64()}, "test"))
    registry = DATASETS.with_datasets(*stand_ins)
    ctx = replace(ctx, catalog=Catalog(ctx.catalog.root, registry=registry))
    ctx.catalog.write("klines", pl.DataFrame({"a": [1]}), stage="ingest", config_hash="a")
    k = ctx.catalog.write("klines", pl.DataFrame({"a": [2]}), stage="ingest", config_hash="b")
    c = ctx.catalog.write("klines_checks", pl.DataFrame({"a": [1]}), stage="validate")
    # Spot: the funding inputs are off, whatever the catalog holds.
    ctx.catalog.write("funding_rates", pl.DataFrame({"a": [1]}), stage="ingest")
    assert latest_inputs(ctx, STAGES["features"]) == [k, c, None, None]
