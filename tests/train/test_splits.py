"""make_splits: hand-checked positions on ten rows, and properties over random panels.

The properties are checked against an oracle written here from the rule itself: a row
trains for a fold only if its label resolves strictly before the next window's start less
the embargo; nothing that passes the rule inside the window is dropped.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from quantlab.config import LabelsConfig, TrainConfig, load_config
from quantlab.errors import DataError
from quantlab.labels import build_labels
from quantlab.train import Split, fold_table, make_splits

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def panel(rows: list[tuple[str, int, int | None]]) -> pl.DataFrame:
    """(symbol, open hour, label hour or None) -> a frame as the train stage sees it."""
    return pl.DataFrame(
        {
            "symbol": [s for s, _, _ in rows],
            "open_time": [T0 + h * HOUR for _, h, _ in rows],
            "label_time": [None if lh is None else T0 + lh * HOUR for _, _, lh in rows],
        },
        schema={
            "symbol": pl.String,
            "open_time": pl.Datetime("ms", "UTC"),
            "label_time": pl.Datetime("ms", "UTC"),
        },
    )


def ten_rows() -> pl.DataFrame:
    """One symbol, hours 0-9, a 1-bar label resolved at the close of the next bar; the last unresolved."""
    return panel([("BTCUSDT", h, None if h == 9 else h + 2) for h in range(10)]).with_columns(
        pl.col("label_time") - timedelta(milliseconds=1)
    )


TEN = TrainConfig(folds=None, test_bars=3, train_bars=5, valid_fraction=None, valid_bars=2)


def test_ten_rows_hand_checked():
    s0, s1 = make_splits(
        ten_rows(), TEN.model_copy(update={"embargo_bars": 0}), interval="1h", horizon=1
    )
    # Labelled bars span hours 0-8 (9 bars); 5 train, then test blocks of 3 from hour 5.
    assert (s0.test_start, s0.test_end, s1.test_start, s1.test_end) == (
        T0 + 5 * HOUR, T0 + 8 * HOUR, T0 + 8 * HOUR, None,
    )  # fmt: skip
    # Fold 0: valid is hours 3-4, labels before 05:00: hour 3 (04:59:59.999) only.
    # Train is hours 0-2, labels before 03:00: hours 0 and 1.
    assert (s0.train.tolist(), s0.valid.tolist(), s0.test.tolist()) == ([0, 1], [3], [5, 6, 7])
    # Fold 1: valid hours 6-7 -> hour 6; train hours 0-5 with labels before 06:00 -> 0-4;
    # the test block runs to the end and holds the unlabelled hour 9 too.
    assert (s1.train.tolist(), s1.valid.tolist(), s1.test.tolist()) == (
        [0, 1, 2, 3, 4], [6], [8, 9],
    )  # fmt: skip
    assert s1.valid_start == T0 + 6 * HOUR and s1.train_start == T0


def test_the_embargo_defaults_to_the_label_horizon():
    (_, s1) = make_splits(ten_rows(), TEN, interval="1h", horizon=1)
    assert s1.embargo == HOUR
    # Train labels now resolve before 06:00 - 1h: hours 0-3; the 1-bar valid slice loses hour 6.
    assert (s1.train.tolist(), s1.valid.tolist()) == ([0, 1, 2, 3], [])
    (_, wide) = make_splits(ten_rows(), TEN, interval="1h", horizon=3)
    assert wide.embargo == 3 * HOUR and wide.train.tolist() == [0, 1]


def test_positions_index_the_frame_as_passed():
    frame = ten_rows()
    order = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4]
    shuffled = frame[order]
    cfg = TEN.model_copy(update={"embargo_bars": 0})
    for a, b in zip(
        make_splits(frame, cfg, interval="1h", horizon=1),
        make_splits(shuffled, cfg, interval="1h", horizon=1),
        strict=True,
    ):
        for part in ("train", "valid", "test"):
            assert (
                frame[getattr(a, part)]
                .sort("open_time")
                .equals(shuffled[getattr(b, part)].sort("open_time"))
            )
    assert shuffled.equals(frame[order])  # not sorted in place


def test_sliding_window_keeps_train_bars():
    cfg = TEN.model_copy(update={"embargo_bars": 0, "window": "sliding"})
    (_, s1) = make_splits(ten_rows(), cfg, interval="1h", horizon=1)
    assert s1.train_start == T0 + 3 * HOUR  # 8h - 5 bars
    assert (s1.train.tolist(), s1.valid.tolist()) == ([3, 4], [6])


def test_a_calendar_test_period():
    days = panel([("BTCUSDT", h, h + 1) for h in range(24 * 10)])
    cfg = TrainConfig(folds=None, test_period="2d", train_bars=48, embargo_bars=0)
    splits = make_splits(days, cfg, interval="1h", horizon=1)
    assert [s.test_start.day for s in splits] == [3, 5, 7, 9]
    assert splits[-1].test_end is None and splits[0].test_end == datetime(2024, 1, 5, tzinfo=UTC)


def test_the_fold_table_has_a_row_per_fold_with_its_row_counts():
    splits = make_splits(
        ten_rows(), TEN.model_copy(update={"embargo_bars": 0}), interval="1h", horizon=1
    )
    table = fold_table(ten_rows(), splits)
    assert table["fold"].to_list() == [0, 1]
    assert table.select("train_rows", "valid_rows", "test_rows").rows() == [(2, 1, 3), (5, 1, 2)]
    assert table["train_labels_before"][1] == T0 + 6 * HOUR
    assert table["train_last_label"][1] == T0 + 6 * HOUR - timedelta(milliseconds=1)
    assert table["test_end"].to_list() == [T0 + 8 * HOUR, None]


def test_impossible_windows_say_what_to_change():
    with pytest.raises(DataError, match="train_bars"):
        make_splits(ten_rows(), TEN.model_copy(update={"train_bars": 9}), interval="1h", horizon=1)
    with pytest.raises(DataError, match="valid_bars"):
        make_splits(ten_rows(), TEN.model_copy(update={"valid_bars": 5}), interval="1h", horizon=1)
    with pytest.raises(DataError, match="label_time"):
        make_splits(panel([("BTCUSDT", 0, None)]), TEN, interval="1h", horizon=1)


@pytest.mark.parametrize(
    "settings_",
    [
        {"folds": 4, "test_bars": 24},
        {"folds": None},
        {"folds": None, "test_period": "30 days"},
        {"valid_bars": 10},
        {"valid_fraction": None},
    ],
)
def test_the_config_wants_one_test_length_and_one_valid_length(settings_):
    with pytest.raises(ValidationError):
        TrainConfig(**settings_)


def test_the_shipped_config_gives_four_folds_on_the_sample(real_klines):
    cfg = load_config()
    labels = build_labels(real_klines, cfg.labels)
    splits = make_splits(
        labels, cfg.train, interval=cfg.universe.interval, horizon=cfg.labels.horizon
    )
    assert len(splits) == 4
    assert splits[0].embargo == cfg.labels.horizon * HOUR


# ---- properties over random panels ---------------------------------------------------------


@st.composite
def panels(draw) -> tuple[pl.DataFrame, int]:
    """Several symbols over up to 160 hours, each starting late or not, with bars missing at
    random; a label resolves at the close of the bar `horizon` rows later (so a missing bar
    delays it) or on the hour after it, some never do, and the rows come shuffled."""
    horizon = draw(st.integers(1, 8))
    length = draw(st.integers(60, 160))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = []
    for k in range(draw(st.integers(1, 4))):
        first = int(rng.integers(0, length // 3)) if k else 0
        missing = draw(st.sampled_from([0.0, 0.1, 0.4]))
        hours = [h for h in range(first, length) if rng.random() >= missing]
        for i, h in enumerate(hours):
            resolved = i + horizon < len(hours) and rng.random() > 0.05
            rows.append((f"S{k}", h, hours[i + horizon] + 1 if resolved else None))
    assume(any(lh is not None for _, _, lh in rows))
    # A close time (1 ms before the hour), or on the hour itself to land on a bound exactly.
    early = timedelta(milliseconds=draw(st.sampled_from([0, 1])))
    frame = panel(rows).with_columns(pl.col("label_time") - early)
    return frame[rng.permutation(frame.height)], horizon


configs = st.builds(
    lambda window, test, train_bars, valid, embargo: TrainConfig(
        window=window, train_bars=train_bars, embargo_bars=embargo, **test, **valid
    ),
    st.sampled_from(["expanding", "sliding"]),
    st.one_of(
        st.integers(3, 6).map(lambda n: {"folds": n}),
        st.integers(1, 40).map(lambda n: {"folds": None, "test_bars": n}),
        st.sampled_from(["1d", "2d", "36h"]).map(lambda p: {"folds": None, "test_period": p}),
    ),
    st.one_of(st.none(), st.integers(10, 80)),
    st.one_of(
        st.floats(0.05, 0.6).map(lambda f: {"valid_fraction": f}),
        st.integers(1, 20).map(lambda n: {"valid_fraction": None, "valid_bars": n}),
    ),
    st.one_of(st.none(), st.integers(0, 12)),
)


def _ms(column: pl.Series) -> np.ndarray:
    return column.dt.epoch("ms").to_numpy()


def _at(t: datetime) -> int:
    return int(t.timestamp() * 1000)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels(), configs)
def test_splits_purge_exactly_what_they_must(data, cfg):
    frame, horizon = data
    try:
        splits = make_splits(frame, cfg, interval="1h", horizon=horizon)
    except DataError:
        assume(False)  # a window the data is too short for; its message is tested above
    embargo_ms = (horizon if cfg.embargo_bars is None else cfg.embargo_bars) * 3_600_000
    open_ms = _ms(frame["open_time"])
    has_label = frame["label_time"].is_not_null().to_numpy()
    label_ms = np.where(has_label, _ms(frame["label_time"].fill_null(T0)), 0)
    labelled_open = open_ms[has_label]
    assert splits[0].test_start > datetime.fromtimestamp(labelled_open.min() / 1000, UTC)

    for s in splits:
        assert isinstance(s, Split) and s.embargo == timedelta(milliseconds=embargo_ms)
        test_start, valid_start, train_start = (
            _at(s.test_start),
            _at(s.valid_start),
            _at(s.train_start),
        )
        assert train_start < valid_start < test_start
        for rows, lo, hi, bound in (
            (s.train, train_start, valid_start, valid_start - embargo_ms),
            (s.valid, valid_start, test_start, test_start - embargo_ms),
        ):
            # (a) every row used resolves strictly before the next window less the embargo,
            # so before its test window starts, and before its valid window for train rows.
            assert has_label[rows].all()
            assert (label_ms[rows] < bound).all() and (
                label_ms[rows] < test_start - embargo_ms
            ).all()
            assert ((open_ms[rows] >= lo) & (open_ms[rows] < hi)).all()
            # (b) nothing is purged that did not have to be.
            window = np.flatnonzero((open_ms >= lo) & (open_ms < hi))
            dropped = np.setdiff1d(window, rows)
            assert (~has_label[dropped] | (label_ms[dropped] >= bound)).all()
        # (c) the test rows are exactly the rows in the test window, labelled or not.
        in_test = open_ms >= test_start
        if s.test_end is not None:
            in_test &= open_ms < _at(s.test_end)
        assert s.test.tolist() == np.flatnonzero(in_test).tolist()
        if cfg.window == "sliding":
            assert train_start == test_start - _at(splits[0].test_start) + labelled_open.min()

    # (d) the test windows are consecutive, do not overlap and run to the end of the data.
    assert [s.fold for s in splits] == list(range(len(splits)))
    for a, b in itertools.pairwise(splits):
        assert a.test_end == b.test_start and a.test_start < a.test_end
    assert splits[-1].test_end is None
    if cfg.folds is not None:
        assert len(splits) == cfg.folds
    tested = np.concatenate([s.test for s in splits])
    assert len(tested) == len(set(tested.tolist()))
    assert set(tested.tolist()) == set(
        np.flatnonzero(open_ms >= _at(splits[0].test_start)).tolist()
    )


def test_labels_from_build_labels_are_split_like_any_panel(real_klines):
    """The real label_time column (close of the bar h later) through the same rule."""
    bars = real_klines.filter(pl.col("open_time") < datetime(2023, 3, 1, tzinfo=UTC))
    labels = build_labels(bars, LabelsConfig(horizon=4))
    cfg = TrainConfig(embargo_bars=2)
    for s in make_splits(labels, cfg, interval="1h", horizon=4):
        assert labels["label_time"].gather(s.train).max() < s.valid_start - 2 * HOUR
        # The last training bar opens 4 + 1 + 2 bars before the valid window: h bars of label,
        # its own bar's close, and the embargo (label_time is a close time, 1 ms before the hour).
        assert labels["open_time"].gather(s.train).max() == s.valid_start - 7 * HOUR
