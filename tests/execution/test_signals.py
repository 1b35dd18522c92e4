"""`signals`: the champion's own predictions, sized by the risk stage's one function, and a
refusal when the catalog no longer holds the champion's predictions (it was rebuilt)."""

from __future__ import annotations

import polars as pl
import pytest

from quantlab.catalog import RiskRun
from quantlab.errors import DataError
from quantlab.execution import signals


def test_the_champion_s_signals_become_targets_that_name_it(served):
    ctx = served.ctx
    checks = ctx.catalog.latest("klines_checks")
    ref = signals.run(ctx, served.klines, checks)
    extra = ctx.catalog.extra(ref, RiskRun)
    champion = served.registry.champion(ctx.config.train.register_as)
    assert extra.champion_run_id == champion.meta("run_id")
    assert signals.predictions_of(ctx, ref) == served.predictions
    targets = ctx.catalog.read(ref)
    newest = ctx.catalog.read(served.predictions)["open_time"].max()
    assert targets["open_time"].max() == newest and (targets["fold"] == -1).all()
    assert targets.filter(pl.col("target_weight").is_null()).height == 0


def test_a_champion_whose_predictions_this_catalog_lost_is_refused(served, monkeypatch):
    ctx = served.ctx
    champion = served.registry.champion(ctx.config.train.register_as)
    real_meta = type(champion).meta

    def elsewhere(self, key, default=None):  # as if trained on a catalog since rebuilt
        return "another-run" if key == "run_id" else real_meta(self, key, default)

    monkeypatch.setattr(type(champion), "meta", elsewhere)
    with pytest.raises(DataError, match="does not hold its predictions"):
        signals.run(ctx, served.klines, ctx.catalog.latest("klines_checks"))
