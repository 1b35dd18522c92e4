"""Tiered circuit breakers: the account's trading state and the pre-trade check of each order.

Tiers (nautilus' TradingState, research/paper-execution.md §6):
- HALTED: the backtest's kill-switch (`portfolio.killswitch.kill_step` on `risk.kill_drawdown`
  and `risk.kill_daily_loss`) tripped, so the paper account halts on exactly the bar where the
  backtest would. The backtest resumes by itself after `risk.kill_cooldown_bars`; a paper account
  with real orders behind it waits for a person (`resume`), who should look first.
- REDUCING: drawdown from the peak at or beyond `paper.limits.reduce_drawdown`: orders that shrink
  |position| pass, orders that add exposure are scaled by `reduce_scale`. It lifts by itself
  once the drawdown recovers below the level.
- ACTIVE: everything passes, subject to the notional caps.
A state a person set (`manual`) is never changed by `evaluate`, which only keeps its peak and
day-start tracking current. Pure functions: the session reads and writes the state through the
ledger (`trading_state`, `set_trading_state`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from quantlab.config import RiskConfig
from quantlab.config.paper import PaperLimitsConfig
from quantlab.portfolio.killswitch import DAILY_LOSS, DRAWDOWN, kill_step
from quantlab.portfolio.orders import OrderIntent, TradingMode, TradingState
from quantlab.portfolio.types import Side
from quantlab.portfolio.venue import floor_to_step

DAY_MS = 86_400_000
_TOL = 1e-12  # relative: a notional equal to its cap is not above it


def day_of(ms: int) -> int:
    """00:00 UTC of the day `ms` falls in."""
    return ms - ms % DAY_MS


def track(
    state: TradingState, equity: float, now_ms: int, prev_equity: float | None = None
) -> TradingState:
    """The state with its peak and the UTC day's start equity brought up to `equity` at `now_ms`.

    Same rule as `kill_path`: the peak counts the current equity; on a new UTC day the day starts
    at the equity of the previous mark (`prev_equity`, the last equity recorded before `now_ms`;
    without it, the current equity); a fresh state (day_ms 0) starts both at `equity`.
    """
    day = day_of(now_ms)
    if state.day_ms == 0:
        return replace(state, peak_equity=equity, day_ms=day, day_start_equity=equity)
    if day < state.day_ms:
        raise ValueError(
            f"now_ms {now_ms} falls before the state's day {state.day_ms}: breakers are evaluated "
            "in time order; pass the current bar's time"
        )
    day_start = state.day_start_equity
    if day != state.day_ms:
        day_start = equity if prev_equity is None else prev_equity
    return replace(
        state, peak_equity=max(state.peak_equity, equity), day_ms=day, day_start_equity=day_start
    )


def _limit(x: float | None) -> float:
    return math.inf if x is None else x


def _moved(state: TradingState, mode: TradingMode, reason: str, now_ms: int) -> TradingState:
    since = state.since_ms if state.mode is mode else now_ms
    return replace(state, mode=mode, reason=reason, since_ms=since)


def evaluate(
    state: TradingState,
    equity: float,
    now_ms: int,
    limits: PaperLimitsConfig,
    risk: RiskConfig,
    prev_equity: float | None = None,
) -> TradingState:
    """The account's trading state after marking `equity` at `now_ms`.

    `now_ms` is the open time of the bar whose close `equity` was marked at (the rows of
    `kill_path`), `prev_equity` the equity marked at the bar before (see `track`). HALTED and
    manual states only have their tracking updated: a person lifts them with `resume`.
    """
    tracked = track(state, equity, now_ms, prev_equity)
    if tracked.manual or tracked.mode is TradingMode.HALTED:
        return tracked
    peak, start = tracked.peak_equity, tracked.day_start_equity
    code = kill_step(equity, peak, start, _limit(risk.kill_drawdown), _limit(risk.kill_daily_loss))
    after = (
        f"the backtest would hold flat for {risk.kill_cooldown_bars} bars (risk.kill_cooldown_bars); "
        "a person resumes the paper account (quantlab paper resume) after looking"
    )
    drawdown = 1.0 - equity / peak if peak > 0 else 0.0
    if code == DRAWDOWN:
        why = (
            f"drawdown {drawdown:.2%} >= risk.kill_drawdown {risk.kill_drawdown:.2%} "
            f"(equity {equity:,.2f}, peak {peak:,.2f}); {after}"
        )
        return _moved(tracked, TradingMode.HALTED, why, now_ms)
    if code == DAILY_LOSS:
        loss = 1.0 - equity / start
        why = (
            f"daily loss {loss:.2%} >= risk.kill_daily_loss {risk.kill_daily_loss:.2%} "
            f"(equity {equity:,.2f}, day start {start:,.2f} at 00:00 UTC); {after}"
        )
        return _moved(tracked, TradingMode.HALTED, why, now_ms)
    # Compared as kill_step compares, so a drawdown exactly at the level counts.
    if limits.reduce_drawdown is not None and equity <= peak * (1.0 - limits.reduce_drawdown):
        why = (
            f"drawdown {drawdown:.2%} >= paper.limits.reduce_drawdown {limits.reduce_drawdown:.2%}: "
            f"new exposure is scaled by {limits.reduce_scale:g} until it recovers"
        )
        return _moved(tracked, TradingMode.REDUCING, why, now_ms)
    return _moved(tracked, TradingMode.ACTIVE, "", now_ms)


def resume(state: TradingState, now_ms: int, equity: float) -> TradingState:
    """ACTIVE again, by a person: the peak and the day's start restart at `equity` (as the
    backtest restarts them after its cool-down), and the breakers apply again."""
    return TradingState(
        mode=TradingMode.ACTIVE,
        reason=f"resumed by a person (was {state.mode.value}: {state.reason or 'no reason given'})",
        since_ms=now_ms,
        peak_equity=equity,
        day_ms=day_of(now_ms),
        day_start_equity=equity,
        manual=False,
    )


def halt_by_person(state: TradingState, now_ms: int, reason: str) -> TradingState:
    """HALTED by a person (`quantlab paper halt`): manual, so `evaluate` leaves it alone."""
    return replace(
        state,
        mode=TradingMode.HALTED,
        reason=f"halted by a person: {reason}",
        since_ms=now_ms,
        manual=True,
    )


def check(
    intent: OrderIntent,
    state: TradingState,
    position_qty: float,
    price: float,
    equity: float,
    limits: PaperLimitsConfig,
    halted_symbols: dict[str, str],
    step: float = 0.0,
) -> tuple[OrderIntent | None, str]:
    """(the order to send, why it changed) or (None, why it is denied); ("" when unchanged).

    `price` values the order and the position (the decision close, or the limit price);
    `step` is the symbol's stepSize, to which a cut quantity is floored. A scaled or cut order is
    still the order for its idempotency key, so the key stays and the cut is added to its note.
    The order cap applies to every order (a fat-finger guard); the REDUCING scale and the
    position cap only to orders that add exposure. A cut order may fall below minNotional: the
    caller checks it against the venue rules again.
    """
    sym = intent.symbol
    if sym in halted_symbols:
        return None, (
            f"{sym} is halted ({halted_symbols[sym]}); nothing is sent for it until a person "
            "clears it (quantlab paper clear)"
        )
    if state.mode is TradingMode.HALTED:
        return None, (
            f"trading is halted ({state.reason}); no new order is sent until a person resumes it"
        )
    if not (price > 0 and math.isfinite(price)):
        return (
            None,
            f"no usable price for {sym} ({price}); the order cannot be valued against the limits",
        )
    if equity <= 0:
        return None, f"account equity is {equity:,.2f}; no new order is sent"
    sign = 1.0 if intent.side is Side.BUY else -1.0
    reduces = abs(position_qty + sign * intent.qty) < abs(position_qty)
    qty = intent.qty
    notes: list[str] = []
    if state.mode is TradingMode.REDUCING and not reduces:
        qty *= limits.reduce_scale
        notes.append(
            f"scaled by {limits.reduce_scale:g} from {intent.qty:g}: trading is REDUCING ({state.reason})"
        )
    cap = limits.max_order_notional
    if cap is not None and qty * price > cap * (1 + _TOL):
        notes.append(
            f"cut to paper.limits.max_order_notional {cap:,.2f} from a notional of {qty * price:,.2f}"
        )
        qty = cap / price
    cap = limits.max_position_notional
    if cap is not None and not reduces:
        same_way = position_qty * sign >= 0
        room = cap / price - abs(position_qty) if same_way else abs(position_qty) + cap / price
        if qty > room * (1 + _TOL):
            after = abs(position_qty + sign * qty) * price
            notes.append(
                f"cut so the position stays within paper.limits.max_position_notional {cap:,.2f} "
                f"(it would have been {after:,.2f})"
            )
            qty = max(room, 0.0)
    if not notes:
        return intent, ""
    qty = float(floor_to_step(qty, step))
    reason = "; ".join(notes)
    if qty <= 0:
        return (
            None,
            f"{sym} {intent.side.value} {intent.qty:g} denied: nothing is left after the limits ({reason})",
        )
    note = f"{intent.note}; {reason}" if intent.note else reason
    return replace(intent, qty=qty, note=note), reason
