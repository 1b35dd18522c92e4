"""Reconciliation: the ledger against what the venue says, at the start and end of every run.

What nautilus, freqtrade and hummingbot users hit, and what this refuses to do:
- a ledger order the venue cannot find is NOT assumed cancelled (freqtrade's restart bug): it
  is asked for by client id, counted missing, and only after `paper.missing_checks`
  reconciliations that did not find it is it settled as never placed (an event says so);
- a missing report does not mean flat: when a venue read fails the snapshot is incomplete,
  and nothing is inferred from what it lacks (nautilus' rule);
- an order the venue knows and the ledger does not (placed before a crash recorded it, or by
  hand) is adopted with its fills, never ignored;
- a difference that needs a person (balances that disagree, an order still UNKNOWN) is an
  unresolved event, and trading stays halted while one remains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quantlab.config import PaperConfig
from quantlab.execution.ledger import Ledger
from quantlab.portfolio.orders import Broker, OrderStatus

# Balances that differ by less than this (relative) agree: float sums of many fills.
_TOLERANCE = 1e-7
OPEN_IN_LEDGER = (
    OrderStatus.PENDING_SUBMIT,
    OrderStatus.NEW,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.UNKNOWN,
)


@dataclass
class ReconcileReport:
    """What one reconciliation found and did; `blocking` lists what keeps trading halted."""

    updated: list[str] = field(default_factory=list)  # client ids whose state the venue moved
    adopted: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)  # client id -> times not found
    settled_lost: list[str] = field(default_factory=list)
    balance_diffs: dict[str, tuple[float, float]] = field(default_factory=dict)  # ledger, venue
    blocking: list[str] = field(default_factory=list)  # needs a person: the account halts
    unknown_symbols: list[str] = field(default_factory=list)  # halted until an order resolves
    complete: bool = True

    @property
    def clear(self) -> bool:
        return not self.blocking

    def lines(self) -> list[str]:
        out = []
        if self.updated:
            out.append(f"{len(self.updated)} order(s) brought up to date from the venue")
        if self.adopted:
            out.append(
                f"adopted {len(self.adopted)} order(s) the venue knew and the ledger did not"
            )
        for cid, n in self.missing.items():
            out.append(f"order {cid} not found at the venue ({n} check(s))")
        if self.settled_lost:
            out.append(f"settled {len(self.settled_lost)} order(s) as never placed")
        for asset, (mine, theirs) in self.balance_diffs.items():
            out.append(f"balance {asset}: ledger {mine:.10g} vs venue {theirs:.10g}")
        for symbol in self.unknown_symbols:
            out.append(f"{symbol}: an order's outcome is still unknown; its new orders wait")
        if not self.complete:
            out.append("the venue snapshot was incomplete: nothing inferred from what it lacked")
        return out or ["ledger and venue agree"]


def reconcile(
    ledger: Ledger,
    venue: Broker,
    account: str,
    symbols: list[str],
    cfg: PaperConfig,
    now_ms: int,
    since_ms: int,
    assets: tuple[str, ...],
) -> ReconcileReport:
    """Bring the ledger to the venue's truth; record every difference as an event."""
    report = ReconcileReport()
    snap = venue.snapshot(symbols, since_ms)
    report.complete = snap.complete
    for err in snap.errors:
        ledger.add_event(account, "venue_read_failed", {"error": err}, now_ms)
    _settle_open_orders(ledger, venue, account, cfg, now_ms, report)
    _adopt_unknown(ledger, account, snap, now_ms, report)
    if snap.complete:
        _compare_balances(ledger, account, snap.balances, assets, now_ms, report)
    _refresh_halts(ledger, account, now_ms, report)
    return report


def _settle_open_orders(ledger, venue, account, cfg, now_ms, report) -> None:
    for order in ledger.orders(account, statuses=OPEN_IN_LEDGER):
        found = venue.query(order.symbol, order.client_id)
        if found is not None:
            after = ledger.apply_report(found, found.trades, now_ms, via="reconcile")
            if after.status != order.status or after.executed_qty != order.executed_qty:
                report.updated.append(order.client_id)
            continue
        count = ledger.mark_missing(order.client_id, now_ms)
        report.missing[order.client_id] = count
        if count >= cfg.missing_checks:
            ledger.settle_lost(
                order.client_id,
                now_ms,
                f"not found at the venue by {count} reconciliations (paper.missing_checks "
                f"{cfg.missing_checks}): settled as never placed",
            )
            report.settled_lost.append(order.client_id)


def _adopt_unknown(ledger, account, snap, now_ms, report) -> None:
    seen: set[str] = set()
    for venue_order in (*snap.open_orders, *snap.recent_orders):
        if venue_order.client_id in seen:
            continue
        seen.add(venue_order.client_id)
        mine = ledger.order(venue_order.client_id)
        if mine is None:
            trades = [t for t in snap.trades if t.client_id == venue_order.client_id]
            ledger.adopt_order(account, venue_order, trades or venue_order.trades, now_ms)
            report.adopted.append(venue_order.client_id)
        elif mine.status is not OrderStatus(venue_order.status) or (
            mine.executed_qty < venue_order.executed_qty
        ):
            trades = [t for t in snap.trades if t.client_id == venue_order.client_id]
            ledger.apply_report(venue_order, trades or venue_order.trades, now_ms, via="reconcile")
            report.updated.append(venue_order.client_id)


def _compare_balances(ledger, account, venue_balances, assets, now_ms, report) -> None:
    mine = ledger.balances(account)
    diffs = {}
    for asset in assets:
        a = mine[asset].total if asset in mine else 0.0
        b = venue_balances[asset].total if asset in venue_balances else 0.0
        if abs(a - b) > _TOLERANCE * max(1.0, abs(a), abs(b)):
            diffs[asset] = (a, b)
    open_diffs = {
        e["detail"].get("asset") for e in ledger.events(account, "balance_mismatch", True)
    }
    for asset, (a, b) in diffs.items():
        report.balance_diffs[asset] = (a, b)
        if asset not in open_diffs:
            ledger.add_event(
                account,
                "balance_mismatch",
                {"asset": asset, "ledger": a, "venue": b},
                now_ms,
                needs_person=True,
            )
    if not diffs and open_diffs:
        ledger.resolve_events(account, now_ms, "reconcile", kind="balance_mismatch")
    for asset in sorted(diffs):
        report.blocking.append(
            f"balance {asset} differs (ledger {diffs[asset][0]:.10g}, venue "
            f"{diffs[asset][1]:.10g}); find the cause, then `quantlab paper resolve`"
        )


def _refresh_halts(ledger, account, now_ms, report) -> None:
    """A symbol halted for an unknown order trades again once no order of it is UNKNOWN."""
    unknown = {o.symbol for o in ledger.orders(account, statuses=(OrderStatus.UNKNOWN,))}
    for symbol, reason in ledger.halted_symbols(account).items():
        if symbol not in unknown and reason.startswith("unknown order"):
            ledger.clear_symbol(account, symbol, now_ms, "reconcile")
    report.unknown_symbols = sorted(unknown)
    for event in ledger.events(account, unresolved=True):
        if event["needs_person"] and event["kind"] != "balance_mismatch":
            report.blocking.append(f"{event['kind']}: {event['detail']}")
