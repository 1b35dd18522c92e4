"""The regime stage end to end on a temporary catalog and MLflow store: one challenger per
symbol with the tags serving and the gate read, `regime_predictions` naming them, the core's
gate making the first versions champion, and a rerun on the same inputs reusing everything."""

from __future__ import annotations

import json

import pytest

from helpers import write_config
from quantlab.vocab import REGIMES
from regime.conftest import HORIZON, RULES

SYMBOLS = ("BTCUSDT", "ETHUSDT")
NAMES = {s: f"qr-{s}" for s in SYMBOLS}


@pytest.fixture(scope="module")
def staged(tmp_path_factory, tables):
    from quantlab.context import RunContext
    from quantlab.regime import run

    tmp = tmp_path_factory.mktemp("regime")
    ctx = RunContext.load(
        write_config(
            tmp,
            universe={"symbols": list(SYMBOLS), "start": "2024-01-01", "end": "2024-04-01"},
            labels={"horizon": 4, "regime": {"horizon": HORIZON, "rules": RULES}},
            train={"folds": 3, "early_stopping_rounds": 10},
            lifecycle={"regime": {"register_as": "qr", "trials": 2, "num_boost_round": 30}},
        )
    )
    feats, labels = tables
    f = ctx.catalog.write("features", feats, stage="features")
    lab = ctx.catalog.write("labels", labels, stage="labels")
    return ctx, f, lab, run(ctx, f, lab)


def test_one_challenger_per_symbol_with_the_tags_serving_and_the_gate_read(staged):
    from quantlab.lifecycle.promote import registry

    ctx, f, lab, ref = staged
    registered = ctx.catalog.lineage(ref).extra["registered"]
    assert registered == {name: 1 for name in NAMES.values()}
    reg = registry(ctx)
    columns = [
        c for c in ctx.catalog.scan(f).collect_schema().names() if c not in ("symbol", "open_time")
    ]
    for symbol, name in NAMES.items():
        v = reg.version(name, 1)
        assert reg.challenger(name).version == 1 and reg.champion(name) is None
        assert v.meta("family") == "regime" and v.meta("kind") == "lightgbm"
        assert v.meta("task") == "multiclass" and v.meta("target") == "regime"
        assert v.meta_json("columns") == columns
        assert v.meta_json("symbols") == [symbol] and v.meta("symbol") == symbol
        assert v.meta_json("classes") == list(REGIMES)
        assert int(v.meta("rounds")) >= 1 and v.meta("mode") == "full"
        assert {"features": f.version, "labels": lab.version}.items() <= v.meta_json(
            "inputs"
        ).items()
        assert v.meta("oos") == f"regime_predictions@{ref.version}" and v.meta("oos_model") == name
        assert v.meta("run_id") == v.run_id and v.meta("config_hash")
        assert v.meta("train_end") and v.meta("code_version") is not None


def test_the_predictions_are_the_registered_models_own(staged):
    import polars as pl

    ctx, _, _, ref = staged
    preds = ctx.catalog.read(ref)
    assert set(preds["model"]) == set(NAMES.values())
    for symbol, name in NAMES.items():
        rows = preds.filter(pl.col("symbol") == symbol)
        assert (rows["model"] == name).all()
        assert rows.filter(pl.col("fold") == -1).height == HORIZON
        assert rows.filter(pl.col("fold") >= 0).height > 500  # enough for the gate's rows
    folds = ctx.catalog.lineage(ref).extra["fold_metrics"]
    assert {(r["symbol"], r["fold"]) for r in folds} == {(s, k) for s in SYMBOLS for k in range(3)}


def test_the_gate_makes_each_first_version_champion_and_a_rerun_reuses_it(staged):
    from quantlab.lifecycle.promote import judge_all, regime_candidates, registry
    from quantlab.regime import run

    ctx, f, lab, ref = staged
    candidates = regime_candidates(ctx, ref)
    assert sorted(c.ref.name for c in candidates) == sorted(NAMES.values())
    decisions = judge_all(ctx, candidates, lab, [ref, lab])
    rows = ctx.catalog.read(decisions)
    assert sorted(rows["model"]) == sorted(NAMES.values())
    assert set(rows["decision"]) == {"first"} and set(rows["metric"]) == {"logloss"}
    assert (rows["challenger_value"] > 0).all() and (rows["common_rows"] > 500).all()
    reg = registry(ctx)
    for name in NAMES.values():
        assert reg.champion(name).version == 1
        assert json.loads(reg.version(name, 1).tags["gate.checks"])
    # Same inputs, config and code: nothing trained, registered or written again.
    assert run(ctx, f, lab) == ref
    for name in NAMES.values():
        assert [v.version for v in reg.versions(name)] == [1]
    assert regime_candidates(ctx, ref)[0].ref.tags.get("gate.decision") == "first"


def test_the_stage_is_off_without_regime_labels(tmp_path, staged):
    from quantlab.context import RunContext
    from quantlab.regime import run

    _, f, lab, _ = staged
    off = RunContext.load(write_config(tmp_path, lifecycle={"regime": {"enabled": False}}))
    assert run(off, f, lab) is None
    none = RunContext.load(write_config(tmp_path, labels={"regime": None}))
    assert run(none, f, lab) is None
