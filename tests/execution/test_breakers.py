"""Breakers: the halt tier trips exactly where the backtest's kill-switch does, REDUCING scales
new exposure, the caps cut orders, a halted symbol and a person's state are respected."""

from __future__ import annotations

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.config import RiskConfig
from quantlab.config.paper import PaperLimitsConfig
from quantlab.execution.breakers import DAY_MS, check, evaluate, halt_by_person, resume
from quantlab.portfolio.killswitch import kill_path
from quantlab.portfolio.orders import (
    OrderIntent,
    OrderType,
    TradingMode,
    TradingState,
    idempotency_key,
)
from quantlab.portfolio.types import Side

NO_REDUCE = PaperLimitsConfig(reduce_drawdown=None)
H = 3_600_000
T0 = 1_677_628_800_000  # 2023-03-01 00:00 UTC


def _run(path: pl.DataFrame, limits: PaperLimitsConfig, risk: RiskConfig, resume_at: set[int]):
    """Evaluate bar by bar as the session would; a person resumes at the bars in `resume_at`."""
    state, modes = TradingState(), []
    times, eq = path["open_time"].dt.epoch("ms").to_list(), path["equity"].to_list()
    for i, (t, e) in enumerate(zip(times, eq, strict=True)):
        if i in resume_at:
            state = resume(state, t, e)
        state = evaluate(state, e, t, limits, risk, prev_equity=eq[i - 1] if i else None)
        modes.append((state.mode, state.reason))
    return modes


def test_halts_on_the_bars_the_kill_switch_trips_on_a_real_equity_path():
    # The equity of an account holding BTC through Q1 2023 (real closes), cut to tight levels so
    # both triggers fire and days roll over many times.
    bars = load_sample_klines("BTCUSDT", ("2023-02", "2023-03"))
    path = bars.select("open_time", (100_000 * pl.col("close") / bars["close"][0]).alias("equity"))
    risk = RiskConfig(kill_drawdown=0.06, kill_daily_loss=0.03, kill_cooldown_bars=12)
    kills = kill_path(path, risk)
    trips = [i for i, r in enumerate(kills["reason"]) if r]
    assert {kills["reason"][i] for i in trips} == {"drawdown", "daily_loss"}, "want both triggers"
    # A person resumes on the bar the backtest's cool-down ends (where it resets peak and day).
    modes = _run(path, NO_REDUCE, risk, {i + risk.kill_cooldown_bars for i in trips})
    halted_at = [
        i
        for i, (m, _) in enumerate(modes)
        if m is TradingMode.HALTED and (i == 0 or modes[i - 1][0] is not m)
    ]
    assert halted_at == trips
    for i in trips:
        word = "drawdown" if kills["reason"][i] == "drawdown" else "daily loss"
        assert modes[i][1].startswith(word), modes[i][1]
    # Without a person, the first halt lasts to the end.
    alone = _run(path, NO_REDUCE, risk, set())
    assert all(m is TradingMode.HALTED for m, _ in alone[trips[0] :])
    assert all(m is TradingMode.ACTIVE for m, _ in alone[: trips[0]])


def test_drawdown_halts_at_exactly_the_level():
    risk = RiskConfig(kill_drawdown=0.25, kill_daily_loss=None)
    start = evaluate(TradingState(), 100.0, T0, NO_REDUCE, risk)
    level = 100.0 * (1.0 - risk.kill_drawdown)
    above = evaluate(start, level + 1e-9, T0 + H, NO_REDUCE, risk)
    at = evaluate(start, level, T0 + H, NO_REDUCE, risk)
    assert above.mode is TradingMode.ACTIVE
    assert at.mode is TradingMode.HALTED and at.since_ms == T0 + H
    assert at.reason.startswith("drawdown 25.00% >= risk.kill_drawdown 25.00%")


def test_a_new_utc_day_starts_at_the_previous_days_last_equity():
    # Synthetic equity marks: 100 at 22:00, 96 at 23:00 (the day's last bar), 91.1 at 00:00.
    risk = RiskConfig(kill_drawdown=None, kill_daily_loss=0.05)
    day2 = T0 + DAY_MS
    s = evaluate(TradingState(), 100.0, day2 - 2 * H, NO_REDUCE, risk)
    s = evaluate(s, 96.0, day2 - H, NO_REDUCE, risk, prev_equity=100.0)
    assert s.mode is TradingMode.ACTIVE and s.day_start_equity == 100.0
    s2 = evaluate(s, 91.1, day2, NO_REDUCE, risk, prev_equity=96.0)
    assert (s2.day_ms, s2.day_start_equity) == (day2, 96.0)
    assert s2.mode is TradingMode.HALTED  # 91.1 <= 96 * 0.95 = 91.2
    assert s2.reason.startswith("daily loss")
    # The same mark judged against its own bar (no previous equity) would not trip.
    assert evaluate(s, 91.1, day2, NO_REDUCE, risk).mode is TradingMode.ACTIVE


def test_evaluate_refuses_time_running_backwards():
    s = evaluate(TradingState(), 100.0, T0 + DAY_MS, NO_REDUCE, RiskConfig())
    with pytest.raises(ValueError, match="time order"):
        evaluate(s, 100.0, T0, NO_REDUCE, RiskConfig())


def test_reducing_comes_and_goes_with_the_drawdown_but_halted_stays():
    risk = RiskConfig(kill_drawdown=0.25, kill_daily_loss=None)
    limits = PaperLimitsConfig(reduce_drawdown=0.10)
    s = evaluate(TradingState(), 100.0, T0, limits, risk)
    s = evaluate(s, 90.0, T0 + H, limits, risk)
    assert s.mode is TradingMode.REDUCING and s.since_ms == T0 + H
    s = evaluate(s, 89.0, T0 + 2 * H, limits, risk)
    assert s.mode is TradingMode.REDUCING and s.since_ms == T0 + H  # still the same episode
    s = evaluate(s, 90.5, T0 + 3 * H, limits, risk)
    assert s.mode is TradingMode.ACTIVE and s.reason == ""
    s = evaluate(s, 75.0, T0 + 4 * H, limits, risk)
    assert s.mode is TradingMode.HALTED
    s = evaluate(s, 120.0, T0 + 5 * H, limits, risk)
    assert s.mode is TradingMode.HALTED and s.peak_equity == 120.0
    r = resume(s, T0 + 6 * H, 110.0)
    assert (r.mode, r.peak_equity, r.day_start_equity, r.manual) == (
        TradingMode.ACTIVE,
        110.0,
        110.0,
        False,
    )
    assert evaluate(r, 100.0, T0 + 7 * H, limits, risk).mode is TradingMode.ACTIVE  # 9% below 110


def test_a_persons_state_is_left_alone_but_tracked():
    risk = RiskConfig(kill_drawdown=0.25, kill_daily_loss=0.05)
    s = evaluate(TradingState(), 100.0, T0, NO_REDUCE, risk)
    manual_active = TradingState(
        mode=TradingMode.ACTIVE, peak_equity=100.0, day_ms=T0, day_start_equity=100.0, manual=True
    )
    after = evaluate(manual_active, 50.0, T0 + H, NO_REDUCE, risk)
    assert after.mode is TradingMode.ACTIVE and after.manual
    halted = halt_by_person(s, T0 + H, "checking the venue")
    after = evaluate(halted, 130.0, T0 + 2 * H, NO_REDUCE, risk)
    assert (
        after.mode is TradingMode.HALTED
        and after.reason == "halted by a person: checking the venue"
    )
    assert after.peak_equity == 130.0


def _intent(side: Side, qty: float, price: float) -> OrderIntent:
    key = idempotency_key("paper", "targets@v1", "BTCUSDT", T0, 0)
    return OrderIntent(
        "paper",
        key,
        "BTCUSDT",
        side,
        OrderType.MARKET,
        qty,
        None,
        None,
        T0,
        0.5,
        "targets@v1",
        price,
        "qty floored to stepSize 0.00001",
    )


@pytest.fixture(scope="module")
def price() -> float:
    return float(load_sample_klines("BTCUSDT", ("2023-03",))["close"][0])  # a real close


def test_nothing_passes_halted_or_a_halted_symbol(price):
    buy, sell = _intent(Side.BUY, 0.1, price), _intent(Side.SELL, 0.1, price)
    halted = TradingState(
        mode=TradingMode.HALTED, reason="daily loss 5.10% >= risk.kill_daily_loss 5.00%"
    )
    for order in (buy, sell):
        out, why = check(order, halted, 0.5, price, 1e5, PaperLimitsConfig(), {})
        assert out is None and "halted (daily loss" in why
        out, why = check(
            order,
            TradingState(),
            0.5,
            price,
            1e5,
            PaperLimitsConfig(),
            {"BTCUSDT": "order status unknown"},
        )
        assert out is None and why.startswith("BTCUSDT is halted (order status unknown)")
    assert check(buy, TradingState(), 0.5, price, 1e5, PaperLimitsConfig(), {"ETHUSDT": "x"}) == (
        buy,
        "",
    )


def test_reducing_passes_reductions_and_scales_additions(price):
    state = TradingState(
        mode=TradingMode.REDUCING, reason="drawdown 11.00% >= paper.limits.reduce_drawdown 10.00%"
    )
    limits = PaperLimitsConfig(
        reduce_scale=0.5, max_order_notional=None, max_position_notional=None
    )
    sell = _intent(Side.SELL, 0.2, price)
    assert check(sell, state, 0.5, price, 1e5, limits, {}) == (sell, "")
    buy = _intent(Side.BUY, 0.2, price)
    out, why = check(buy, state, 0.5, price, 1e5, limits, {}, step=1e-5)
    assert out is not None and out.qty == pytest.approx(0.1) and out.key == buy.key
    assert "scaled by 0.5" in why and out.note.startswith(buy.note) and why in out.note


def test_caps_cut_orders_and_positions(price):
    limits = PaperLimitsConfig(max_order_notional=50_000.0, max_position_notional=60_000.0)
    big = _intent(Side.BUY, 100_000.0 / price, price)
    out, why = check(big, TradingState(), 0.0, price, 2e5, limits, {}, step=1e-5)
    assert (
        out is not None
        and out.qty * price <= 50_000.0
        and out.qty * price > 50_000.0 - 1e-5 * price
    )
    assert "max_order_notional" in why
    held = 50_000.0 / price
    out, why = check(
        _intent(Side.BUY, 20_000.0 / price, price),
        TradingState(),
        held,
        price,
        2e5,
        limits,
        {},
        step=1e-5,
    )
    assert out is not None and (held + out.qty) * price == pytest.approx(60_000.0, abs=1e-5 * price)
    assert "max_position_notional" in why
    out, why = check(
        _intent(Side.BUY, 0.01, price), TradingState(), 61_000.0 / price, price, 2e5, limits, {}
    )
    assert out is None and "nothing is left" in why
    # A reduction is never cut by the position cap, even from above it.
    sell = _intent(Side.SELL, 0.1, price)
    assert check(sell, TradingState(), 61_000.0 / price, price, 2e5, limits, {}) == (sell, "")
