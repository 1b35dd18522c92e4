"""Serving on a trained catalog (tests/serving/support.py: real BTC and ETH 1h bars, 2023 H1,
the main model trained and judged champion by the pipeline's own stages, small regime models).

The tail is a real cut here: half a year of bars, of which serving reads the newest ~2,300.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quantlab.context import RunContext
from quantlab.errors import DatasetNotFound
from quantlab.serving.answers import predict, regime_current, regime_history
from quantlab.serving.model import load_model
from quantlab.serving.scorer import NoChampion, Scorer, UnknownSymbol
from quantlab.vocab import KEY, REGIMES
from serving.support import MAIN, REGIME, SYMBOLS, register_booster


@pytest.fixture(scope="module")
def scorer(served) -> Scorer:
    return Scorer(served.ctx)


def test_predict_is_the_final_models_score_of_the_newest_bars(served, scorer):
    preds = served.ctx.catalog.read(served.predictions).filter(pl.col("fold") == -1)
    cfg = served.ctx.config.signal
    for symbol in SYMBOLS:
        answer = predict(scorer, symbol)
        newest = preds.filter(pl.col("symbol") == symbol).sort("open_time").tail(cfg.smoothing)
        assert newest.height == cfg.smoothing  # the newest bars have no label: fold -1
        assert answer["open_time"] == newest["open_time"][-1].isoformat()
        assert answer["score"] == newest["score"][-1]
        assert answer["probabilities"]["up"] == newest["prob_up"][-1]
        assert answer["probabilities"]["down"] == pytest.approx(1 - newest["prob_up"][-1])
        assert answer["smoothed_score"] == pytest.approx(newest["score"].mean(), abs=1e-15)
        want = 1 if answer["smoothed_score"] > cfg.threshold else 0  # long-only config
        assert (answer["direction"], answer["signal"]) == (want, {1: "buy", 0: "hold"}[want])
        assert (answer["model"], answer["version"]) == (MAIN, 1)
        assert answer["uri"] == f"models:/{MAIN}/1"
        assert answer["klines"] == f"klines@v{served.klines.version}"
        assert answer["latency_ms"] > 0
        json.dumps(answer)  # JSON-ready as it is


def test_a_rollback_answers_with_the_other_version_on_the_next_call(served):
    import lightgbm as lgb

    from quantlab.tracking.registry import META

    scorer = Scorer(served.ctx)
    registry = served.registry
    v1 = load_model(registry, registry.champion(MAIN), scorer.cache_dir)
    before = predict(scorer, "BTCUSDT")
    # A second version: another booster on the same inputs (5 rounds on the labelled rows).
    frame = served.ctx.catalog.read(served.features).join(
        served.ctx.catalog.read(served.labels).select(*KEY, "label_up"), on=KEY
    )
    frame = frame.drop_nulls("label_up")
    x = v1.matrix(frame)
    data = lgb.Dataset(x, frame["label_up"].to_numpy(), categorical_feature=[x.shape[1] - 1])
    params = {"objective": "binary", "verbose": -1, "seed": 1, "num_threads": 1}
    booster = lgb.train(params, data, 5)
    meta = {k: v1.ref.meta(k) for k in META if v1.ref.meta(k) is not None} | {"rounds": "5"}
    v2 = register_booster(served.ctx, MAIN, booster, meta)
    try:
        registry.set_champion(MAIN, v2.version, by="tests/serving")
        after = predict(scorer, "BTCUSDT")
        assert after["version"] == v2.version != before["version"]
        newest = scorer.tail("BTCUSDT", 4).features.filter(pl.col("symbol") == "BTCUSDT").tail(1)
        assert after["score"] == pytest.approx(2 * booster.predict(v1.matrix(newest))[0] - 1)
        assert after["score"] != before["score"]
        registry.rollback(MAIN, by="tests/serving")
        assert predict(scorer, "BTCUSDT")["version"] == before["version"]
        assert predict(scorer, "BTCUSDT")["score"] == before["score"]
    finally:
        registry.set_champion(MAIN, 1, by="tests/serving")


def test_the_tail_is_cached_per_klines_version_until_an_open_bar_closes(served):
    # Serving at 2023-06-01 00:30: the version holds bars that had not closed by then.
    clock = [datetime(2023, 6, 1, 0, 30, tzinfo=UTC)]
    scorer = Scorer(served.ctx, clock=lambda: clock[0])
    first = scorer.tail("BTCUSDT", 1)
    assert first.bars["open_time"].max() == datetime(2023, 5, 31, 23, tzinfo=UTC)
    assert scorer.tail("BTCUSDT", 1) is first  # same version, nothing closed since
    assert predict(scorer, "BTCUSDT")["open_time"] == "2023-05-31T23:00:00+00:00"
    clock[0] += timedelta(hours=1)  # the 00:00 bar closed at 00:59:59.999
    second = scorer.tail("BTCUSDT", 1)
    assert second is not first
    assert second.bars["open_time"].max() == datetime(2023, 6, 1, 0, tzinfo=UTC)
    assert predict(scorer, "BTCUSDT")["open_time"] == "2023-06-01T00:00:00+00:00"


def test_regime_current_is_the_regime_champion_on_the_newest_bar(served, scorer):
    features = served.ctx.catalog.read(served.features)
    for symbol in SYMBOLS:
        answer = regime_current(scorer, symbol)
        probs = answer["probabilities"]
        assert list(probs) == list(REGIMES)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)
        assert answer["regime"] == max(probs, key=probs.get)
        assert answer["confidence"] == max(probs.values())
        assert (answer["model"], answer["version"]) == (f"{REGIME}-{symbol}", 1)
        model = load_model(served.registry, served.registry.champion(answer["model"]))
        row = features.filter(pl.col("symbol") == symbol).sort("open_time").tail(1)
        assert answer["open_time"] == row["open_time"][0].isoformat()
        want = np.asarray(model.booster.predict(model.matrix(row)))[0]
        np.testing.assert_allclose(list(probs.values()), want, rtol=1e-12, atol=1e-15)


def test_regime_history_has_one_row_per_bar_of_the_last_hours(served, scorer):
    history = regime_history(scorer, "ETHUSDT", 24)
    times = [datetime.fromisoformat(r["open_time"]) for r in history["rows"]]
    assert len(times) == 24
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(times))
    current = regime_current(scorer, "ETHUSDT")
    newest = history["rows"][-1]
    assert newest["open_time"] == current["open_time"]
    assert newest["probabilities"] == pytest.approx(current["probabilities"], abs=1e-12)
    assert all(r["regime"] in REGIMES for r in history["rows"])


def test_what_cannot_be_served_says_what_to_do(served, scorer, tmp_path):
    with pytest.raises(UnknownSymbol, match=r"not in universe\.symbols.*make run"):
        predict(scorer, "SOLUSDT")
    ctx = served.ctx
    nobody = ctx.config.model_copy(
        update={"train": ctx.config.train.model_copy(update={"register_as": "nobody"})}
    )
    with pytest.raises(NoChampion, match=r"nobody has no champion.*make run"):
        predict(Scorer(RunContext(nobody, ctx.catalog), served.registry), "BTCUSDT")
    from quantlab.catalog import Catalog

    empty = RunContext(ctx.config, Catalog(tmp_path / "catalog"))
    with pytest.raises(DatasetNotFound, match="make run"):
        predict(Scorer(empty, served.registry), "BTCUSDT")


def test_the_model_cache_on_disk_is_keyed_by_the_logged_model_not_only_its_version(
    served, tmp_path, monkeypatch
):
    """A registry rebuilt from scratch numbers its versions from 1 again; a folder cached for
    another model under the same name and version must never be served."""
    from dataclasses import replace

    import quantlab.serving.model as served_model

    champion = served.registry.champion(MAIN)
    stale = tmp_path / MAIN / str(champion.version)  # how a version-only cache would name it
    stale.mkdir(parents=True)
    (stale / "MLmodel").write_text("not this model")
    monkeypatch.setattr(served_model, "_CACHE", {})  # this process loaded it elsewhere already
    loaded = load_model(served.registry, champion, tmp_path)
    assert loaded.folder.parent.name.startswith(f"{champion.version}-")
    other = replace(champion, source="models:/m-another")
    assert served_model._folder_name(other) != served_model._folder_name(champion)
