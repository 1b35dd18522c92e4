"""Walk-forward splits by time, purged and embargoed: a pure core with no I/O.

The one way quantlab splits a (symbol, open_time) panel for training. The test blocks are
windows of time after an initial span; a row may train for a block only if its label is
resolved (`label_time`) strictly before the block starts minus the embargo, and the inner
validation slice at the end of each training window purges its own training rows the same
way. Windows are times, never row counts, so a panel with missing bars or a symbol that
starts late is split like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from quantlab.config import TrainConfig
from quantlab.errors import ConfigError, DataError
from quantlab.vocab import INTERVAL_MS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class Split:
    """One walk-forward fold: row positions into the frame `make_splits` was given.

    `train` rows lie in [train_start, valid_start) and resolve before valid_start - embargo;
    `valid` rows lie in [valid_start, test_start) and resolve before test_start - embargo;
    `test` rows are every row in [test_start, test_end), labelled or not.
    """

    fold: int
    test_start: datetime
    test_end: datetime | None  # exclusive; None: the last block runs to the end of the data
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    train_start: datetime
    valid_start: datetime
    embargo: timedelta

    @property
    def train_label_before(self) -> datetime:
        """Every training label resolves strictly before this time."""
        return self.valid_start - self.embargo

    @property
    def valid_label_before(self) -> datetime:
        """Every validation label resolves strictly before this time."""
        return self.test_start - self.embargo


def _ms(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(milliseconds=1)


def _time(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


def _epoch_ms(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].dt.epoch("ms").fill_null(np.iinfo(np.int64).max).to_numpy()


def _test_starts(start: int, first_test: int, end: int, bar: int, cfg: TrainConfig) -> list[int]:
    """Start times (epoch ms) of the test blocks; the last block runs to the end."""
    if cfg.folds is not None:
        slots = (end - first_test) // bar
        if slots < cfg.folds:
            raise DataError(
                f"{slots} bars follow the initial training span, too few for {cfg.folds} test "
                "folds; lower train.folds or train.train_bars / min_train_fraction, or add data"
            )
        return [first_test + (k * slots // cfg.folds) * bar for k in range(cfg.folds)]
    if cfg.test_bars is not None:
        return list(range(first_test, end, cfg.test_bars * bar))
    starts = pl.datetime_range(
        _time(first_test),
        _time(end),
        interval=cfg.test_period,
        closed="left",
        time_unit="ms",
        time_zone="UTC",
        eager=True,
    )
    return starts.dt.epoch("ms").to_list()


def make_splits(
    frame: pl.DataFrame, cfg: TrainConfig, *, interval: str, horizon: int
) -> list[Split]:
    """The walk-forward folds of `frame` (KEY and `label_time`, null while unresolved).

    `interval` is the bar length; `horizon` the label horizon in bars, the embargo when
    `cfg.embargo_bars` is None. The timeline runs from the first to the last bar that has a
    label; rows without one never train or validate, but fall in a test block by their time.
    """
    if interval not in INTERVAL_MS:
        raise ConfigError(f"unknown interval {interval!r}; use one of {sorted(INTERVAL_MS)}")
    bar = INTERVAL_MS[interval]
    embargo = bar * (horizon if cfg.embargo_bars is None else cfg.embargo_bars)
    open_ms = _epoch_ms(frame, "open_time")
    label_ms = _epoch_ms(frame, "label_time")  # unresolved: int64 max, never before a bound
    labelled = frame["label_time"].is_not_null().to_numpy()
    if not labelled.any():
        raise DataError(
            f"none of the {frame.height} rows has a label_time, so nothing can train; "
            "build labels on bars that reach past the label horizon"
        )
    start, end = int(open_ms[labelled].min()), int(open_ms[labelled].max()) + bar
    slots = (end - start) // bar
    initial = cfg.train_bars or int(slots * cfg.min_train_fraction)
    if not 0 < initial < slots:
        raise DataError(
            f"an initial training span of {initial} bars leaves no test block in the {slots} "
            f"bars from {_time(start)} to {_time(end)}; set train.train_bars or "
            "min_train_fraction so that data follows it"
        )
    starts = _test_starts(start, start + initial * bar, end, bar, cfg)
    splits = []
    for k, test_start in enumerate(starts):
        test_end = starts[k + 1] if k + 1 < len(starts) else None
        train_start = start if cfg.window == "expanding" else test_start - initial * bar
        window = (test_start - train_start) // bar
        valid = cfg.valid_bars or max(1, int(window * cfg.valid_fraction))
        if valid >= window:
            raise DataError(
                f"fold {k}: a validation slice of {valid} bars fills the {window}-bar training "
                "window; lower train.valid_bars / valid_fraction or lengthen train.train_bars"
            )
        valid_start = test_start - valid * bar
        in_train = (open_ms >= train_start) & (open_ms < valid_start)
        in_valid = (open_ms >= valid_start) & (open_ms < test_start)
        in_test = open_ms >= test_start
        if test_end is not None:
            in_test &= open_ms < test_end
        splits.append(
            Split(
                fold=k,
                test_start=_time(test_start),
                test_end=None if test_end is None else _time(test_end),
                train=np.flatnonzero(in_train & (label_ms < valid_start - embargo)),
                valid=np.flatnonzero(in_valid & (label_ms < test_start - embargo)),
                test=np.flatnonzero(in_test),
                train_start=_time(train_start),
                valid_start=_time(valid_start),
                embargo=timedelta(milliseconds=embargo),
            )
        )
    return splits


def fold_table(frame: pl.DataFrame, splits: list[Split]) -> pl.DataFrame:
    """One row per fold: its windows, the time its labels must resolve before, rows in each."""

    def last_label(rows: np.ndarray) -> datetime | None:
        return frame["label_time"].gather(rows).max() if len(rows) else None

    return pl.DataFrame(
        [
            {
                "fold": s.fold,
                "train_start": s.train_start,
                "train_end": s.valid_start,
                "train_labels_before": s.train_label_before,
                "train_last_label": last_label(s.train),
                "valid_start": s.valid_start,
                "valid_end": s.test_start,
                "valid_labels_before": s.valid_label_before,
                "valid_last_label": last_label(s.valid),
                "test_start": s.test_start,
                "test_end": s.test_end,
                "train_rows": len(s.train),
                "valid_rows": len(s.valid),
                "test_rows": len(s.test),
            }
            for s in splits
        ],
        schema_overrides={"test_end": pl.Datetime("ms", "UTC")},
    )
