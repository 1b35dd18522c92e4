"""The monitor on a real live period: a champion trained on Feb-Mar 2023 (universe.end
2023-04-01), then April's real bars arrive. `score_live` scores only the bars it never saw,
once; the tracker scores them as their labels resolve (the out-of-sample rows before any
has), logs to one MLflow run per model; the triggers decide on the new labelled bars."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import polars as pl
import pytest

from helpers import load_sample_klines, write_config

SYMBOLS = ("BTCUSDT", "ETHUSDT")
MODEL = "quantlab-research"


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    from quantlab.context import RunContext
    from quantlab.features import build_features
    from quantlab.labels import build_labels
    from quantlab.lifecycle import live, promote
    from quantlab.train import run as train

    tmp = tmp_path_factory.mktemp("monitor")
    ctx = RunContext.load(
        write_config(
            tmp,
            universe={"start": "2023-02-01", "end": "2023-04-01"},
            train={"register_as": MODEL},
            lifecycle={"regime": {"enabled": True}},  # no regime champion: skipped, not an error
        )
    )

    def version(months):
        bars = pl.concat([load_sample_klines(s, months) for s in SYMBOLS])
        k = ctx.catalog.upsert("klines", bars, stage="ingest")
        f = ctx.catalog.write(
            "features", build_features(bars, ctx.config.features), stage="features", inputs=[k]
        )
        lab = ctx.catalog.write(
            "labels", build_labels(bars, ctx.config.labels), stage="labels", inputs=[k]
        )
        return f, lab

    features, labels = version(("2023-02", "2023-03"))
    predictions = train(ctx, features, labels)
    promote.run(ctx, predictions, labels)
    features2, labels2 = version(("2023-02", "2023-03", "2023-04"))  # April arrives
    now = datetime(2023, 5, 1, 12, tzinfo=UTC)
    scored = live.run(ctx, features2, labels2, now=now)
    reg = promote.registry(ctx)
    champion = reg.champion(MODEL)
    return SimpleNamespace(
        ctx=ctx, features=features2, labels=labels2, scored=scored, now=now, champion=champion
    )


def test_the_champion_scores_every_bar_newer_than_its_training_and_nothing_older(monitored):
    from quantlab.lifecycle.live import train_end
    from quantlab.serving.model import load_model
    from quantlab.tracking.registry import registry_for

    ctx, champion = monitored.ctx, monitored.champion
    assert champion is not None and champion.version == 1
    end = train_end(champion)
    assert datetime(2023, 3, 31, tzinfo=UTC) < end < datetime(2023, 4, 1, tzinfo=UTC)
    rows = ctx.catalog.read(monitored.scored)
    feats = ctx.catalog.read(monitored.features)
    newer = feats.filter(pl.col("open_time") > end)
    assert rows.height == newer.height > 24 * 29 * 2  # April, both symbols
    assert rows["open_time"].min() == newer["open_time"].min()
    assert (rows["model"] == MODEL).all() and (rows["version"] == 1).all()
    assert (rows["scored_at"] == monitored.now).all()
    assert rows["p_Range"].is_null().all() and rows["score"].is_not_null().all()
    # the champion's own scores of those rows, nothing else
    want = load_model(registry_for(ctx.config.tracking.uri), champion).predict(newer)
    got = rows.select("symbol", "open_time", "score").join(
        want.select("symbol", "open_time", pl.col("score").alias("want")),
        on=["symbol", "open_time"],
    )
    assert got.height == rows.height and (got["score"] == got["want"]).all()


def test_scoring_again_adds_nothing(monitored):
    from quantlab.lifecycle import live

    ctx = monitored.ctx
    again = live.run(
        ctx, monitored.features, monitored.labels, now=monitored.now + timedelta(hours=1)
    )
    assert again == monitored.scored  # no new commit
    rows = ctx.catalog.read(again)
    assert rows.height == rows.select("symbol", "open_time", "model", "version").unique().height


def test_accuracy_is_tracked_on_live_rows_and_logged_over_time(monitored):
    import mlflow

    from quantlab.lifecycle import accuracy
    from quantlab.lifecycle.evaluate import main_truth, score

    ctx = monitored.ctx
    as_of = datetime(2023, 5, 2, tzinfo=UTC)
    ref = accuracy.run(ctx, monitored.labels, monitored.scored, as_of=as_of)
    got = ctx.catalog.read(ref).filter(pl.col("model") == MODEL)
    assert set(got["window_days"]) == {7, 14, 30}
    assert set(got["symbol"]) == {"ALL", *SYMBOLS}
    assert (got["source"] == "live").all() and (got["metric"] == "auc").all()
    # the 7-day figure, scored independently on the live rows whose label resolved last week
    truth = main_truth(ctx.catalog.read(monitored.labels), ctx.config.labels.horizon)
    end = truth["label_time"].max()
    rows = ctx.catalog.read(monitored.scored).join(truth, on=["symbol", "open_time"])
    week = rows.filter(pl.col("label_time") > end - timedelta(days=7))
    row = got.filter((pl.col("window_days") == 7) & (pl.col("symbol") == "ALL")).row(0, named=True)
    assert row["rows"] == week.height and row["end"] == end
    assert row["accuracy"] == pytest.approx(score("main", "accuracy", week))
    assert row["value"] == pytest.approx(score("main", "auc", week))
    # a second call later: the same MLflow run, one more point per metric
    accuracy.run(ctx, monitored.labels, monitored.scored, as_of=as_of + timedelta(hours=1))
    client = mlflow.MlflowClient(ctx.config.tracking.uri)
    runs = client.search_runs(
        [mlflow.get_experiment_by_name(ctx.config.train.experiment).experiment_id],
        f"tags.`quantlab.model` = '{MODEL}' and tags.`quantlab.monitor` = 'live-accuracy'",
    )
    assert len(runs) == 1 and runs[0].info.run_name == f"live-accuracy {MODEL}"
    history = client.get_metric_history(runs[0].info.run_id, "acc_7d")
    assert [m.timestamp for m in history] == [
        int(as_of.timestamp() * 1000),
        int((as_of + timedelta(hours=1)).timestamp() * 1000),
    ]
    assert history[0].value == pytest.approx(row["accuracy"])
    assert "auc_30d_BTCUSDT" in runs[0].data.metrics and runs[0].data.tags["source_7d"] == "live"


def test_before_any_live_label_resolves_the_tracker_reports_the_oos_rows_as_such(monitored):
    from quantlab.lifecycle import accuracy
    from quantlab.lifecycle.live import train_end

    ctx = monitored.ctx
    as_of = train_end(monitored.champion) + timedelta(hours=2)  # April's first labels unresolved
    ref = accuracy.run(ctx, monitored.labels, monitored.scored, as_of=as_of, log=False)
    got = ctx.catalog.read(ref).filter(pl.col("symbol") == "ALL")
    assert (got["source"] == "oos").all()
    assert (got["rows"] > 0).all()  # the walk-forward's out-of-fold rows of March
    assert (got["end"] <= as_of).all()


def test_triggers_decide_on_new_labelled_bars_and_record_every_decision(monitored):
    import mlflow

    from quantlab.lifecycle import triggers
    from quantlab.lifecycle.live import train_end

    ctx = monitored.ctx
    end = train_end(monitored.champion)
    quiet, _ = triggers.run(ctx, monitored.labels, monitored.scored, as_of=end + timedelta(hours=5))
    assert quiet.action == "none"
    soon, _ = triggers.run(ctx, monitored.labels, monitored.scored, as_of=end + timedelta(hours=20))
    assert soon.action == "incremental" and f"{MODEL}: 20 new labelled bars" in soon.reason
    late, ref = triggers.run(
        ctx, monitored.labels, monitored.scored, as_of=end + timedelta(days=40)
    )
    assert late.action == "full"
    rows = ctx.catalog.read(ref)
    assert rows.height == 3 * (1 + 2 + 1)  # each call: the main model, two regime models, ALL
    mine = rows.filter(pl.col("model") == MODEL).sort("decided_at")
    assert mine["action"].to_list() == ["none", "incremental", "full"]
    details = json.loads(mine["details"][-1])
    assert details["bars_since_full"] >= 720 and details["champion_version"] == 1
    assert details["metric_rows"] > 0 and details["metric_value"] is not None  # live rows scored
    regime = rows.filter(pl.col("model") == "quantlab-regime-BTCUSDT")
    assert (regime["action"] == "none").all() and regime["reason"][0].endswith(
        "reports it meanwhile"
    )
    client = mlflow.MlflowClient(ctx.config.tracking.uri)
    runs = client.search_runs(
        [mlflow.get_experiment_by_name(ctx.config.train.experiment).experiment_id],
        "tags.`quantlab.monitor` = 'retrain-trigger'",
    )
    assert sorted(r.data.tags["action"] for r in runs) == ["full", "incremental", "none"]
    assert all(r.data.tags["reason"] for r in runs)


def test_the_dag_steps_run_on_the_newest_versions(monitored):
    """What the model_monitor DAG's tasks call, with the refs they hand on."""
    from quantlab.lifecycle import accuracy, live, triggers

    ctx = monitored.ctx
    scored = live.run_latest(ctx, now=monitored.now)
    assert scored == monitored.scored  # nothing new to score
    as_of = datetime(2023, 5, 3, tzinfo=UTC)
    tracked = accuracy.run_latest(ctx, scored, as_of=as_of)
    assert ctx.catalog.read(tracked)["as_of"].max() == as_of
    trigger, written = triggers.run_latest(ctx, scored, as_of=as_of)
    assert trigger.action == "full" and written is not None
    assert accuracy.run_latest(ctx, as_of=as_of) is not None  # without a ref: the newest
