"""The incremental update's core: which rows it learns from and is judged on (purged), and
both methods on LightGBM and XGBoost boosters."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import FeaturesConfig, LabelsConfig
from quantlab.features import build_features
from quantlab.labels import build_labels
from quantlab.lifecycle import incremental as inc
from quantlab.train.models import booster as make_booster
from quantlab.vocab import KEY


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    """Real features and 4-bar labels, BTCUSDT and ETHUSDT 1h, Jan-Feb 2024; `label_time`
    the label's resolution time, as the stage hands the core."""
    bars = pl.concat(
        [load_sample_klines(s, ("2024-01", "2024-02")) for s in ("BTCUSDT", "ETHUSDT")]
    )
    feats = build_features(bars, FeaturesConfig())
    labels = build_labels(bars, LabelsConfig(horizon=4))
    data = feats.join(labels, on=list(KEY)).with_columns(pl.col("label_time_4").alias("label_time"))
    return data.sort("open_time", "symbol")


def features_of(frame: pl.DataFrame) -> list[str]:
    skip = {*KEY, "label_time"}
    return [
        c
        for c in frame.columns
        if c not in skip
        and not c.startswith(("label", "fwd_ret", "dir_", "tb_", "regime_"))
        and frame[c].dtype.is_numeric()
    ]


def test_update_rows_are_new_purged_before_the_holdout(frame):
    train_end = frame["label_time"].drop_nulls().sort()[frame.height // 2]
    rows = inc.select_rows(
        frame, target="label_up", train_end=train_end, holdout_bars=48, min_new_bars=24
    )
    assert isinstance(rows, inc.UpdateRows)
    start = rows.holdout["open_time"].min()
    # Nothing the champion trained on, nothing whose label resolves inside the holdout.
    assert (rows.update["label_time"] > train_end).all()
    assert (rows.update["label_time"] < start).all()
    assert (rows.holdout["label_time"] > train_end).all()
    # The newest 48 labelled bars of each symbol, and the update ends a horizon before them.
    labelled = frame.filter(pl.col("label_up").is_not_null() & pl.col("label_time").is_not_null())
    for symbol in ("BTCUSDT", "ETHUSDT"):
        held = rows.holdout.filter(pl.col("symbol") == symbol)["open_time"]
        newest = labelled.filter(pl.col("symbol") == symbol)["open_time"].sort().tail(48)
        assert held.sort().to_list() == newest.to_list()
    gap = start - rows.update["open_time"].max()
    assert gap > timedelta(hours=4)  # the 4-bar label of the last update row resolved before
    assert rows.train_end == rows.update["label_time"].max()
    assert not set(rows.update["open_time"]) & set(rows.holdout["open_time"])


def test_too_few_new_bars_is_a_skip_with_the_reason(frame):
    newest = frame["label_time"].drop_nulls().max()
    almost = newest - timedelta(hours=60)  # 60 new bars: 48 held out, 4 purged, 8 to learn
    out = inc.select_rows(
        frame, target="label_up", train_end=almost, holdout_bars=48, min_new_bars=24
    )
    assert isinstance(out, inc.Skipped)
    assert "min_new_bars=24" in out.reason and "BTCUSDT" in out.reason
    none = inc.select_rows(
        frame, target="label_up", train_end=newest, holdout_bars=48, min_new_bars=24
    )
    assert isinstance(none, inc.Skipped) and "no bar labelled" in none.reason


def test_the_validation_slice_is_the_newest_fifth_purged(frame):
    train_end = frame["label_time"].drop_nulls().sort()[frame.height // 2]
    rows = inc.select_rows(
        frame, target="label_up", train_end=train_end, holdout_bars=48, min_new_bars=24
    )
    fit, valid = inc.split_valid(rows.update)
    first_valid = rows.update["open_time"][valid].min()
    assert len(valid) >= rows.update.height // 5 - 2
    assert (rows.update["label_time"][fit] < first_valid).all()
    assert len(fit) + len(valid) < rows.update.height  # the purged sliver is in neither


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("method", ["init_model", "refit"])
def test_both_methods_change_the_model_and_keep_its_inputs(frame, kind, method):
    cols = features_of(frame)
    labelled = frame.filter(pl.col("label_up").is_not_null())
    half = labelled.height // 2
    old, new = labelled.head(half), labelled.tail(labelled.height - half)
    codes = old["symbol"].replace_strict(["BTCUSDT", "ETHUSDT"], [0.0, 1.0])
    x_old = np.column_stack([old.select(cols).to_numpy(), codes.to_numpy()])
    model = make_booster(kind, "binary")
    params = {"learning_rate": 0.1} if kind == "lightgbm" else {"eta": 0.1}
    champion = model.fit(
        x_old, old["label_up"].to_numpy().astype(float), None, None, params, 7, 20,
        categorical=(x_old.shape[1] - 1,),
    )  # fmt: skip
    codes = new["symbol"].replace_strict(["BTCUSDT", "ETHUSDT"], [0.0, 1.0])
    x_new = np.column_stack([new.select(cols).to_numpy(), codes.to_numpy()])
    y_new = new["label_up"].to_numpy().astype(float)
    before = model.predict(champion, x_new[:200])
    fit, valid = np.arange(len(y_new) - 100), np.arange(len(y_new) - 96, len(y_new))
    update = inc.update_booster(
        kind,
        champion.booster,
        x_new,
        y_new,
        method=method,
        task="binary",
        n_classes=1,
        champion_rounds=champion.rounds,
        rounds=15,
        decay_rate=0.5,
        categorical=(x_new.shape[1] - 1,),
        valid=None if method == "refit" else valid,
        fit=None if method == "refit" else fit,
    )
    assert inc.booster_features(kind, update.booster) == x_new.shape[1]
    after = model.predict(
        type(champion)(kind, update.booster, update.rounds, "binary", (x_new.shape[1] - 1,)),
        x_new[:200],
    )
    assert not np.allclose(before, after)
    if method == "refit":
        assert update.rounds == champion.rounds and update.added == 0
    else:
        assert update.rounds == champion.rounds + update.added and 1 <= update.added <= 15
    # The champion itself is untouched: it still predicts what it did.
    assert np.array_equal(model.predict(champion, x_new[:200]), before)


def test_a_matrix_with_other_columns_is_refused(frame):
    cols = features_of(frame)[:5]
    data = frame.filter(pl.col("label_up").is_not_null()).head(500)
    x = data.select(cols).to_numpy()
    y = data["label_up"].to_numpy().astype(float)
    champion = make_booster("lightgbm", "binary").fit(x, y, None, None, {}, 7, 5)
    with pytest.raises(ValueError, match="the champion takes 5"):
        inc.update_booster(
            "lightgbm", champion.booster, x[:, :4], y, method="refit", task="binary",
            n_classes=1, champion_rounds=5, rounds=5, decay_rate=0.9, categorical=(),
        )  # fmt: skip
