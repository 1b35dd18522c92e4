"""Walk-forward training: folds, purging and embargo, and out-of-fold honesty, on real features."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from quantlab.config import FeaturesConfig, TrainConfig
from quantlab.features import feature_names
from quantlab.train import make_splits, walk_forward

CFG = TrainConfig(folds=3, trials=2, num_boost_round=30, embargo_bars=12)
EMBARGO = timedelta(hours=12)


def splits_of(data: pl.DataFrame, cfg: TrainConfig = CFG) -> list:
    return make_splits(data, cfg, interval="1h", horizon=4)


def train(data: pl.DataFrame, cfg: TrainConfig = CFG):
    names = feature_names(FeaturesConfig())
    return walk_forward(data, names, "label_up", "fwd_ret_4", cfg, splits_of(data, cfg))


def test_folds_are_consecutive_and_cover_the_tail(data):
    folds = splits_of(data)
    assert len(folds) == 3
    for a, b in itertools.pairwise(folds):
        assert a.test_end == b.test_start
    assert folds[-1].test_end is None  # the last block runs to the newest bar
    assert folds[0].test_start > data["open_time"].min()


def test_purged_training_rows_resolve_before_the_test_block(data):
    fold = splits_of(data)[1]
    used = data[np.concatenate([fold.train, fold.valid])]
    assert used["label_time"].max() < fold.test_start - EMBARGO
    # Purging removes the rows whose 4-bar label overlaps the test block, and the embargo more.
    unpurged = data.filter(pl.col("open_time") < fold.test_start)
    assert unpurged.height - used.height >= 2 * (4 + 12)


def test_each_fold_learns_from_its_train_and_valid_rows_only(data):
    """Scrambling every label a fold may not use changes none of that fold's scores.

    The labels outside the last fold's train and valid rows (the purged slivers before its
    valid and test windows, and the test block itself) are flipped; its scores stay the same.
    """
    last = splits_of(data)[-1]
    usable = np.zeros(data.height, dtype=bool)
    usable[np.concatenate([last.train, last.valid])] = True
    scrambled = data.with_columns(
        pl.when(~pl.Series(usable) & pl.col("label_up").is_not_null())
        .then(1 - pl.col("label_up"))
        .otherwise(pl.col("label_up"))
        .alias("label_up")
    )
    before, after = train(data), train(scrambled)
    block = lambda r: r.predictions.filter(pl.col("fold") == last.fold)  # noqa: E731
    assert block(before).height == before.fold_metrics[-1]["test_rows"] > 0
    assert block(before)["prob_up"].to_list() == block(after)["prob_up"].to_list()
    # The labels the fold does use move its scores: the check above can fail.
    flipped = data.with_columns(
        pl.when(pl.Series(usable))
        .then(1 - pl.col("label_up"))
        .otherwise(pl.col("label_up"))
        .alias("label_up")
    )
    assert block(train(flipped))["prob_up"].to_list() != block(before)["prob_up"].to_list()


def test_the_fold_metrics_count_the_split_rows(data):
    result = train(data)
    for split, m in zip(splits_of(data), result.fold_metrics, strict=True):
        assert (m["train_rows"], m["valid_rows"]) == (len(split.train), len(split.valid))
        assert m["rounds"] == CFG.num_boost_round
        assert m["trials"] == CFG.trials


def test_early_stopping_on_the_valid_rows_sets_the_rounds(data):
    cfg = CFG.model_copy(update={"early_stopping_rounds": 3, "num_boost_round": 100})
    result = train(data, cfg)
    rounds = [m["rounds"] for m in result.fold_metrics]
    assert all(1 <= r <= 100 for r in rounds) and min(rounds) < 100
    assert result.model.num_trees() == rounds[-1]  # the final model boosts as the last fold did


def test_rows_in_any_order_train_the_same_models(data):
    shuffled = data.sample(fraction=1.0, shuffle=True, seed=3)
    a, b = train(data), train(shuffled)
    assert a.predictions.equals(b.predictions)


def test_out_of_fold_scores_ignore_the_labels_of_their_own_block(data):
    """Scrambling the labels inside the last test block must not change that block's scores."""
    result = train(data)
    last = splits_of(data)[-1]
    in_block = (pl.col("open_time") >= last.test_start) & pl.col("label_up").is_not_null()
    scrambled = data.with_columns(
        pl.when(in_block)
        .then(1 - pl.col("label_up"))
        .otherwise(pl.col("label_up"))
        .alias("label_up")
    )
    again = train(scrambled)
    block = lambda r: r.predictions.filter(pl.col("fold") == last.fold)  # noqa: E731
    assert block(result).height > 0
    newest = data.filter(pl.col("label_up").is_not_null())["open_time"].max()
    assert block(result)["open_time"].max() == newest
    assert block(result)["prob_up"].to_list() == block(again)["prob_up"].to_list()
    assert [m["fold"] for m in result.fold_metrics] == [0, 1, 2]
    assert all(0.0 <= m["auc"] <= 1.0 for m in result.fold_metrics)


def test_unlabelled_newest_bars_are_scored_by_the_final_model(data):
    result = train(data)
    live = result.predictions.filter(pl.col("fold") == -1)
    assert live.height == 2 * 4  # the last 4 bars of each symbol have no label yet
    assert live["open_time"].min() > data.filter(pl.col("label_up").is_not_null())[
        "open_time"
    ].max() - timedelta(hours=4)
    assert result.predictions["score"].is_between(-1, 1).all()


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_same_data_config_and_seed_give_bit_identical_scores(data, kind):
    cfg = CFG.model_copy(update={"models": (kind,), "early_stopping_rounds": 5})
    a, b = train(data, cfg), train(data, cfg)
    assert a.predictions["model"].unique().to_list() == [kind]
    assert np.array_equal(a.predictions["prob_up"].to_numpy(), b.predictions["prob_up"].to_numpy())
    assert a.fold_params == b.fold_params
    # The seed reaches the fit (and the search): another seed moves the scores.
    other = train(data, cfg.model_copy(update={"seed": 7}))
    assert not np.array_equal(
        a.predictions["prob_up"].to_numpy(), other.predictions["prob_up"].to_numpy()
    )


def test_both_kinds_walk_forward_on_the_same_rows(data):
    cfg = CFG.model_copy(update={"models": ("xgboost", "lightgbm")})
    both = train(data, cfg)
    preds = both.predictions
    assert set(preds["model"].unique()) == {"lightgbm", "xgboost"}
    assert preds.select("symbol", "open_time", "model").is_unique().all()
    xg, lg = (preds.filter(pl.col("model") == k) for k in ("xgboost", "lightgbm"))
    assert xg.select("symbol", "open_time", "fold").equals(lg.select("symbol", "open_time", "fold"))
    assert not np.array_equal(xg["prob_up"].to_numpy(), lg["prob_up"].to_numpy())
    assert [(m["model"], m["fold"]) for m in both.fold_metrics] == [
        (k, f) for k in ("xgboost", "lightgbm") for f in (0, 1, 2)
    ]
    assert both.primary == "xgboost" and set(both.models) == {"xgboost", "lightgbm"}
    # Each kind's scores are what that kind alone gives: the kinds do not leak into each other.
    alone = train(data, CFG).predictions
    assert np.array_equal(lg["prob_up"].to_numpy(), alone["prob_up"].to_numpy())


def test_xgboost_early_stopping_on_the_valid_rows_sets_the_rounds(data):
    cfg = CFG.model_copy(
        update={"models": ("xgboost",), "early_stopping_rounds": 3, "num_boost_round": 100}
    )
    result = train(data, cfg)
    rounds = [m["rounds"] for m in result.fold_metrics]
    assert all(1 <= r <= 100 for r in rounds) and min(rounds) < 100
    assert (
        result.model.num_boosted_rounds() == rounds[-1]
    )  # the final model boosts as the last fold
