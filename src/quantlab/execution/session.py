"""One paper-trading session: the bars since the ledger's cursor, bar by bar, in the backtest's
order of events, so the paper account does what the backtest assumed.

For each bar t (decided at its close, like the backtest):
1. the venue's clock reaches t's close: the paper venue fills what was resting (a market order
   placed at t-1's close fills at t's open plus slippage);
2. every order still open in the ledger is asked for and brought up to date (fills booked once);
3. the account is marked at t's close; the equity goes to the ledger and the breakers judge it;
4. the virtual positions see bar t (take-profit / stop-loss approached, hit, expired, closed);
5. the target decided at t's close becomes orders (planner: the backtest's rounding and filters;
   breakers: caps, reduce, halt), each booked PENDING_SUBMIT under its idempotency key BEFORE it
   is sent, so a crash between sending and recording leaves a row reconciliation resolves;
6. the cursor moves to t: a rerun starts after the last bar done, and an order already booked
   for a key is never sent again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from quantlab.config import Config
from quantlab.execution import breakers, virtual
from quantlab.execution.ledger import Ledger, LedgerOrder
from quantlab.execution.planner import lock_for, plan_orders
from quantlab.portfolio.costs import CostModel
from quantlab.portfolio.matching import BarPrices
from quantlab.portfolio.orders import (
    Broker,
    OrderIntent,
    OrderStatus,
    TradingMode,
    Unknown,
)
from quantlab.portfolio.venue import VenueRules, check_order_for


@dataclass(frozen=True)
class SessionInputs:
    """What a session trades: gated bars, the targets and scores over the window, the filters."""

    account: str
    bars: (
        pl.DataFrame
    )  # symbol, open_time (ms UTC datetime), open, high, low, close, volume, quote_volume
    targets: pl.DataFrame  # symbol, open_time, target_weight
    scores: pl.DataFrame  # symbol, open_time, score, class (class may be null)
    rules: VenueRules
    assets: dict[str, tuple[str, str]]  # symbol -> (base, quote)
    source: str  # "targets@v7"
    interval_ms: int


@dataclass
class SessionResult:
    bars: int = 0
    placed: list[str] = field(default_factory=list)
    already_booked: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # client id, why
    denied: list[tuple[str, str]] = field(default_factory=list)  # symbol, why (breakers)
    skipped: list[pl.DataFrame] = field(default_factory=list)  # planner's skips, per bar
    halted: str = ""  # why no order was sent at all, if so
    last_equity: float = 0.0


def _ms(col: str = "open_time") -> pl.Expr:
    return pl.col(col).dt.epoch("ms")


def mark(
    balances: dict, closes: dict[str, float], assets: dict[str, tuple[str, str]]
) -> tuple[float, float, float]:
    """(equity, cash, gross exposure) of the universe's assets at `closes`, in the quote asset."""
    quotes = {q for _, q in assets.values()}
    cash = sum(balances[q].total for q in quotes if q in balances)
    gross = 0.0
    for symbol, (base, _) in assets.items():
        if base in balances and symbol in closes:
            gross += abs(balances[base].total * closes[symbol])
    return cash + gross, cash, gross


def sync_open_orders(ledger: Ledger, venue: Broker, account: str, now_ms: int) -> int:
    """Ask the venue for every order the ledger holds open; book what changed. Returns how many."""
    moved = 0
    for order in ledger.orders(account, statuses=(OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)):
        report = venue.query(order.symbol, order.client_id)
        if report is None:
            continue  # not found is not proof of anything: reconciliation counts it
        after = ledger.apply_report(report, report.trades, now_ms, via="sync")
        moved += after.status != order.status or after.executed_qty != order.executed_qty
    return moved


def attempt_for(ledger: Ledger, account: str, source: str, symbol: str, decision_ms: int) -> int:
    """The attempt to use for one decision: a new one only after the previous was settled as
    never placed; otherwise the booked one (whose key makes create_order a no-op)."""
    prior = [
        o for o in ledger.orders(account, symbol=symbol)
        if o.source == source and o.decision_ms == decision_ms
    ]  # fmt: skip
    if not prior:
        return 0
    latest = max(prior, key=lambda o: int(o.key.rsplit("|", 1)[-1]))
    attempt = int(latest.key.rsplit("|", 1)[-1])
    lost = any(e["kind"] == "settled_lost" for e in ledger.order_events(account, latest.client_id))
    return attempt + 1 if lost else attempt


def place(
    ledger: Ledger,
    venue: Broker,
    intent: OrderIntent,
    taker_fee: float,
    now_ms: int,
    result: SessionResult,
) -> LedgerOrder:
    """Book the order, then send it once; an unknown outcome halts the symbol's new orders."""
    order, created = ledger.create_order(intent, lock_for(intent, taker_fee), now_ms)
    if not created:
        result.already_booked.append(order.client_id)
        return order  # booked by an earlier run: sent then, or resolved by reconciliation
    outcome = venue.submit(intent)
    order = ledger.record_result(intent.client_id, outcome, now_ms)
    if isinstance(outcome, Unknown):
        ledger.halt_symbol(
            intent.account,
            intent.symbol,
            f"unknown order {intent.client_id}: {outcome.reason}",
            now_ms,
        )
        result.unknown.append(intent.client_id)
    elif order.status is OrderStatus.REJECTED:
        result.rejected.append((intent.client_id, order.note or "rejected by the venue"))
    else:
        result.placed.append(intent.client_id)
    return order


def cancel_stale(ledger: Ledger, venue: Broker, account: str, now_ms: int, ttl_ms: int) -> None:
    """GTC limits open longer than `paper.limit_ttl_bars` are cancelled before new orders."""
    for order in ledger.orders(account, statuses=(OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)):
        if order.price is not None and now_ms - order.created_ms >= ttl_ms:
            report = venue.cancel(order.symbol, order.client_id)
            if report is not None:
                ledger.apply_report(report, report.trades, now_ms, via="cancel_stale")


def run_session(
    ledger: Ledger,
    venue: Broker,
    inputs: SessionInputs,
    config: Config,
    costs: CostModel,
    bar_times: list[int],
    *,
    trading_allowed: str = "",
) -> SessionResult:
    """Trade the bars `bar_times` (open times, ms, ascending) of `inputs`; see the module doc.

    `trading_allowed` non-empty is a reason no new order may be sent (reconciliation needs a
    person, the targets are not the champion's): the session still fills, marks and monitors.
    """
    cfg, account = config.paper, inputs.account
    result = SessionResult(halted=trading_allowed)
    by_time = inputs.bars.with_columns(_ms().alias("t")).partition_by("t", as_dict=True)
    targets = inputs.targets.with_columns(_ms().alias("t")).partition_by("t", as_dict=True)
    scores = inputs.scores.with_columns(_ms().alias("t")).partition_by("t", as_dict=True)
    marks = ledger.equity(account)
    prev_equity = float(marks["equity"][-1]) if marks.height else None
    last_close: dict[str, float] = {}
    for t in bar_times:
        close_ms = t + inputs.interval_ms
        bars_t = by_time.get((t,))
        if bars_t is None:
            continue
        venue.advance(close_ms)
        sync_open_orders(ledger, venue, account, close_ms)
        # A symbol without this bar (a halt) is marked at its last close, as the backtest does.
        last_close.update(zip(bars_t["symbol"], bars_t["close"], strict=True))
        closes = dict(last_close)
        balances = ledger.balances(account)
        equity, cash, gross = mark(balances, closes, inputs.assets)
        ledger.record_equity(account, close_ms, equity, cash, gross)
        # The breakers key a mark by its bar's open time, as the backtest's kill-switch does,
        # and need the previous mark for the day's start.
        state = breakers.evaluate(
            ledger.trading_state(account),
            equity,
            t,
            cfg.limits,
            config.risk,
            prev_equity=prev_equity,
        )
        prev_equity = equity
        ledger.set_trading_state(account, state, close_ms, "breakers")
        virtual.step(
            ledger, account, ledger.positions(account), _bar_prices(bars_t),
            _scores(scores.get((t,))), cfg.virtual, close_ms, inputs.interval_ms,
        )  # fmt: skip
        target_t = targets.get((t,))
        if target_t is not None and not result.halted:
            if cfg.order_type == "limit":
                cancel_stale(
                    ledger, venue, account, close_ms, cfg.limit_ttl_bars * inputs.interval_ms
                )
            _trade_bar(
                ledger,
                venue,
                inputs,
                config,
                costs,
                target_t,
                bars_t,
                equity,
                state,
                close_ms,
                result,
            )
        ledger.set_cursor(account, t)
        result.bars += 1
        result.last_equity = equity
    return result


def _trade_bar(
    ledger, venue, inputs, config, costs, target_t, bars_t, equity, state, now_ms, result
) -> None:
    cfg, account = config.paper, inputs.account
    if state.mode is TradingMode.HALTED:
        result.denied.append(("*", f"trading halted: {state.reason}"))
        return
    latest = target_t.join(
        bars_t.select("symbol", pl.col("close").alias("price")), on="symbol"
    ).select("symbol", "open_time", "target_weight", "price")
    # What the account holds of each base asset: a buy's fee is paid in base, so the sum of
    # fills overstates what can be sold (the planner sizes from the balance, as the venue does).
    balances = ledger.balances(account)
    positions = {
        s: balances[base].total if base in balances else 0.0
        for s, (base, _) in inputs.assets.items()
    }
    decision_ms = int(latest["open_time"].dt.epoch("ms")[0])
    attempts = {
        s: attempt_for(ledger, account, inputs.source, s, decision_ms) for s in latest["symbol"]
    }
    plan = plan_orders(
        latest, positions, balances, equity, inputs.rules, inputs.assets,
        cfg, config.backtest, account, inputs.source, attempts,
    )  # fmt: skip
    if plan.skipped.height:
        # An order the exchange would refuse is not sent, and the ledger says why.
        result.skipped.append(plan.skipped)
        for row in plan.skipped.iter_rows(named=True):
            ledger.add_event(account, "order_skipped", row, now_ms, symbol=row["symbol"])
    halted = ledger.halted_symbols(account)
    closes = dict(zip(latest["symbol"], latest["price"], strict=True))
    sent = 0
    for intent in plan.intents:
        if sent >= cfg.limits.max_orders_per_run:
            result.denied.append((intent.symbol, "paper.limits.max_orders_per_run reached"))
            continue
        step = float(inputs.rules.step_size[inputs.rules.index(intent.symbol)])
        checked, reason = breakers.check(
            intent, state, positions.get(intent.symbol, 0.0), closes[intent.symbol], equity,
            cfg.limits, halted, step=step,
        )  # fmt: skip
        if checked is not None and checked.qty != intent.qty:
            # A cut order must still pass the exchange's filters (min qty, min notional).
            refused = check_order_for(
                inputs.rules, checked.symbol, checked.qty, closes[checked.symbol]
            )
            if refused is not None:
                checked, reason = None, f"{reason}; what is left breaks {refused.label}"
        if checked is None:
            result.denied.append((intent.symbol, reason))
            ledger.add_event(
                account,
                "order_denied",
                {"symbol": intent.symbol, "reason": reason},
                now_ms,
                symbol=intent.symbol,
            )
            continue
        place(ledger, venue, checked, costs.taker, now_ms, result)
        sent += 1


def _bar_prices(bars_t: pl.DataFrame) -> dict[str, BarPrices]:
    return {
        r["symbol"]: BarPrices(r["t"], r["open"], r["high"], r["low"], r["close"], r["volume"])
        for r in bars_t.iter_rows(named=True)
    }


def _scores(frame: pl.DataFrame | None) -> dict[str, tuple[float, int | None]]:
    if frame is None:
        return {}
    return {r["symbol"]: (r["score"], r["class"]) for r in frame.iter_rows(named=True)}
