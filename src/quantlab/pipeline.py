"""The research pipeline without Airflow: the same stages, in the same order, for the CLI and notebooks."""

from __future__ import annotations

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext


def run_research(ctx: RunContext) -> dict[str, DatasetRef]:
    """Run every research stage once and return the version each one produced."""
    from quantlab import backtest, features, ingest, labels, paper, quality, risk, train

    out: dict[str, DatasetRef] = {}
    out["klines"] = k = ingest.run(ctx)
    out["klines_checks"] = c = quality.run(ctx, k)
    # Perpetuals only: None for a spot universe, and then no funding features.
    fr, fc = ingest.run_universe_funding(ctx), None
    if fr is not None:
        out["funding_rates"] = fr
        out["funding_rates_checks"] = fc = quality.run(ctx, fr)
    out["features"] = f = features.run(ctx, k, c, fr, fc)
    out["labels"] = lab = labels.run(ctx, k, c)
    out["predictions"] = p = train.run(ctx, f, lab)
    out["backtest"] = b = backtest.run(ctx, p, k, c)
    out["targets"] = t = risk.run(ctx, p, k, c, b)
    out["paper_orders"] = paper.run(ctx, t, k)
    return out
