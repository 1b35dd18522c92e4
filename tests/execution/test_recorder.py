"""Round trips from a ledger's fills, with fees in both assets, partial exits and predictions.

The fills are synthetic (labelled so) at real BTCUSDT closes from the shipped sample; expected
values are worked from the fills' quote flows in each test."""

from __future__ import annotations

import polars as pl
import pytest

from execution.fakes import FakeLedger
from helpers import load_sample_klines
from quantlab.errors import DataError
from quantlab.execution.recorder import build_round_trips, realised, record

H = 3_600_000
FEE = 0.001


@pytest.fixture(scope="module")
def px() -> list[tuple[int, float]]:
    k = load_sample_klines("BTCUSDT", ("2023-03",))
    return list(zip(k["open_time"].dt.epoch("ms").to_list(), k["close"].to_list(), strict=True))


def _fill(
    ledger, n: int, side: str, qty: float, at: tuple[int, float], client: str, fee_asset=None
):
    t, price = at
    fee_asset = fee_asset or ("BTC" if side == "BUY" else "USDT")
    fee = qty * FEE if fee_asset == "BTC" else qty * price * FEE
    ledger.book_fill("paper", symbol="BTCUSDT", trade_id=str(n), client_id=client, side=side, qty=qty,
                     price=price, fee=fee, fee_asset=fee_asset, time_ms=t + H)  # fmt: skip
    return qty * price, fee if fee_asset == "USDT" else 0.0


def _predictions(px, *idx):
    times = [px[i][0] for i in idx]
    return pl.DataFrame(
        {
            "symbol": ["BTCUSDT"] * len(idx),
            "open_time": times,
            "score": [0.7] * len(idx),
            "class": [2] * len(idx),
        }
    ).with_columns(pl.col("open_time").cast(pl.Datetime("ms", "UTC")))


def test_one_round_trip_through_adds_and_partial_exits(px):
    led = FakeLedger()
    for c, i in (("a", 10), ("b", 12), ("c", 20), ("d", 22)):
        led.book_order("paper", client_id=c, symbol="BTCUSDT", side="X", decision_ms=px[i - 1][0])
    b1, _ = _fill(led, 1, "BUY", 0.5, px[10], "a")
    b2, _ = _fill(led, 2, "BUY", 0.3, px[12], "b")
    held = 0.8 * (1 - FEE)  # the buys' fees were paid in BTC
    s1, f1 = _fill(led, 3, "SELL", 0.4, px[20], "c")
    assert build_round_trips(led.fills("paper")) == []  # still open
    s2, f2 = _fill(led, 4, "SELL", round(held - 0.4, 8), px[22], "d")
    (rt,) = build_round_trips(
        led.fills("paper"), led.orders_frame("paper"), _predictions(px, 9, 11)
    )
    assert rt["qty"] == pytest.approx(0.8)
    assert rt["entry_price"] == pytest.approx((b1 + b2) / 0.8)
    assert rt["exit_price"] == pytest.approx((s1 + s2) / held)
    assert rt["pnl"] == pytest.approx(s1 + s2 - b1 - b2 - f1 - f2)
    assert rt["fees"] == pytest.approx(FEE * (b1 + b2) + f1 + f2)  # BTC fees at their fill price
    assert (rt["entry_ms"], rt["exit_ms"]) == (px[10][0] + H, px[22][0] + H)
    assert (rt["entry_score"], rt["entry_class"], rt["side"]) == (0.7, 2, "long")


def test_record_is_idempotent_and_realised_judges_direction_and_fees(px):
    led = FakeLedger()
    up = max(range(30, 60), key=lambda i: px[i + 1][1] - px[i][1])  # a real hour that rose most
    b, _ = _fill(led, 1, "BUY", 1.0, px[up], "a")
    s, f = _fill(led, 2, "SELL", 1.0 - FEE, px[up + 1], "b")
    b2, _ = _fill(led, 3, "BUY", 1.0, px[100], "c")
    s2, f2 = _fill(
        led, 4, "SELL", 1.0 - FEE, px[100], "e"
    )  # same price: right by nothing, fees lose
    assert record(led, "paper", None) == 2
    assert record(led, "paper", None) == 0
    out = realised(led, "paper", interval_ms=H).sort("entry_ms")
    assert out["direction_right"].to_list() == [True, False]
    assert out["profitable"].to_list() == [s - b - f > 0, False]
    assert out["pnl"][1] == pytest.approx(s2 - b2 - f2) and out["pnl"][1] < 0
    assert out["return"][0] == pytest.approx((s - b - f) / b)
    assert out["holding_bars"].to_list() == [1.0, 0.0]
    assert out["entry_score"].null_count() == 2  # no predictions given


def test_a_sell_floored_to_the_step_leaves_dust_and_still_closes(px):
    led = FakeLedger()
    _fill(led, 1, "BUY", 0.12345, px[5], "a")
    _fill(led, 2, "SELL", 0.12332, px[8], "b")  # 0.12345 * 0.999 = 0.12332655, floored to 1e-5
    (rt,) = build_round_trips(led.fills("paper"))
    assert rt["exit_ms"] == px[8][0] + H


def test_a_fill_through_zero_closes_one_trip_and_opens_the_next(px):
    led = FakeLedger()
    _fill(led, 1, "BUY", 1.0, px[5], "a", fee_asset="USDT")
    _fill(led, 2, "SELL", 1.5, px[8], "b")
    _fill(led, 3, "BUY", 0.5, px[9], "c", fee_asset="USDT")
    long, short = build_round_trips(led.fills("paper"))
    assert (long["side"], long["qty"], short["side"], short["qty"]) == (
        "long",
        1.0,
        "short",
        pytest.approx(0.5),
    )
    sell_fee = 1.5 * px[8][1] * FEE
    assert long["pnl"] == pytest.approx(px[8][1] - px[5][1] - px[5][1] * FEE - sell_fee / 1.5)
    assert short["entry_ms"] == long["exit_ms"] == px[8][0] + H


def test_a_fee_in_a_third_asset_is_an_error(px):
    led = FakeLedger()
    led.book_fill("paper", symbol="BTCUSDT", trade_id="1", client_id="a", side="BUY", qty=1.0,
                  price=px[0][1], fee=0.01, fee_asset="BNB", time_ms=px[0][0])  # fmt: skip
    with pytest.raises(DataError, match="BNB"):
        build_round_trips(led.fills("paper"))
