"""Each stage's fingerprint covers the config it reads, and nothing it does not.

The research pipeline runs three times on one catalog and ledger (real sample data):
first on BTC, ETH and SOL; then with only a report knob and the MLflow experiment changed,
which must reuse every version; then with SOL dropped from the universe, which must write
new versions from features to paper_orders, and paper must no longer trade SOL.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from helpers import write_config
from quantlab.config.portfolio import FeesConfig

UNIVERSE = {"symbols": ["BTCUSDT", "ETHUSDT", "SOLUSDT"]}
RESEARCH = ("features", "labels", "predictions", "backtest", "targets", "paper_orders")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from quantlab.context import RunContext
    from quantlab.pipeline import run_research

    tmp = tmp_path_factory.mktemp("fingerprints")

    def research(**overrides: dict) -> tuple[RunContext, dict]:
        ctx = RunContext.load(write_config(tmp, **overrides))
        return ctx, run_research(ctx)

    first = research(universe=UNIVERSE)
    # Report-only: how many features the evaluation report plots; tracking: where MLflow logs.
    report_only = research(
        universe=UNIVERSE,
        features={"evaluate": {"top": 3}},
        train={"experiment": "renamed"},
    )
    dropped = research(universe={"symbols": ["BTCUSDT", "ETHUSDT"]})
    return first, report_only, dropped


def test_a_report_or_tracking_edit_reuses_every_version(runs):
    (_, first), (_, again), _ = runs
    assert {n: again[n] for n in RESEARCH} == {n: first[n] for n in RESEARCH}


def test_feature_importance_moves_with_predictions(runs):
    """Train's second dataset: reused by the report-only run, rewritten with the universe."""
    (ctx, _), _, (_, dropped) = runs
    importance = ctx.catalog.latest("feature_importance")
    assert len(ctx.catalog.versions("feature_importance")) == 2  # first and dropped
    assert (
        ctx.catalog.lineage(importance).fingerprint
        == ctx.catalog.lineage(dropped["predictions"]).fingerprint
    )


def test_a_universe_edit_writes_new_versions_downstream(runs):
    (_, first), _, (_, dropped) = runs
    for name in RESEARCH:
        assert dropped[name].version > first[name].version, name


def test_paper_no_longer_trades_a_symbol_that_left_the_universe(runs):
    (ctx, first), _, (_, dropped) = runs
    before = ctx.catalog.read(first["targets"])["symbol"].unique().sort().to_list()
    assert before == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    for name in ("features", "labels", "predictions", "targets"):
        symbols = ctx.catalog.read(dropped[name])["symbol"].unique().to_list()
        assert "SOLUSDT" not in symbols, name
    orders = ctx.catalog.read(dropped["paper_orders"])
    assert orders.filter(pl.col("symbol") == "SOLUSDT").height == 0


# Stage -> the module declaring what it reads (READS, and IGNORES where some of it is not hashed).
STAGES = {
    "features": "quantlab.features.stage",
    "labels": "quantlab.labels.stage",
    "train": "quantlab.train.stage",
    "backtest": "quantlab.backtest.stage",
    "risk": "quantlab.risk.stage",
    "paper": "quantlab.execution.stage",
    "evaluate": "quantlab.features.evaluate",
    "validate": "quantlab.quality.stage",
}


def _hashes(cfg) -> dict[str, str]:
    import importlib

    from quantlab.config import slice_hash

    out = {}
    for stage, module in STAGES.items():
        mod = importlib.import_module(module)
        out[stage] = slice_hash(cfg, mod.READS, getattr(mod, "IGNORES", ()))
    return out


def _edit(cfg, section: str, **values):
    attr = "validate_" if section == "validate" else section
    return cfg.model_copy(update={attr: getattr(cfg, attr).model_copy(update=values)})


@pytest.mark.parametrize(
    ("section", "values", "changed"),
    [
        # Every stage that loads bars reads the whole universe; train codes the pooled model's
        # symbol feature by its place in universe.symbols.
        (
            "universe",
            {"symbols": ("BTCUSDT",)},
            {"features", "labels", "backtest", "risk", "train", "paper"},
        ),
        (
            "universe",
            {"start": date(2023, 6, 1)},
            {"features", "labels", "backtest", "risk", "paper"},
        ),
        # The interval also sets train's embargo and the gate's grid for unlabelled series.
        (
            "universe",
            {"interval": "4h"},
            {"features", "labels", "backtest", "risk", "train", "validate", "paper"},
        ),
        # Risk calibrates against the horizon's label and measures Kelly's payoff over it.
        ("labels", {"horizon": 8}, {"labels", "train", "evaluate", "risk"}),
        ("labels", {"dead_zone": 0.01}, {"labels"}),
        ("train", {"seed": 7}, {"train"}),
        # Backtest and risk trade the first kind listed: which one it is is part of their result.
        # Paper trades the same kind's targets and scores.
        ("train", {"models": ("xgboost", "lightgbm")}, {"train", "backtest", "risk", "paper"}),
        # Each Optuna trial records its valid Sharpe by the signal rule after costs; risk
        # sizes by it; the backtest trades risk's targets (a new targets version, not a new
        # slice of its own config).
        ("signal", {"threshold": 0.3}, {"risk", "train"}),
        # The paper venue charges the backtest's costs.
        ("backtest", {"fees": FeesConfig(bnb_discount=True)}, {"backtest", "train", "paper"}),
        ("backtest", {"init_cash": 5e4}, {"backtest"}),
        ("paper", {"session_bars": 24}, {"paper"}),
        # Report knobs and destinations: nothing reads them into a result.
        ("train", {"experiment": "elsewhere", "register_as": "other-name"}, set()),
        # Where the Optuna studies live: their names come from the fingerprint, not the URL.
        ("train", {"storage": "postgresql+psycopg2://q:pw@127.0.0.1/optuna"}, set()),
        ("tracking", {"uri": "sqlite:////tmp/elsewhere.db"}, set()),
        ("paper", {"ledger_url": "postgresql://q:pw@127.0.0.1/ledger"}, set()),
        ("validate", {"known_outages": None}, set()),  # its content is hashed on its own
        ("paths", {"data": "/elsewhere"}, set()),
    ],
)
def test_a_stage_s_fingerprint_moves_exactly_with_what_it_reads(section, values, changed):
    from quantlab.config import Config

    cfg = Config()
    before, after = _hashes(cfg), _hashes(_edit(cfg, section, **values))
    assert {s for s in STAGES if before[s] != after[s]} == changed


def test_a_report_knob_leaves_features_and_moves_no_stage():
    from quantlab.config import Config

    cfg = Config()
    evaluate = cfg.features.evaluate.model_copy(update={"top": 3})
    edited = _edit(cfg, "features", evaluate=evaluate)
    assert _hashes(edited) == _hashes(cfg)


def test_a_misspelt_read_or_ignore_is_an_error():
    from quantlab.config import Config, slice_hash
    from quantlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"universe\.symbol'"):
        slice_hash(Config(), ("universe.symbol",))
    with pytest.raises(ConfigError, match=r"train\.experimnt"):
        slice_hash(Config(), ("train",), ("train.experimnt",))
    with pytest.raises(ConfigError, match="inside none"):
        slice_hash(Config(), ("train",), ("labels.horizon",))
