"""End to end: the research DAG through Airflow on a slice of the shipped real data, then a rerun."""

from __future__ import annotations

import re
import sqlite3

import polars as pl
import pytest

from helpers import airflow_dags_test, write_config

STAGES = [
    "klines",
    "klines_checks",
    "features",
    "labels",
    "predictions",
    "targets",
    "paper_orders",
]
# What the backtest adds to the graph: the exchange filters its orders round to.
BACKTEST = ["backtest", "exchange_info", "exchange_info_checks"]


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    config = write_config(tmp)
    result = airflow_dags_test(tmp / "airflow", "research", env={"QUANTLAB_CONFIG": str(config)})
    with sqlite3.connect(tmp / "airflow" / "airflow.db") as db:
        states = dict(db.execute("SELECT task_id, state FROM task_instance").fetchall())
    return config, result, states


def test_every_task_succeeds_through_airflow(dag_run):
    _, result, states = dag_run
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    stages = ("ingest", "validate", "features", "labels", "train", "risk", "backtest", "paper")
    # write_config registers no model and turns the regime models off: both hand on nothing.
    stages = (*stages, "regime", "promote")
    filters = ("exchange_info", "validate_exchange_info")
    # A spot universe has no funding: the two funding tasks succeed and hand on nothing.
    assert states == {t: "success" for t in (*stages, *filters, "funding", "validate_funding")}


def test_lineage_walks_from_paper_back_to_ingest(dag_run):
    from quantlab.context import RunContext

    config, _, _ = dag_run
    ctx = RunContext.load(config)
    chain = ctx.catalog.walk_lineage(ctx.catalog.latest("paper_orders"))
    # The gate also read ingest's record of the candles the exchange confirmed missing; paper
    # rounds its orders to the same gated exchange filters as the backtest.
    filters = ("exchange_info", "exchange_info_checks")
    assert {ref.name for ref, _ in chain} == {*STAGES, *filters, "klines_gaps"}
    judged = ctx.catalog.walk_lineage(ctx.catalog.latest("backtest"))
    assert {ref.name for ref, _ in judged} == {*STAGES, *BACKTEST, "klines_gaps"} - {"paper_orders"}
    stages = {ref.name: lin.stage for ref, lin in chain}
    assert stages["klines"] == "ingest" and stages["targets"] == "risk"
    klines = ctx.catalog.read(ctx.catalog.latest("klines"))
    # Feb-Apr 2023 for two symbols; the real 2023-03-24 halt removed one hour from each.
    assert klines.height == 2 * (89 * 24 - 1)
    assert ctx.catalog.lineage(ctx.catalog.latest("klines_checks")).extra["passed"] is True
    predictions = ctx.catalog.lineage(ctx.catalog.latest("predictions"))
    assert predictions.extra["mlflow_run_id"]
    assert len(predictions.extra["fold_metrics"]) == 3
    # Every configuration the tuning tried is on the version: trials per fold, summed.
    per_fold = [m["trials"] for m in predictions.extra["fold_metrics"]]
    assert per_fold == [2, 2, 2] and predictions.extra["trials"] == 6  # write_config: trials 2
    assert predictions.extra["seed"] == ctx.config.train.seed


def test_train_writes_feature_importance_beside_predictions(dag_run):
    """SHAP per fold of the same training: same inputs, fingerprint and MLflow run."""
    from quantlab.catalog import DATASETS
    from quantlab.context import RunContext

    config, _, _ = dag_run
    ctx = RunContext.load(config)
    ref = ctx.catalog.latest("feature_importance")
    importance, predictions = (
        ctx.catalog.lineage(ref),
        ctx.catalog.lineage(ctx.catalog.latest("predictions")),
    )
    assert importance.stage == "train" and importance.inputs == predictions.inputs
    assert importance.fingerprint == predictions.fingerprint
    assert importance.extra["mlflow_run_id"] == predictions.extra["mlflow_run_id"]
    frame = ctx.catalog.read(ref)
    DATASETS["feature_importance"].check(frame)
    assert sorted(frame["fold"].unique()) == [0, 1, 2]


def test_mlflow_holds_the_run_with_per_fold_metrics(dag_run):
    import mlflow

    from quantlab.context import RunContext

    config, _, _ = dag_run
    ctx = RunContext.load(config)
    run_id = ctx.catalog.lineage(ctx.catalog.latest("predictions")).extra["mlflow_run_id"]
    client = mlflow.MlflowClient(tracking_uri=ctx.config.tracking.uri)
    run = client.get_run(run_id)
    assert {"fold0_auc", "fold1_auc", "fold2_auc", "mean_auc"} <= set(run.data.metrics)
    assert [m.step for m in client.get_metric_history(run_id, "auc")] == [0, 1, 2]
    assert run.data.params["train.folds"] == "3"
    assert run.data.tags["trials_total"] == "6"


def test_backtest_tearsheet_and_deflated_stats(dag_run):
    from quantlab.backtest.stage import tearsheet_path
    from quantlab.context import RunContext

    config, _, _ = dag_run
    ctx = RunContext.load(config)
    ref = ctx.catalog.latest("backtest")
    stats = ctx.catalog.lineage(ref).extra["stats"]
    keys = {"sharpe", "sharpe_per_period", "n_periods", "skew", "kurtosis", "n_trials"}
    assert keys | {"trials_sharpe_var", "psr", "dsr", "min_trl"} <= set(stats)
    # The training's 6 Optuna trials (write_config: 2 per fold) are the N behind the Sharpe.
    assert stats["n_trials"] == 6
    html = tearsheet_path(ctx, ref).read_text()
    assert "<html" in html.lower() and "plotly" in html.lower()


def test_a_second_run_writes_nothing_new(dag_run):
    from quantlab.context import RunContext
    from quantlab.execution.ledger import Ledger
    from quantlab.pipeline import run_research

    config, _, _ = dag_run
    ctx = RunContext.load(config)
    before = {name: ctx.catalog.latest(name) for name in (*STAGES, *BACKTEST)}
    importance = ctx.catalog.latest("feature_importance")  # train's second dataset
    with Ledger.connect(ctx.config.paper.ledger_url) as ledger:
        orders_before = ledger.orders(ctx.config.paper.account)
    after = run_research(ctx)
    assert after == before
    assert ctx.catalog.latest("feature_importance") == importance
    with Ledger.connect(ctx.config.paper.ledger_url) as ledger:
        assert ledger.orders(ctx.config.paper.account) == orders_before
    klines = ctx.catalog.read(after["klines"])
    assert (
        klines.unique(subset=["market", "symbol", "interval", "open_time"]).height == klines.height
    )


def test_a_failed_validation_stops_downstream_stages(dag_run, tmp_path):
    """Corrupt one stored candle: validate fails and features refuses the version."""
    from quantlab import features, quality
    from quantlab.catalog import Catalog
    from quantlab.context import RunContext
    from quantlab.errors import QualityError
    from quantlab.schema import KLINES_KEY

    config, _, _ = dag_run
    ctx = RunContext.load(config)
    ctx = RunContext(ctx.config, Catalog(tmp_path / "catalog"))
    source = RunContext.load(config).catalog
    klines = source.read(source.latest("klines"))
    bad = klines.with_columns(
        pl.when(pl.arange(0, pl.len()) == 10).then(-1.0).otherwise(pl.col("high")).alias("high")
    )
    ref = ctx.catalog.upsert("klines", bad, KLINES_KEY, stage="ingest")
    with pytest.raises(QualityError) as err:
        quality.run(ctx, ref)
    checks = ctx.catalog.latest("klines_checks")
    assert ctx.catalog.lineage(checks).extra["passed"] is False
    with pytest.raises(QualityError, match="failed validation"):
        features.run(ctx, ref, checks)
    assert err.value.failed_checks


def test_cli_lists_datasets_and_shows_lineage(dag_run, capsys):
    from quantlab.cli import main

    config, _, _ = dag_run
    assert main(["--config", str(config), "datasets", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in (*STAGES, "feature_importance"))
    assert main(["--config", str(config), "datasets", "show", "backtest"]) == 0
    shown = capsys.readouterr().out
    for stage in ("backtest", "risk", "train", "labels", "features", "validate", "ingest"):
        assert f"stage={stage}" in shown
    assert main(["--config", str(config), "datasets", "show", "nope"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--config", str(config), "summary"]) == 0
    summary = capsys.readouterr().out
    assert "tuned: 6 Optuna trials in all" in summary
    assert re.search(r"N = 6 trials, PSR (\d+\.\d%|n/a), DSR (\d+\.\d%|n/a)", summary)
    assert "backtest_fills@v0" in summary and "tearsheet:" in summary


def test_the_run_prints_no_mlflow_warning(dag_run):
    """The model is logged with its environment given, so MLflow warns about neither uv nor
    pip (`make run` printed 'uv is not available' and 'Failed to resolve installed pip
    version')."""
    _, result, _ = dag_run
    output = result.stdout + result.stderr
    assert not re.findall(r".*WARNING mlflow.*", output)


def test_quantlab_run_stage_runs_one_stage_on_the_latest_inputs(dag_run, capsys):
    """`quantlab run labels` reads the latest klines and checks; same inputs, same version."""
    from quantlab.cli import main
    from quantlab.context import RunContext

    config, _, _ = dag_run
    catalog = RunContext.load(config).catalog
    labels, klines = catalog.latest("labels"), catalog.latest("klines")
    checks = catalog.latest("klines_checks")
    assert main(["--config", str(config), "run", "labels"]) == 0
    assert capsys.readouterr().out.strip() == f"labels on {klines}, {checks}: {labels}"
    assert catalog.latest("labels") == labels
    # Spot: the funding gate is off, and says so.
    assert main(["--config", str(config), "run", "validate_funding"]) == 0
    assert "nothing (off for this config)" in capsys.readouterr().out


def test_the_backtest_refuses_targets_sized_for_another_universe(dag_run, capsys):
    """One catalog holds every config's runs: `quantlab run backtest` under a config whose
    universe is not the latest targets' stops, naming the stage to run, instead of trading
    another config's targets."""
    import yaml

    from quantlab.cli import main

    config, _, _ = dag_run
    raw = yaml.safe_load(config.read_text())
    raw["universe"]["symbols"] = ["BTCUSDT"]
    other = config.with_name("btc-only.yaml")
    other.write_text(yaml.safe_dump(raw))
    assert main(["--config", str(other), "run", "backtest"]) == 2
    err = capsys.readouterr().err
    assert "outside this config's universe" in err and "quantlab run risk" in err


def test_the_sizing_rule_passes_the_lookahead_analysis_on_the_run(dag_run, capsys):
    from quantlab.cli import main

    config, _, _ = dag_run
    assert main(["--config", str(config), "backtest", "lookahead", "--cuts", "3"]) == 0
    assert "no lookahead" in capsys.readouterr().out
