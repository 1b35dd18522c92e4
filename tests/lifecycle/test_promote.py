"""The gate on real trainings: the first model becomes champion, a worse second training stays
challenger and says why on the version and in `model_decisions`, a person's override and a
rollback are recorded as such, and nothing is decided twice."""

from __future__ import annotations

import json

import polars as pl
import pytest

from helpers import write_config
from quantlab.cli import main
from quantlab.features import build_features
from quantlab.lifecycle.promote import registry as promote_registry
from tracking.support import lineage_catalog

NAME = "gate-test"
# Two features instead of the default set: a deterministic, weaker model on the same folds.
WEAK = {
    "columns": ["logret_1", "range_hl"],
    "timeframes": {},
    "normalize": {"columns": []},
    "cross_section": {"rank": [], "zscore": []},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two trainings on the same labels (the default features, then WEAK), each judged."""
    from quantlab.context import RunContext
    from quantlab.lifecycle import promote
    from quantlab.train import run as train

    tmp = tmp_path_factory.mktemp("gate")
    ctx, features, labels = lineage_catalog(tmp, train={"register_as": NAME, "trials": 2})
    first = train(ctx, features, labels)
    decided_first = promote.run(ctx, first, labels)
    weak_ctx = RunContext.load(
        write_config(tmp, train={"register_as": NAME, "trials": 2}, features=WEAK)
    )
    klines = ctx.catalog.latest("klines")
    bars = ctx.catalog.read(klines)
    weak_features = weak_ctx.catalog.write(
        "features",
        build_features(bars, weak_ctx.config.features),
        stage="features",
        inputs=[klines],
        config_hash="weak",  # the features stage fingerprints its config: another feature set
    )
    second = train(weak_ctx, weak_features, labels)
    decided_second = promote.run(weak_ctx, second, labels)
    return weak_ctx, first, second, labels, decided_first, decided_second


def test_the_first_model_is_champion_and_the_weaker_one_stays_challenger(trained):
    ctx, first, _, _, _, decided = trained
    reg = promote_registry(ctx)
    champion, challenger = reg.champion(NAME), reg.challenger(NAME)
    assert (champion.version, challenger.version) == (1, 2)
    assert champion.tags["gate.decision"] == "first"
    # The gate put the champion's files where serving reads them: a first predict is local.
    cached = sorted(p.name for p in (ctx.config.paths.data / "serving" / NAME).iterdir())
    assert [c.split("-")[0] for c in cached if not c.startswith(".")] == ["1"]
    t = challenger.tags
    assert t["gate.decision"] == "kept" and t["gate.champion_version"] == "1"
    # The numbers that decided it, and the rows they were computed on: both models' out-of-fold
    # rows of the same labels (the same folds, since both trained on the same span).
    ours, theirs = float(t["gate.challenger_value"]), float(t["gate.champion_value"])
    assert (
        ours < theirs and f"{ours:.4f}" in t["gate.reason"] and f"{theirs:.4f}" in t["gate.reason"]
    )
    oof = ctx.catalog.read(first).filter(pl.col("fold") >= 0).height
    assert int(t["gate.common_rows"]) == oof
    rows = ctx.catalog.read(decided).sort("version")
    assert rows["decision"].to_list() == ["first", "kept"]
    assert rows["reason"][1] == t["gate.reason"]


def test_each_version_knows_what_it_was_trained_on_and_where_its_scores_are(trained):
    from quantlab.lifecycle.promote import registry

    ctx, _, second, labels, _, _ = trained
    ref = registry(ctx).version(NAME, 2)
    assert ref.meta("oos") == f"predictions@{second.version}"
    inputs = ref.meta_json("inputs")
    assert inputs["labels"] == labels.version
    assert inputs["features"] == ctx.catalog.latest("features").version == 1  # the weak set
    assert inputs["klines"] == ctx.catalog.latest("klines").version
    assert (
        ref.meta("code_version")
        and ref.meta("run_id") == ctx.catalog.lineage(second).extra["mlflow_run_id"]
    )
    assert ref.uri == f"models:/{NAME}/2"


def test_a_rerun_of_the_gate_decides_nothing_again(trained):
    from quantlab.lifecycle import promote

    ctx, _, second, labels, _, decided = trained
    assert promote.run(ctx, second, labels) == decided


def test_override_and_rollback_from_the_cli_are_recorded(trained, capsys):
    from quantlab.lifecycle.promote import registry

    ctx, *_ = trained
    config = str(ctx.config.paths.data.parent / "config.yaml")
    assert (
        main(["--config", config, "model", "promote", "2", "--name", NAME, "--reason", "a test"])
        == 0
    )
    assert "override by person" in capsys.readouterr().out
    reg = registry(ctx)
    assert reg.champion(NAME).version == 2
    assert reg.champion(NAME).tags["override"] == "a test"
    assert main(["--config", config, "model", "rollback", "--name", NAME]) == 0
    assert reg.champion(NAME).version == 1
    assert main(["--config", config, "model", "list", "--json", "--name", NAME]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])["models"]
    assert [(m["version"], m["aliases"]) for m in listed] == [(1, ["champion"]), (2, [])]
    decisions = ctx.catalog.read(ctx.catalog.latest("model_decisions")).sort("decided_at")
    assert decisions["decision"].to_list() == ["first", "kept", "override", "rollback"]
    assert decisions["by"][2].startswith("person")
    # Nothing to roll back to now: an error that says what to do, exit 2.
    assert main(["--config", config, "model", "rollback", "--name", NAME]) == 2
    assert "quantlab model promote VERSION" in capsys.readouterr().err
