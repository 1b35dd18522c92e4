"""score_live's pure parts: which rows a champion has not seen, which it already scored, the
rows it writes, and which registered models the config asks for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from helpers import write_config
from quantlab.catalog.datasets import DATASETS
from quantlab.errors import DataError
from quantlab.lifecycle.live import (
    Model,
    configured_models,
    live_rows,
    not_scored,
    train_end,
    unseen,
)
from quantlab.tracking.registry import ModelRef

T0 = datetime(2024, 3, 1, tzinfo=UTC)
MS = pl.Datetime("ms", "UTC")


def bars(n: int, symbols=("BTCUSDT", "ETHUSDT")) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [s for s in symbols for _ in range(n)],
            "open_time": [T0 + timedelta(hours=i) for _ in symbols for i in range(n)],
            "f": [float(i) for _ in symbols for i in range(n)],
        }
    ).with_columns(pl.col("open_time").cast(MS))


def test_unseen_starts_strictly_after_train_end():
    end = T0 + timedelta(hours=5)
    got = unseen(bars(10), end, None)
    assert got["open_time"].min() == T0 + timedelta(hours=6)  # the bar at train_end: not unseen
    assert got.height == 2 * 4
    assert unseen(bars(10), end, ("ETHUSDT",))["symbol"].unique().to_list() == ["ETHUSDT"]
    assert unseen(bars(10), T0 + timedelta(hours=9), None).is_empty()


def test_rows_already_scored_are_left_out():
    rows = bars(4)
    scored = rows.filter(
        pl.col("open_time") < T0 + timedelta(hours=2), pl.col("symbol") == "BTCUSDT"
    )
    got = not_scored(rows, scored.select("symbol", "open_time"))
    assert got.height == 8 - 2
    assert not_scored(rows, rows.clear()).height == 8


def test_live_rows_fill_the_schema_and_leave_the_other_family_null():
    ref = ModelRef("quantlab-research", 4, None, "")
    predicted = (
        bars(3)
        .select("symbol", "open_time")
        .with_columns(pl.lit(0.6).alias("prob_up"), pl.lit(0.2).alias("score"))
    )
    schema = dict(DATASETS["live_predictions"].schema)
    got = live_rows(ref, predicted, schema, T0)
    DATASETS["live_predictions"].check(got)
    assert got["version"].unique().to_list() == [4] and got["model"].unique().to_list() == [
        ref.name
    ]
    assert got["p_Squeeze"].is_null().all() and got["prob_down"].is_null().all()
    assert (got["score"] == 0.2).all() and (got["scored_at"] == T0).all()


def test_train_end_tag():
    ref = ModelRef("m", 1, None, "", {"quantlab.train_end": "2024-03-01T05:00:00+00:00"})
    assert train_end(ref) == T0 + timedelta(hours=5)
    naive = ModelRef("m", 1, None, "", {"quantlab.train_end": "2024-03-01T05:00:00"})
    assert train_end(naive) == T0 + timedelta(hours=5)
    with pytest.raises(DataError, match=r"no quantlab\.train_end"):
        train_end(ModelRef("m", 1, None, ""))


@pytest.mark.parametrize(
    ("train", "regime", "want"),
    [
        ({"register_as": "qr"}, {"enabled": False}, [Model("qr", "main", None)]),
        (
            {"register_as": "qr", "per_symbol": True},
            {"enabled": True, "register_as": "rg"},
            [
                Model("qr-BTCUSDT", "main", "BTCUSDT"),
                Model("qr-ETHUSDT", "main", "ETHUSDT"),
                Model("rg-BTCUSDT", "regime", "BTCUSDT"),
                Model("rg-ETHUSDT", "regime", "ETHUSDT"),
            ],
        ),
        ({"register_as": None}, {"enabled": False}, []),
    ],
)
def test_configured_models(tmp_path, train, regime, want):
    from quantlab.config import load_config

    config = load_config(write_config(tmp_path, train=train, lifecycle={"regime": regime}))
    assert configured_models(config) == want
