"""`run` for the labels stage: gated `klines` in, `labels` out."""

from __future__ import annotations

from quantlab.catalog import DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.labels.build import build_labels
from quantlab.quality.read import load_bars

# The config this stage reads, its fingerprint: the bars of the universe and the label rules.
READS = ("universe", "labels")


def run(ctx: RunContext, klines: DatasetRef, checks: DatasetRef) -> DatasetRef:
    """Compute `labels` from a `klines` version that passed the gate in `checks`."""
    cfg = ctx.config.labels
    bars = load_bars(ctx, klines, checks)
    return ctx.catalog.write(
        "labels",
        build_labels(bars, cfg),
        stage="labels",
        inputs=[klines, checks],
        config_hash=slice_hash(ctx.config, READS),
    )
