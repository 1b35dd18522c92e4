"""`run` for the features stage: gated `klines` (and optional `funding_rates`) in, `features` out."""

from __future__ import annotations

import logging

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.errors import QualityError
from quantlab.features.availability import leave_out
from quantlab.features.build import build_features
from quantlab.quality.gate import require_passed
from quantlab.quality.read import load_bars
from quantlab.schema import absent_columns

log = logging.getLogger(__name__)

# The config this stage reads, its fingerprint: the bars of the universe and the feature set;
# features.evaluate configures `quantlab features evaluate`, not these columns.
READS = ("universe", "features")
IGNORES = ("features.evaluate",)


def run(
    ctx: RunContext,
    klines: DatasetRef,
    checks: DatasetRef,
    funding: DatasetRef | None = None,
    funding_checks: DatasetRef | None = None,
) -> DatasetRef:
    """Compute `features` from a `klines` version that passed the gate in `checks`.

    With `funding` (a `funding_rates` version that passed the gate in `funding_checks`)
    the funding features are added; a symbol without funding rows gets nulls there.
    Features that read a column the bars' source lacks (null on every bar: freqtrade's
    klines have no quote volume, trades or taker volumes) are left out, never computed from
    nothing; a warning and the lineage (`left_out`: column -> what it lacks) say which.
    """
    universe = ctx.config.universe
    bars = load_bars(ctx, klines, checks)
    absent = absent_columns(bars)
    cfg, left_out = leave_out(ctx.config.features, absent)
    if left_out:
        log.warning(
            "features: left out %s for %s %s: its klines have no %s (the source lacks them)",
            ", ".join(left_out),
            universe.market,
            ",".join(universe.symbols),
            ", ".join(absent),
        )
    events = None
    inputs = [klines, checks]
    if funding is not None:
        if funding_checks is None:
            raise QualityError(
                f"{funding} was passed without its validation; run the validate stage on it "
                "and pass the funding_rates_checks version as funding_checks"
            )
        require_passed(ctx.catalog, funding, funding_checks)
        # Every earlier payment counts: the funding features' windows reach back before start.
        events = ctx.catalog.scan(funding).filter(pl.col("symbol").is_in(list(universe.symbols)))
        inputs += [funding, funding_checks]
    # load_bars keeps the configured interval only, so the bars need not be checked for it again.
    return ctx.catalog.write(
        "features",
        build_features(bars, cfg, events, interval=universe.interval),
        stage="features",
        inputs=inputs,
        config_hash=slice_hash(ctx.config, READS, IGNORES),
        extra={"absent_columns": list(absent), "left_out": left_out} if absent else None,
    )
