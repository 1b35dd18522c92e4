"""The live accuracy tracker's core (`quantlab.lifecycle.accuracy.track`): windows in resolved
label time, per symbol and ALL, live rows first and the out-of-sample fallback named as such."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from quantlab.catalog.datasets import DATASETS
from quantlab.lifecycle.accuracy import Scope, in_window, resolved, track
from quantlab.lifecycle.evaluate import score

MS = pl.Datetime("ms", "UTC")
T0 = datetime(2024, 3, 1, tzinfo=UTC)
H = 4  # label horizon in bars (hours)
SCOPE = Scope("quantlab-research", 3, "main", "auc")


def truth(days: int, symbols=("BTCUSDT", "ETHUSDT"), seed: int = 0) -> pl.DataFrame:
    """Hourly outcomes over `days`, labels resolving H hours after each bar."""
    rng = np.random.default_rng(seed)
    n = days * 24
    frames = []
    for s in symbols:
        opens = [T0 + timedelta(hours=i) for i in range(n)]
        ret = rng.normal(0, 0.01, n)
        frames.append(
            pl.DataFrame(
                {
                    "symbol": s,
                    "open_time": opens,
                    "label_up": (ret > 0).astype(np.int8),
                    "ret": ret,
                    "label_time": [o + timedelta(hours=H) for o in opens],
                }
            )
        )
    return pl.concat(frames).with_columns(pl.col("open_time", "label_time").cast(MS))


def predictions(outcomes: pl.DataFrame, hit: float, seed: int = 1) -> pl.DataFrame:
    """Scores whose sign matches the outcome on a `hit` share of rows."""
    rng = np.random.default_rng(seed)
    right = rng.random(outcomes.height) < hit
    sign = np.where(outcomes["label_up"].to_numpy() == 1, 1.0, -1.0) * np.where(right, 1, -1)
    mag = rng.uniform(0.05, 0.9, outcomes.height)
    return outcomes.select("symbol", "open_time").with_columns(
        pl.Series("score", sign * mag),
        pl.Series("prob_up", (sign * mag + 1) / 2),
    )


def test_windows_count_rows_by_resolved_label_time_and_match_the_gate_scoring():
    out_t = truth(40)
    live = predictions(out_t, 0.7)
    as_of = T0 + timedelta(days=35)  # labels after this have not resolved yet
    got = track(SCOPE, live, live.clear(), out_t, (7, 14, 30), as_of)
    DATASETS["live_accuracy"].check(got)
    end = resolved(out_t, as_of)["label_time"].max()
    assert end == as_of.replace(tzinfo=UTC)  # the newest resolved label, not the newest bar
    for days in (7, 14, 30):
        rows = got.filter(pl.col("window_days") == days)
        assert sorted(rows["symbol"]) == ["ALL", "BTCUSDT", "ETHUSDT"]
        everything = rows.filter(pl.col("symbol") == "ALL").row(0, named=True)
        assert everything["rows"] == 2 * days * 24  # (end - N days, end]: N*24 label times each
        assert everything["source"] == "live"
        assert everything["start"] == end - timedelta(days=days) and everything["end"] == end
        expect = in_window(live.join(out_t, on=["symbol", "open_time"]), end, days)
        assert everything["accuracy"] == score("main", "accuracy", expect)
        assert everything["value"] == score("main", "auc", expect)
        assert everything["metric"] == "auc"
        btc = rows.filter(pl.col("symbol") == "BTCUSDT").row(0, named=True)
        assert btc["accuracy"] == score(
            "main", "accuracy", expect.filter(pl.col("symbol") == "BTCUSDT")
        )
    assert 0.6 < got.filter(pl.col("symbol") == "ALL")["accuracy"].min() < 0.8


def test_a_row_counts_only_once_its_label_resolved():
    out_t = truth(10)
    live = predictions(out_t, 0.6)
    as_of = T0 + timedelta(days=5, minutes=30)
    got = track(SCOPE, live, live.clear(), out_t, (7,), as_of)
    all_rows = got.filter(pl.col("symbol") == "ALL").row(0, named=True)
    # bars open from T0; the first label resolves at T0+4h, the last one by as_of at T0+5d
    assert all_rows["rows"] == 2 * (5 * 24 - H + 1)
    assert all_rows["end"] == T0 + timedelta(days=5)


def test_without_live_rows_in_a_window_the_champion_reports_its_oos_rows_as_oos():
    out_t = truth(40)
    oos = predictions(out_t.filter(pl.col("open_time") < T0 + timedelta(days=30)), 0.55)
    # live rows only in the last 3 days of label time
    live = predictions(out_t.filter(pl.col("label_time") > T0 + timedelta(days=37)), 0.8, seed=2)
    as_of = T0 + timedelta(days=45)
    got = track(SCOPE, live, oos, out_t, (2, 14, 30), as_of).filter(pl.col("symbol") == "ALL")
    src = dict(zip(got["window_days"], got["source"], strict=True))
    assert src == {2: "live", 14: "live", 30: "live"}  # live rows fall in every window
    # a window that holds no live row: the out-of-sample rows, named as such
    stale = track(SCOPE, live.clear(), oos, out_t, (7, 30), as_of).filter(pl.col("symbol") == "ALL")
    assert stale["source"].to_list() == ["oos", "oos"]
    w7, w30 = stale.row(0, named=True), stale.row(1, named=True)
    assert w7["rows"] == 0 and w7["value"] is None  # oos rows end before the last 7 days
    assert w30["rows"] > 0 and w30["accuracy"] is not None


def test_no_resolved_label_gives_no_row():
    out_t = truth(3)
    got = track(SCOPE, predictions(out_t, 0.5), out_t.clear(), out_t, (7,), T0)
    assert got.is_empty()


def test_a_regime_model_is_scored_on_its_six_probabilities():
    from quantlab.lifecycle.evaluate import REGIME_COLUMNS

    rng = np.random.default_rng(3)
    n = 24 * 8
    opens = [T0 + timedelta(hours=i) for i in range(n)]
    y = rng.integers(0, 6, n)
    t = pl.DataFrame(
        {
            "symbol": "BTCUSDT",
            "open_time": opens,
            "y": y,
            "label_time": [o + timedelta(hours=H) for o in opens],
        }
    ).with_columns(pl.col("open_time", "label_time").cast(MS))
    probs = rng.dirichlet(np.ones(6), n)
    probs[np.arange(n), y] += 1.0  # the right regime most probable on every row
    probs /= probs.sum(axis=1, keepdims=True)
    live = t.select("symbol", "open_time").with_columns(
        *(pl.Series(c, probs[:, i]) for i, c in enumerate(REGIME_COLUMNS))
    )
    scope = Scope("quantlab-regime-BTCUSDT", 1, "regime", "logloss")
    got = track(scope, live, live.clear(), t, (7,), T0 + timedelta(days=9))
    row = got.filter(pl.col("symbol") == "ALL").row(0, named=True)
    assert row["accuracy"] == 1.0 and row["metric"] == "logloss" and row["value"] > 0
