"""plan_orders on real March 2023 BTC/ETH 1h closes and the real spot filters (data/sample)."""

from __future__ import annotations

import math

import polars as pl
import pytest

import engine_data as data
from quantlab.config import BacktestConfig
from quantlab.config.paper import PaperConfig
from quantlab.execution.planner import MARKET_BUY_BUFFER, lock_for, plan_orders
from quantlab.portfolio.orders import (
    Balance,
    OrderType,
    TimeInForce,
    idempotency_key,
    split_symbol,
)
from quantlab.portfolio.types import Side
from quantlab.portfolio.venue import floor_to_step

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
ASSETS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}
EQUITY = 100_000.0
BT = BacktestConfig()


@pytest.fixture(scope="module")
def rules():
    return data.spot_rules(SYMBOLS)


@pytest.fixture(scope="module")
def closes() -> pl.DataFrame:
    """The real closes of one decision bar (2023-03-10 12:00 UTC, a volatile day)."""
    bars = pl.concat([data.load_klines(s, "2023-03") for s in SYMBOLS])
    at = bars.filter(pl.col("open_time") == data.utc("2023-03-10 12:00"))
    assert at.height == 2
    return at.select("symbol", "open_time", pl.col("close").alias("price")).sort("symbol")


def latest(closes: pl.DataFrame, weights: dict[str, float | None]) -> pl.DataFrame:
    return closes.with_columns(
        pl.col("symbol")
        .replace_strict(weights, default=None, return_dtype=pl.Float64)
        .alias("target_weight")
    )


def usdt(amount: float = EQUITY, **base: float) -> dict[str, Balance]:
    out = {"USDT": Balance("USDT", amount, 0.0)}
    out.update({a: Balance(a, q, 0.0) for a, q in base.items()})
    return out


def plan(closes, weights, rules, positions=None, balances=None, equity=EQUITY, cfg=None,
         attempts=None):  # fmt: skip
    return plan_orders(
        latest(closes, weights), positions or {}, balances or usdt(), equity, rules, ASSETS,
        cfg or PaperConfig(), BT, "acct", "targets@v3", attempts or {},
    )  # fmt: skip


def price_of(closes, symbol) -> float:
    return closes.filter(pl.col("symbol") == symbol)["price"].item()


def test_sizes_from_weight_equity_and_close_floored_to_step(closes, rules):
    p = plan(closes, {"BTCUSDT": 0.3, "ETHUSDT": 0.2}, rules, attempts={"ETHUSDT": 2})
    assert p.skipped.height == 0
    by = {i.symbol: i for i in p.intents}
    decision_ms = int(closes["open_time"].dt.epoch("ms")[0])
    for symbol, w, step in (("BTCUSDT", 0.3, 1e-5), ("ETHUSDT", 0.2, 1e-4)):
        it, close = by[symbol], price_of(closes, symbol)
        assert it.side is Side.BUY and it.type is OrderType.MARKET and it.price is None
        assert it.qty == floor_to_step(w * EQUITY / close, step)
        assert 0 <= w * EQUITY / close - it.qty < step
        assert it.reference_price == close and it.decision_ms == decision_ms
        assert it.target_weight == w
        assert "floored to stepSize" in it.note
    assert by["ETHUSDT"].key == idempotency_key("acct", "targets@v3", "ETHUSDT", decision_ms, 2)
    assert by["BTCUSDT"].key == idempotency_key("acct", "targets@v3", "BTCUSDT", decision_ms, 0)


def test_rebalance_band_as_the_engine_applies_it(closes, rules):
    btc = price_of(closes, "BTCUSDT")
    held = 0.3 * EQUITY / btc  # exactly at weight 0.3
    base = usdt(EQUITY * 0.7, BTC=held)
    inside = plan(closes, {"BTCUSDT": 0.31}, rules, {"BTCUSDT": held}, base)
    assert inside.intents == [] and inside.skipped.height == 0
    outside = plan(closes, {"BTCUSDT": 0.25}, rules, {"BTCUSDT": held}, base)
    (it,) = outside.intents
    assert it.side is Side.SELL and it.qty == floor_to_step(0.05 * EQUITY / btc, 1e-5)
    # a weight of 0.01 is inside the band of 0.02, but flattening always trades: exactly the qty
    small = floor_to_step(0.01 * EQUITY / btc, 1e-5)  # a position is always on the step grid
    flat = plan(closes, {"BTCUSDT": 0.0}, rules, {"BTCUSDT": small}, usdt(BTC=small))
    (it,) = flat.intents
    assert it.side is Side.SELL and it.qty == small and it.note == ""


def test_orders_the_exchange_refuses_are_skipped_with_reason_and_sentence(closes, rules):
    p = plan(closes, {"BTCUSDT": 0.00002, "ETHUSDT": 0.2}, rules)  # 2 USDT of BTC < 5 USDT
    assert [i.symbol for i in p.intents] == ["ETHUSDT"]
    row = p.skipped.row(0, named=True)
    assert row["symbol"] == "BTCUSDT" and row["reason"] == "min_notional"
    assert "< min notional 5" in row["detail"]
    tiny = plan(closes, {"BTCUSDT": 0.0001}, rules, equity=10.0, balances=usdt(10.0))
    row = tiny.skipped.row(0, named=True)
    assert row["reason"] == "step_size" and "floors to 0 at stepSize" in row["detail"]
    assert tiny.intents == []


def test_max_qty_caps_with_a_note(closes, rules):
    huge = 1e9
    p = plan(closes, {"BTCUSDT": 1.0}, rules, equity=huge, balances=usdt(huge * 2))
    (it,) = p.intents
    assert it.qty == 9000.0 and "capped at maxQty 9000" in it.note


def test_spot_short_is_skipped_as_the_backtest_rejects_it(closes, rules):
    held = 0.1 * EQUITY / price_of(closes, "BTCUSDT")
    p = plan(closes, {"BTCUSDT": -0.1}, rules, {"BTCUSDT": held}, usdt(BTC=held))
    assert p.intents == []
    row = p.skipped.row(0, named=True)
    assert row["reason"] == "short_not_allowed" and row["side"] == "SELL"
    assert "long-only" in row["detail"]


def test_sell_is_capped_at_the_free_base(closes, rules):
    held = 0.5
    after_fee = held * (1 - 0.001)  # the buy's fee was paid in BTC
    p = plan(closes, {"BTCUSDT": 0.0}, rules, {"BTCUSDT": held}, usdt(BTC=after_fee))
    (it,) = p.intents
    assert it.side is Side.SELL and it.qty == floor_to_step(after_fee, 1e-5) < held
    assert "capped at the free BTC" in it.note
    gone = plan(closes, {"BTCUSDT": 0.0}, rules, {"BTCUSDT": held}, usdt())
    assert gone.intents == [] and gone.skipped["reason"].to_list() == ["step_size"]


def test_buys_are_cut_to_the_free_quote_across_the_plan(closes, rules):
    p = plan(closes, {"BTCUSDT": 0.6, "ETHUSDT": 0.6}, rules)
    spent = sum(lock_for(i, BT.fees.spot.taker, ASSETS)[1] for i in p.intents)
    assert spent <= EQUITY
    eth = next(i for i in p.intents if i.symbol == "ETHUSDT")
    assert "what the free USDT buys" in eth.note
    broke = plan(closes, {"BTCUSDT": 0.5}, rules, balances=usdt(0.0))
    assert broke.skipped["reason"].to_list() == ["margin"]


def test_sells_come_before_buys(closes, rules):
    held = 0.5 * EQUITY / price_of(closes, "BTCUSDT")
    p = plan(closes, {"BTCUSDT": 0.0, "ETHUSDT": 0.3}, rules, {"BTCUSDT": held},
             usdt(EQUITY / 2, BTC=held))  # fmt: skip
    assert [(i.symbol, i.side) for i in p.intents] == [
        ("BTCUSDT", Side.SELL), ("ETHUSDT", Side.BUY)
    ]  # fmt: skip


@pytest.mark.parametrize("tif", ["GTC", "IOC", "FOK"])
def test_limit_price_is_passive_on_the_tick(closes, rules, tif):
    cfg = PaperConfig(order_type="limit", time_in_force=tif, limit_offset_bps=7.0)
    eth = price_of(closes, "ETHUSDT")
    held = 0.3 * EQUITY / eth
    p = plan(closes, {"BTCUSDT": 0.2, "ETHUSDT": 0.0}, rules, {"ETHUSDT": held},
             usdt(EQUITY, ETH=held), cfg=cfg)  # fmt: skip
    by = {i.symbol: i for i in p.intents}
    buy, sell = by["BTCUSDT"], by["ETHUSDT"]
    raw_buy = price_of(closes, "BTCUSDT") * (1 - 7e-4)
    raw_sell = eth * (1 + 7e-4)
    assert buy.type is OrderType.LIMIT and buy.tif is TimeInForce(tif)
    assert raw_buy - 0.01 < buy.price <= raw_buy  # down for a buy
    assert raw_sell <= sell.price < raw_sell + 0.01  # up for a sell
    for it in (buy, sell):
        assert math.isclose(it.price / 0.01, round(it.price / 0.01), abs_tol=1e-6)
        assert "put on tickSize" in it.note
    assert lock_for(buy, 0.001) == ("USDT", buy.qty * buy.price * 1.001)


def test_lock_for_market_buy_carries_the_buffer_and_sell_locks_base(closes, rules):
    p = plan(closes, {"BTCUSDT": 0.2}, rules)
    (buy,) = p.intents
    asset, amount = lock_for(buy, 0.001)
    assert asset == "USDT"
    assert amount == pytest.approx(buy.qty * buy.reference_price * (1.001 + MARKET_BUY_BUFFER))
    held = 0.2 * EQUITY / buy.reference_price
    (sell,) = plan(closes, {"BTCUSDT": 0.0}, rules, {"BTCUSDT": held}, usdt(BTC=held)).intents
    assert lock_for(sell, 0.001, ASSETS) == ("BTC", sell.qty)
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
    with pytest.raises(ValueError, match="pass assets"):
        split_symbol("XYZ")


def test_a_null_weight_is_no_decision(closes, rules):
    p = plan(closes, {"BTCUSDT": None, "ETHUSDT": 0.1}, rules)
    assert [i.symbol for i in p.intents] == ["ETHUSDT"] and p.skipped.height == 0
