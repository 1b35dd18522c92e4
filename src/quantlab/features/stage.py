"""`run` for the features stage: gated `klines` (and optional `funding_rates`) in, `features` out."""

from __future__ import annotations

from quantlab.bars import load_bars
from quantlab.catalog import DatasetRef
from quantlab.config import config_hash
from quantlab.context import RunContext
from quantlab.features.build import build_features


def run(
    ctx: RunContext, klines: DatasetRef, checks: DatasetRef, funding: DatasetRef | None = None
) -> DatasetRef:
    """Compute `features` from a `klines` version that passed the gate in `checks`."""
    cfg = ctx.config.features
    bars = load_bars(ctx, klines, checks)
    events = ctx.catalog.scan(funding) if funding is not None else None
    inputs = [klines, checks, *([funding] if funding is not None else [])]
    # load_bars keeps the configured interval only, so the bars need not be checked for it again.
    interval = ctx.config.universe.interval
    return ctx.catalog.write(
        "features",
        build_features(bars, cfg, events, interval=interval),
        stage="features",
        inputs=inputs,
        config_hash=config_hash(cfg),
    )
