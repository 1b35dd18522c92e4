"""The features stage on catalog versions: gated klines and gated funding_rates in, `features` out.

Real data: BTC and ETH spot 1h klines of the shipped sample, and the sample's real
BTCUSDT USD-M funding (data/sample/api/fundingRate/BTCUSDT.json). ETH has no funding
rows, so its funding features are null.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from helpers import SAMPLE, load_sample_klines, write_config
from quantlab.errors import QualityError

MONTHS = ("2023-01", "2023-02", "2023-03", "2023-04")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """One catalog for the module: validating costs seconds, and no test changes what is stored."""
    from quantlab.context import RunContext

    return RunContext.load(write_config(tmp_path_factory.mktemp("stage")))


@pytest.fixture(scope="module")
def stored(ctx):
    """klines and funding_rates versions in the catalog, each with a passed validation."""
    from quantlab import quality
    from quantlab.exchange.funding import parse_funding_rates
    from quantlab.schema import FUNDING_RATES_KEY, KLINES_KEY, conform_klines

    bars = pl.concat([load_sample_klines(s, MONTHS) for s in ("BTCUSDT", "ETHUSDT")])
    klines = ctx.catalog.upsert("klines", conform_klines(bars), KLINES_KEY, stage="ingest")
    records = json.loads((SAMPLE / "api" / "fundingRate" / "BTCUSDT.json").read_text())
    paid = parse_funding_rates(records, "BTCUSDT")
    # What ingest would have stored by the universe's end: every payment before it.
    paid = paid.filter(pl.col("funding_time") < pl.datetime(2023, 5, 1, time_zone="UTC"))
    funding = ctx.catalog.upsert("funding_rates", paid, FUNDING_RATES_KEY, stage="ingest")
    return (
        paid,
        klines,
        quality.run(ctx, klines),
        funding,
        quality.run(ctx, funding),
    )


def test_funding_features_come_from_the_gated_funding_version(ctx, stored):
    from quantlab import features
    from quantlab.quality.read import load_bars

    paid, klines, checks, funding, funding_checks = stored
    ref = features.run(ctx, klines, checks, funding, funding_checks)

    out = ctx.catalog.read(ref).sort("symbol", "open_time")
    names = features.feature_names(ctx.config.features, funding=True)
    assert out.columns == ["symbol", "open_time", *names]
    lineage = ctx.catalog.lineage(ref)
    assert lineage.inputs == {
        "klines": klines.version,
        "klines_checks": checks.version,
        "funding_rates": funding.version,
        "funding_rates_checks": funding_checks.version,
    }
    # The same numbers as the core on the same inputs: the stage only loads and writes.
    gated = load_bars(ctx, klines, checks).collect()
    direct = features.build_features(gated, ctx.config.features, paid)
    assert_frame_equal(out, direct.sort("symbol", "open_time"), check_exact=True)

    funding_cols = [f for f in names if f.startswith("funding_")]
    assert funding_cols == ["funding_rate", "funding_mean_21", "funding_z_90"]
    btc, eth = (out.filter(pl.col("symbol") == s) for s in ("BTCUSDT", "ETHUSDT"))
    # Payments since 2022-11 fill even the 90-payment window by the universe's start.
    assert btc.select(pl.col(funding_cols).null_count()).row(0) == (0, 0, 0)
    assert eth.height > 0
    assert eth.select(pl.col(funding_cols).is_null().all()).row(0) == (True, True, True)
    # The rate paid at 2023-03-01 00:00 (+ ms jitter) is the one seen by that day's 00:00 bar.
    paid_at = paid.filter(pl.col("funding_time") >= pl.datetime(2023, 3, 1, time_zone="UTC"))
    bar = btc.filter(pl.col("open_time") == pl.datetime(2023, 3, 1, time_zone="UTC"))
    assert bar["funding_rate"][0] == paid_at["funding_rate"][0]


def test_funding_without_a_passed_validation_is_refused(ctx, stored):
    from quantlab import features

    _, klines, checks, funding, _ = stored
    with pytest.raises(QualityError, match="without its validation"):
        features.run(ctx, klines, checks, funding)
    with pytest.raises(QualityError, match="is not a validation of funding_rates"):
        features.run(ctx, klines, checks, funding, checks)


def test_without_funding_the_stage_writes_no_funding_columns(ctx, stored):
    from quantlab import features

    _, klines, checks, _, _ = stored
    ref = features.run(ctx, klines, checks)
    assert not [c for c in ctx.catalog.read(ref).columns if c.startswith("funding_")]
    assert set(ctx.catalog.lineage(ref).inputs) == {
        "klines",
        "klines_checks",
    }
