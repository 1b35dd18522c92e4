"""The targets (train.target): each trains on real labels, is purged by its own resolution
time, gives probabilities or a return of the right shape, and is judged by its own metrics."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from helpers import load_sample_klines, write_config
from quantlab.config import BarrierConfig, FeaturesConfig, LabelsConfig, TrainConfig, load_config
from quantlab.errors import ConfigError, DataError
from quantlab.features import build_features, feature_names
from quantlab.labels import build_labels
from quantlab.train import make_splits, walk_forward
from quantlab.train.targets import (
    encode_classes,
    label_column,
    score_of,
    time_column,
    with_target_time,
)

# The barrier's vertical (24 bars) outlasts the 4-bar horizon: a barrier can resolve long
# after the horizon's label_time, which is what the purge must respect.
LABELS = LabelsConfig(horizon=4, barrier=BarrierConfig(vertical=24))
CFG = TrainConfig(folds=3, trials=1, num_boost_round=20, embargo_bars=4)
TARGETS = ["binary", "direction", "triple_barrier", "regression"]


@pytest.fixture(scope="module")
def labelled():
    bars = pl.concat(
        [load_sample_klines(s, ("2024-01", "2024-02")) for s in ("BTCUSDT", "ETHUSDT")]
    )
    feats = build_features(bars, FeaturesConfig())
    return feats.join(build_labels(bars, LABELS), on=["symbol", "open_time"])


def frame_for(labelled: pl.DataFrame, target: str) -> pl.DataFrame:
    return with_target_time(labelled, target, LABELS)


def train(labelled: pl.DataFrame, cfg: TrainConfig, data: pl.DataFrame | None = None):
    data = frame_for(labelled, cfg.target) if data is None else data
    splits = make_splits(data, cfg, interval="1h", horizon=LABELS.horizon)
    column = label_column(cfg.target, LABELS)
    return walk_forward(data, feature_names(FeaturesConfig()), column, "fwd_ret_4", cfg, splits)


def test_each_target_names_its_label_and_its_resolution_time():
    assert [label_column(t, LABELS) for t in TARGETS] == [
        "label_up",
        "dir_4",
        "tb_label",
        "fwd_ret_4",
    ]
    assert [time_column(t, LABELS) for t in TARGETS] == [
        "label_time_4",
        "label_time_4",
        "tb_time",
        "label_time_4",
    ]
    with pytest.raises(ConfigError, match=r"labels\.barrier"):
        label_column("triple_barrier", LabelsConfig(barrier=None))


def test_triple_barrier_rows_are_purged_by_tb_time(labelled):
    """A barrier resolving after the next test block starts must not train for it.

    Purged by the horizon's label_time instead, some training or validation rows of every
    later fold resolve their barrier inside the test block: the first assertion would fail.
    """
    data = frame_for(labelled, "triple_barrier")
    assert data["label_time"].equals(data["tb_time"].alias("label_time"))
    naive_leaks = 0
    for split in make_splits(data, CFG, interval="1h", horizon=4):
        tb = data["tb_time"]
        assert tb.gather(split.train).max() < split.valid_start - split.embargo
        assert tb.gather(split.valid).max() < split.test_start - split.embargo
        naive = make_splits(labelled, CFG, interval="1h", horizon=4)[split.fold]
        used = np.concatenate([naive.train, naive.valid])
        naive_leaks += int((tb.gather(used) >= split.test_start - split.embargo).sum())
    assert naive_leaks > 0  # the horizon's label_time would have let late barriers train


def test_late_barrier_labels_do_not_move_the_next_blocks_scores(labelled):
    """Flipping every tb_label that resolves at or after the last block's purge bound (even
    on rows that open before it) leaves that block's scores as they were."""
    cfg = CFG.model_copy(update={"target": "triple_barrier"})
    data = frame_for(labelled, "triple_barrier")
    last = make_splits(data, cfg, interval="1h", horizon=4)[-1]
    late = pl.col("tb_time") >= last.test_start - last.embargo
    early_open_late = data.filter(late & (pl.col("open_time") < last.test_start))
    assert early_open_late.height > 0  # such rows exist: the case under test is real
    flipped = data.with_columns(
        pl.when(late).then(-pl.col("tb_label")).otherwise(pl.col("tb_label")).alias("tb_label")
    )
    block = lambda r: r.predictions.filter(pl.col("fold") == last.fold)  # noqa: E731
    before, after = block(train(labelled, cfg, data)), block(train(labelled, cfg, flipped))
    assert before.height > 0 and before.equals(after)


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_trains_and_is_judged_by_its_own_metrics(labelled, target):
    result = train(labelled, CFG.model_copy(update={"target": target}))
    preds = result.predictions
    assert preds["score"].is_between(-1, 1).all() and preds["score"].null_count() == 0
    own = {
        "binary": {"auc", "logloss", "accuracy"},
        "direction": {"macro_f1", "logloss", "accuracy"},
        "triple_barrier": {"macro_f1", "logloss", "accuracy"},
        "regression": {"rmse"},
    }[target]
    every = {"auc", "macro_f1", "logloss", "accuracy", "rmse", "ic", "rank_ic", "hit_rate"}
    for m in result.fold_metrics:
        assert {k for k in every if k in m} == own | {"ic", "rank_ic", "hit_rate"}
        assert all(m[k] is not None for k in own | {"ic", "rank_ic", "hit_rate"})
    if target == "binary":
        assert preds["prob_down"].is_null().all()
        assert np.allclose(preds["score"], 2 * preds["prob_up"] - 1)
    elif target == "regression":
        assert preds["prob_up"].is_null().all() and preds["pred_ret"].is_not_null().all()
        assert (np.sign(preds["score"]) == np.sign(preds["pred_ret"])).all()
        assert all(0 < m["rmse"] < 0.2 for m in result.fold_metrics)
    else:
        probs = preds.select("prob_down", "prob_flat", "prob_up").to_numpy()
        assert np.allclose(probs.sum(axis=1), 1.0) and (probs >= 0).all()
        assert np.allclose(preds["score"], preds["prob_up"] - preds["prob_down"])
        assert all(0 <= m["macro_f1"] <= 1 for m in result.fold_metrics)
        assert preds["pred_ret"].is_null().all()


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("target", TARGETS)
def test_every_target_and_kind_repeats_bit_for_bit(labelled, target, kind):
    cfg = CFG.model_copy(update={"target": target, "models": (kind,), "early_stopping_rounds": 3})
    a, b = train(labelled, cfg), train(labelled, cfg)
    assert a.predictions.equals(b.predictions) and a.fold_params == b.fold_params
    other = train(labelled, cfg.model_copy(update={"seed": 7}))
    assert not a.predictions["score"].equals(other.predictions["score"])


def test_balanced_class_weights_move_the_walk_forward(labelled):
    cfg = CFG.model_copy(update={"target": "direction"})
    plain = train(labelled, cfg)
    balanced = train(labelled, cfg.model_copy(update={"class_weight": "balanced"}))
    # Flat is the rare class here (a 0.3% dead zone over 4 hours): weighting raises its odds.
    data = frame_for(labelled, "direction")
    assert (data["dir_4"] == 0).mean() < 1 / 3
    flat = lambda r: r.predictions["prob_flat"].mean()  # noqa: E731
    assert flat(balanced) > flat(plain)


def test_class_weights_are_refused_for_regression(tmp_path):
    with pytest.raises(ValidationError, match="class_weight"):
        TrainConfig(target="regression", class_weight="balanced")
    path = write_config(tmp_path, train={"target": "regression", "class_weight": "balanced"})
    with pytest.raises(ConfigError, match="class_weight"):
        load_config(path)


def test_per_symbol_models_learn_from_their_own_symbol_only(labelled):
    """Flipping ETHUSDT's labels moves no BTCUSDT score per symbol, but does when pooled."""
    data = frame_for(labelled, "binary")
    flipped = data.with_columns(
        pl.when(pl.col("symbol") == "ETHUSDT")
        .then(1 - pl.col("label_up"))
        .otherwise(pl.col("label_up"))
        .alias("label_up")
    )
    btc = lambda r: r.predictions.filter(pl.col("symbol") == "BTCUSDT")["prob_up"]  # noqa: E731
    own = CFG.model_copy(update={"per_symbol": True})
    per_symbol = train(labelled, own, data)
    assert btc(per_symbol).equals(btc(train(labelled, own, flipped)))
    assert not btc(train(labelled, CFG, data)).equals(btc(train(labelled, CFG, flipped)))
    assert set(per_symbol.models) == {"lightgbm-BTCUSDT", "lightgbm-ETHUSDT"}
    assert {p["symbol"] for p in per_symbol.fold_params} == {"BTCUSDT", "ETHUSDT"}
    assert [m["fold"] for m in per_symbol.fold_metrics] == [0, 1, 2]
    assert per_symbol.fold_metrics[0]["trials"] == 2 * CFG.trials  # one study per symbol
    live = per_symbol.predictions.filter(pl.col("fold") == -1)
    assert live.group_by("symbol").len().sort("symbol")["len"].to_list() == [4, 4]
    with pytest.raises(DataError, match="per symbol"):
        _ = per_symbol.model


def test_the_pooled_model_codes_the_symbol_from_the_universe(labelled):
    data = frame_for(labelled, "binary")
    splits = make_splits(data, CFG, interval="1h", horizon=4)
    names = feature_names(FeaturesConfig())
    run = lambda symbols: walk_forward(  # noqa: E731
        data, names, "label_up", "fwd_ret_4", CFG, splits, symbols=symbols
    )
    result = run(["BTCUSDT", "ETHUSDT"])
    assert result.features == [*names, "symbol"]
    assert result.model.num_feature() == len(names) + 1
    with pytest.raises(DataError, match="ETHUSDT"):
        run(["BTCUSDT"])


def test_classes_are_coded_in_one_place_and_scores_are_per_target():
    assert encode_classes(np.array([-1.0, 0.0, 1.0, 1.0])).tolist() == [0, 1, 2, 2]
    with pytest.raises(DataError, match="2"):
        encode_classes(np.array([0.0, 2.0]))
    probs = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    assert np.allclose(score_of("multiclass", probs), [0.3, -0.5])
    assert np.allclose(score_of("binary", np.array([0.5, 0.8])), [0.0, 0.6])
    assert np.allclose(score_of("regression", np.array([0.001, -0.03]), 0.01), [0.1, -1.0])
