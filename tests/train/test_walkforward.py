"""Walk-forward training: folds, purging and embargo, and out-of-fold honesty, on real features."""

from __future__ import annotations

import itertools
from datetime import timedelta

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig, LabelsConfig, TrainConfig
from quantlab.features import build_features, feature_names
from quantlab.labels import build_labels
from quantlab.train.walkforward import make_folds, purged_train_mask, walk_forward

CFG = TrainConfig(folds=3, trials=2, num_boost_round=30, embargo_bars=12)
EMBARGO = timedelta(hours=12)


@pytest.fixture(scope="module")
def data():
    bars = pl.concat(
        [load_sample_klines(s, ("2024-01", "2024-02")) for s in ("BTCUSDT", "ETHUSDT")]
    )
    feats = build_features(bars, FeaturesConfig())
    return feats.join(build_labels(bars, LabelsConfig(horizon=4)), on=["symbol", "open_time"])


def test_folds_are_consecutive_and_cover_the_tail(data):
    folds = make_folds(data["open_time"], CFG)
    assert len(folds) == 3
    for a, b in itertools.pairwise(folds):
        assert a.test_end == b.test_start
    assert folds[-1].test_end is None  # the last block runs to the newest labelled bar
    assert folds[0].test_start > data["open_time"].min()


def test_purged_training_rows_resolve_before_the_test_block(data):
    fold = make_folds(data["open_time"], CFG)[1]
    train = data.filter(purged_train_mask(data, fold.test_start, EMBARGO))
    assert train["label_time"].max() < fold.test_start - EMBARGO
    # Purging removes the rows whose 4-bar label overlaps the test block, and the embargo more.
    unpurged = data.filter(pl.col("open_time") < fold.test_start)
    assert unpurged.height - train.height >= 2 * (4 + 12)


def test_out_of_fold_scores_ignore_the_labels_of_their_own_block(data):
    """Scrambling the labels inside the last test block must not change that block's scores."""
    result = walk_forward(
        data, feature_names(FeaturesConfig()), "label_up", "fwd_ret_4", CFG, EMBARGO
    )
    last = make_folds(data.filter(pl.col("label_up").is_not_null())["open_time"], CFG)[-1]
    in_block = (pl.col("open_time") >= last.test_start) & pl.col("label_up").is_not_null()
    scrambled = data.with_columns(
        pl.when(in_block)
        .then(1 - pl.col("label_up"))
        .otherwise(pl.col("label_up"))
        .alias("label_up")
    )
    again = walk_forward(
        scrambled, feature_names(FeaturesConfig()), "label_up", "fwd_ret_4", CFG, EMBARGO
    )
    block = lambda r: r.predictions.filter(pl.col("fold") == last.index)  # noqa: E731
    assert block(result).height > 0
    newest = data.filter(pl.col("label_up").is_not_null())["open_time"].max()
    assert block(result)["open_time"].max() == newest
    assert block(result)["prob_up"].to_list() == block(again)["prob_up"].to_list()
    assert [m["fold"] for m in result.fold_metrics] == [0, 1, 2]
    assert all(0.0 <= m["auc"] <= 1.0 for m in result.fold_metrics)


def test_unlabelled_newest_bars_are_scored_by_the_final_model(data):
    result = walk_forward(
        data, feature_names(FeaturesConfig()), "label_up", "fwd_ret_4", CFG, EMBARGO
    )
    live = result.predictions.filter(pl.col("fold") == -1)
    assert live.height == 2 * 4  # the last 4 bars of each symbol have no label yet
    assert live["open_time"].min() > data.filter(pl.col("label_up").is_not_null())[
        "open_time"
    ].max() - timedelta(hours=4)
    assert result.predictions["score"].is_between(-1, 1).all()
