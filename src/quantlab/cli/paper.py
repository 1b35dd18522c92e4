"""`quantlab paper status | positions | orders | pnl | halt | resume | resolve`: the paper account
in the ledger, for a person.

- status: trading state (ACTIVE / REDUCING / HALTED and why), halted symbols, unresolved events,
  balances, equity, the last reconciliation, the invariants;
- positions: per symbol qty, average price, realised P&L, the virtual position's levels;
- orders: newest orders with status and fills (`--open` only those still working);
- pnl: equity now vs start, peak, drawdown, fees by asset, round trips;
- halt / resume: a person stops or restarts new orders (cancels still pass);
- resolve: mark the reconciliation differences that needed a person as dealt with.
"""

from __future__ import annotations

import argparse
import json
import time

import polars as pl

from quantlab.context import RunContext


def _ledger(ctx: RunContext):
    from quantlab.execution.ledger import Ledger

    return Ledger.connect(ctx.config.paper.ledger_url)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _utc(ms: int | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def _cmd_status(ctx: RunContext, args: argparse.Namespace) -> int:
    account = ctx.config.paper.account
    with _ledger(ctx) as ledger:
        info = ledger.account_info(account)
        if info is None:
            print(f"no paper account {account!r} in the ledger yet; `make run` trades one")
            return 1
        state = ledger.trading_state(account)
        halts = ledger.halted_symbols(account)
        events = ledger.events(account, unresolved=True)
        broken = ledger.check_invariants(account)
        equity = ledger.equity(account)
        balances = ledger.balances(account)
        status = {
            "account": account,
            "venue": info["venue"],
            "trading": state.mode.value,
            "reason": state.reason,
            "since": _utc(state.since_ms),
            "peak_equity": state.peak_equity,
            "halted_symbols": halts,
            "needs_a_person": [e for e in events if e["needs_person"]],
            "balances": {a: {"free": b.free, "locked": b.locked} for a, b in balances.items()},
            "equity": float(equity["equity"][-1]) if equity.height else None,
            "marked_at": _utc(int(equity["time_ms"][-1])) if equity.height else "-",
            "cursor": _utc(info["cursor_ms"]),
            "invariants": broken or "hold",
        }
    if args.json:
        print(json.dumps(status, default=str))
        return 0
    print(f"account {account} ({status['venue']} venue), bars traded up to {status['cursor']}")
    print(
        f"  trading: {status['trading']}"
        + (f" since {status['since']}: {state.reason}" if state.reason else "")
    )
    for symbol, why in halts.items():
        print(f"  {symbol} halted: {why}")
    for e in status["needs_a_person"]:
        print(f"  needs a person: {e['kind']} {e['detail']} ({_utc(e['at_ms'])})")
    eq = status["equity"]
    print(f"  equity {eq:,.2f} at {status['marked_at']}" if eq is not None else "  not marked yet")
    for asset, b in balances.items():
        print(f"  {asset:<6} free {b.free:>16.8f}  locked {b.locked:>14.8f}")
    print(f"  invariants: {'hold' if not broken else '; '.join(broken)}")
    return 0 if not broken else 1


def _cmd_positions(ctx: RunContext, args: argparse.Namespace) -> int:
    """Held = the base asset's balance (a buy's fee is paid in base, so it is a little less than
    the sum of the fills); realised P&L is on prices, before fees (`paper pnl` has the fees)."""
    from quantlab.portfolio.orders import split_symbol

    account = ctx.config.paper.account
    with _ledger(ctx) as ledger:
        positions = ledger.positions(account)
        balances = ledger.balances(account)
        virtual = {v["symbol"]: v for v in ledger.vpos_list(account, "open")}
    print(f"{'symbol':<9} {'held':>14} {'sum of fills':>14} {'avg price':>12} {'realised':>12}")
    for symbol, p in sorted(positions.items()):
        base = split_symbol(symbol)[0]
        held = balances[base].total if base in balances else 0.0
        line = (
            f"{symbol:<9} {held:>14.8f} {p.qty:>14.8f} {p.avg_price:>12.4f} "
            f"{p.realized_pnl:>+12.2f}"
        )
        v = virtual.get(symbol)
        if v:
            line += (
                f"  virtual tp {v['take_profit']:.4f} sl {v['stop_loss']:.4f} "
                f"pnl max {v['max_pnl']:+.4f} min {v['min_pnl']:+.4f}"
            )
        print(line)
    return 0


def _cmd_orders(ctx: RunContext, args: argparse.Namespace) -> int:
    account = ctx.config.paper.account
    with _ledger(ctx) as ledger:
        orders = ledger.orders_frame(account)
    if args.open:
        orders = orders.filter(
            pl.col("status").is_in(["PENDING_SUBMIT", "NEW", "PARTIALLY_FILLED", "UNKNOWN"])
        )
    orders = orders.sort("created_ms").tail(args.limit)
    if args.json:
        print(orders.write_json())
        return 0
    print(
        f"{'decided':<21} {'symbol':<9} {'side':<4} {'type':<6} {'qty':>12} {'filled':>12} {'status':<16} client id"
    )
    for o in orders.iter_rows(named=True):
        print(
            f"{_utc(o['decision_ms']):<21} {o['symbol']:<9} {o['side']:<4} {o['type']:<6} "
            f"{o['qty']:>12.6f} {o['executed_qty']:>12.6f} {o['status']:<16} {o['client_id']}"
        )
    return 0


def _cmd_pnl(ctx: RunContext, args: argparse.Namespace) -> int:
    account = ctx.config.paper.account
    with _ledger(ctx) as ledger:
        equity = ledger.equity(account)
        fills = ledger.fills(account)
        trips = ledger.round_trips(account)
    if equity.height == 0:
        print(f"account {account}: no marks yet")
        return 1
    eq = equity["equity"]
    peak = float(eq.max())
    print(
        f"account {account}: equity {eq[0]:,.2f} -> {eq[-1]:,.2f} ({eq[-1] / eq[0] - 1:+.3%}) over "
        f"{equity.height} bars; peak {peak:,.2f}, drawdown now {eq[-1] / peak - 1:+.3%}"
    )
    if fills.height:
        for asset, fee in (
            fills.group_by("fee_asset").agg(pl.col("fee").sum()).sort("fee_asset").iter_rows()
        ):
            print(f"  fees paid in {asset}: {fee:.8f}")
    if trips.height:
        won = int((trips["pnl"] > 0).sum())
        print(f"  round trips: {trips.height}, {won} won, realised {trips['pnl'].sum():+,.2f}")
    return 0


def _cmd_halt(ctx: RunContext, args: argparse.Namespace) -> int:
    import dataclasses

    account = ctx.config.paper.account
    with _ledger(ctx) as ledger:
        state = ledger.trading_state(account)
        if args.resume:
            from quantlab.execution.breakers import resume

            equity = ledger.equity(account)
            last = float(equity["equity"][-1]) if equity.height else 0.0
            new = dataclasses.replace(resume(state, _now_ms(), last), manual=False)
        else:
            from quantlab.execution.breakers import halt_by_person

            new = halt_by_person(state, _now_ms(), args.reason)
        ledger.set_trading_state(account, new, _now_ms(), "person")
    print(
        f"account {account}: trading {new.mode.value}" + (f" ({new.reason})" if new.reason else "")
    )
    return 0


def _cmd_resolve(ctx: RunContext, args: argparse.Namespace) -> int:
    account = ctx.config.paper.account
    with _ledger(ctx) as ledger:
        n = ledger.resolve_events(account, _now_ms(), "person", kind=args.kind)
    print(f"account {account}: {n} event(s) marked resolved; the next run reconciles again")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    paper = sub.add_parser("paper", help="the paper account in the ledger").add_subparsers(
        dest="paper_command", required=True
    )
    status = paper.add_parser("status", help="trading state, halts, balances, invariants")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_cmd_status)
    paper.add_parser("positions", help="positions and their virtual levels").set_defaults(
        func=_cmd_positions
    )
    orders = paper.add_parser("orders", help="the newest orders")
    orders.add_argument("--open", action="store_true", help="only orders still working or unknown")
    orders.add_argument("--limit", type=int, default=30)
    orders.add_argument("--json", action="store_true")
    orders.set_defaults(func=_cmd_orders)
    paper.add_parser("pnl", help="equity, drawdown, fees, round trips").set_defaults(func=_cmd_pnl)
    halt = paper.add_parser("halt", help="stop new orders by hand")
    halt.add_argument("--reason", required=True)
    halt.set_defaults(func=_cmd_halt, resume=False)
    resume = paper.add_parser("resume", help="trade again after a halt (resets the peak)")
    resume.set_defaults(func=_cmd_halt, resume=True, reason="")
    resolve = paper.add_parser(
        "resolve", help="mark differences that needed a person as dealt with"
    )
    resolve.add_argument(
        "--kind", default=None, help="only events of this kind (e.g. balance_mismatch)"
    )
    resolve.set_defaults(func=_cmd_resolve)
