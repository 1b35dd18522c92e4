"""Virtual positions: a take-profit / stop-loss / expiry bracket watched beside each venue position.

A virtual position opens when a venue position opens (flat -> non-zero) at the position's
average fill price, with levels from `paper.virtual` (`take_profit`, `stop_loss` fractions of
the entry price), and ends when the venue position goes flat again. In between, each bar gives
MONITOR events; they never trade, they show what a bracket would have done:
- `created`; `price_update` (the bar's close and its pnl fraction, every bar);
- `tp_approached` / `sl_approached`, once each, when the bar's high / low (low / high for a
  short) first covers `approach` of the distance to the level: the intrabar extreme, because
  that is what a resting order would have seen;
- `tp_hit` / `sl_hit` when the bar trades at or through the level (a stop triggers on touch),
  at the level, or at the open when the bar opened through it. When one bar reaches both,
  the stop-loss counts first: the order inside the bar is unknown, so assume the worse;
- `expired` when the position has been open `max_bars` bars (at that bar's close);
- `closed` when the venue position went flat (or closed and reopened between two steps).
The first of tp_hit, sl_hit and expired is the virtual exit: it becomes `close_reason`, and
max/min pnl (the excursions from the highs and lows, a bar that exits counting its exit price
only) stop there; price updates go on until the venue position is flat. A virtual position keeps
its entry quantity: adds to the venue position do not move its levels.
"""

from __future__ import annotations

from typing import Any, Protocol

import polars as pl

from quantlab.config.paper import VirtualConfig
from quantlab.portfolio.matching import BarPrices

# The venue position counts as flat below this share of the virtual position's quantity: a
# spot buy pays its fee in the base asset, so selling all one holds leaves the fills' sum at
# the fees (about 0.1%), never exactly 0; an exit floored to the step leaves dust too.
FLAT_FRAC = 0.01


class Position(Protocol):
    """What `step` reads of a ledger PositionRow."""

    symbol: str
    qty: float
    avg_price: float
    opened_ms: int


class VirtualLedger(Protocol):
    """The part of the Ledger API this module writes through."""

    def vpos_open(self, account: str, fields: dict) -> int: ...
    def vpos_update(self, vpos_id: int, fields: dict, events: list[dict]) -> None: ...
    def vpos_list(self, account: str, status: str | None = "open") -> list[dict]: ...
    def vpos_events(self, account: str) -> pl.DataFrame: ...


def pnl_of(row: dict, price: float) -> float:
    """The position's return at `price`, a fraction of the entry price (fees not counted)."""
    s = 1.0 if row["side"] == "long" else -1.0
    return s * (price / row["entry_price"] - 1.0)


def open_fields(
    symbol: str,
    qty: float,
    entry_price: float,
    entry_ms: int,
    score: tuple[float | None, int | None],
    cfg: VirtualConfig,
    interval_ms: int,
) -> dict:
    """The fields of `ledger.vpos_open` for a venue position of signed `qty` at `entry_price`."""
    if not entry_price > 0:
        raise ValueError(
            f"{symbol}: the entry price {entry_price} is not positive; the position's fills are wrong"
        )
    s = 1.0 if qty > 0 else -1.0
    return {
        "symbol": symbol,
        "side": "long" if qty > 0 else "short",
        "qty": abs(qty),
        "entry_price": entry_price,
        "entry_ms": entry_ms,
        "take_profit": entry_price * (1.0 + s * cfg.take_profit),
        "stop_loss": entry_price * (1.0 - s * cfg.stop_loss),
        "expires_ms": entry_ms + cfg.max_bars * interval_ms,
        "entry_score": score[0],
        "entry_class": score[1],
    }


def _event(kind: str, price: float, row: dict, at_ms: int, **detail: Any) -> dict:
    return {
        "kind": kind,
        "price": price,
        "pnl": pnl_of(row, price),
        "at_ms": at_ms,
        "detail": detail,
    }


def _exit(row: dict, bar: BarPrices) -> tuple[str, float] | None:
    """(kind, price) of the bracket's exit in `bar`, or None."""
    s = 1.0 if row["side"] == "long" else -1.0
    tp, sl = row["take_profit"], row["stop_loss"]
    fav, adv = (bar.high, bar.low) if s > 0 else (bar.low, bar.high)
    if s * (bar.open - sl) <= 0:
        return "sl_hit", bar.open
    if s * (bar.open - tp) >= 0:
        return "tp_hit", bar.open
    if s * (adv - sl) <= 0:  # first, even when the bar reached the take-profit too
        return "sl_hit", sl
    if s * (fav - tp) >= 0:
        return "tp_hit", tp
    return None


def bar_update(
    row: dict, bar: BarPrices, cfg: VirtualConfig, interval_ms: int, at_ms: int, venue_qty: float
) -> tuple[dict, list[dict]]:
    """(fields, events) for `ledger.vpos_update` after `bar`, for an open virtual position `row`.

    A bar that opened before the entry (a fill inside it) only gives its close: its high and
    low may predate the position.
    """
    fields: dict = {"last_price": bar.close}
    events: list[dict] = []
    close = _event(
        "price_update", bar.close, row, at_ms, bar_ms=bar.open_time_ms, venue_qty=venue_qty
    )
    if row.get("close_reason") or bar.open_time_ms < row["entry_ms"]:
        return fields, [close]
    s = 1.0 if row["side"] == "long" else -1.0
    hit = _exit(row, bar)
    if hit is not None:
        hi = lo = pnl_of(row, hit[1])
        seen = hit[1]
    else:
        hi = pnl_of(row, bar.high if s > 0 else bar.low)
        lo = pnl_of(row, bar.low if s > 0 else bar.high)
    old_max, old_min = row["max_pnl"], row["min_pnl"]
    new_max, new_min = max(old_max, hi), min(old_min, lo)
    fields.update(max_pnl=new_max, min_pnl=new_min)
    tp_dist = pnl_of(row, row["take_profit"])
    sl_dist = -pnl_of(row, row["stop_loss"])
    if new_max >= cfg.approach * tp_dist > old_max:
        seen_tp = seen if hit is not None else (bar.high if s > 0 else bar.low)
        events.append(
            _event(
                "tp_approached", seen_tp, row, at_ms, bar_ms=bar.open_time_ms, approach=cfg.approach
            )
        )
    if new_min <= -cfg.approach * sl_dist < old_min:
        seen_sl = seen if hit is not None else (bar.low if s > 0 else bar.high)
        events.append(
            _event(
                "sl_approached", seen_sl, row, at_ms, bar_ms=bar.open_time_ms, approach=cfg.approach
            )
        )
    if hit is not None:
        level = row["take_profit"] if hit[0] == "tp_hit" else row["stop_loss"]
        events.append(
            _event(
                hit[0],
                hit[1],
                row,
                at_ms,
                bar_ms=bar.open_time_ms,
                level=level,
                gap=hit[1] != level,
            )
        )
        fields["close_reason"] = hit[0]
    events.append(close)
    bars_open = (bar.open_time_ms + interval_ms - row["entry_ms"]) // interval_ms
    if hit is None and bar.open_time_ms + interval_ms >= row["expires_ms"]:
        events.append(
            _event("expired", bar.close, row, at_ms, bar_ms=bar.open_time_ms, bars_open=bars_open)
        )
        fields["close_reason"] = "expired"
    return fields, events


def _last_event_ms(ledger: VirtualLedger, account: str) -> dict[int, int]:
    ev = ledger.vpos_events(account)
    if ev.is_empty():
        return {}
    last = ev.group_by("vpos_id").agg(pl.col("at_ms").max())
    return dict(zip(last["vpos_id"].to_list(), last["at_ms"].to_list(), strict=True))


def _close(ledger: VirtualLedger, row: dict, price: float, now_ms: int, why: str) -> dict:
    event = _event(
        "closed", price, row, now_ms, reason=why, virtual_exit=row.get("close_reason") or None
    )
    fields = {
        "status": "closed",
        "closed_ms": now_ms,
        "close_reason": row.get("close_reason") or "flat",
    }
    ledger.vpos_update(row["vpos_id"], fields, [event])
    return event


def step(
    ledger: VirtualLedger,
    account: str,
    positions: dict[str, Position],
    bars: dict[str, BarPrices],
    scores: dict[str, tuple[float | None, int | None]],
    cfg: VirtualConfig,
    now_ms: int,
    interval_ms: int,
) -> list[dict]:
    """Close, open and update the account's virtual positions for the bars at `now_ms`.

    The one call the session makes per bar, after the venue's fills are booked: `positions` is
    `ledger.positions(account)`, `bars` the bar just closed per symbol, `scores` the model's
    (score, class) per symbol at the decision that opened a position. Returns the events written,
    each with its `symbol` and `vpos_id`. A bar already processed (an event at `now_ms` or
    later) is not applied twice, so a rerun of the same bar writes nothing new.
    """
    rows = ledger.vpos_list(account, None)
    open_rows = {r["symbol"]: r for r in rows if r["status"] == "open"}
    last_ms = _last_event_ms(ledger, account)
    written: list[dict] = []

    def keep(row: dict, events: list[dict]) -> None:
        written.extend({**e, "symbol": row["symbol"], "vpos_id": row["vpos_id"]} for e in events)

    for symbol in sorted(set(open_rows) | set(positions)):
        pos, row, bar = positions.get(symbol), open_rows.get(symbol), bars.get(symbol)
        qty = pos.qty if pos is not None else 0.0
        if row is not None:
            reopened = pos is not None and pos.opened_ms > row["entry_ms"]
            if abs(qty) <= FLAT_FRAC * row["qty"] or reopened:
                price = (
                    bar.close if bar is not None else (row.get("last_price") or row["entry_price"])
                )
                why = (
                    "the venue position was closed and reopened"
                    if reopened
                    else "the venue position went flat"
                )
                keep(row, [_close(ledger, row, price, now_ms, why)])
                row = None
                if not reopened:
                    continue
            elif bar is not None and last_ms.get(row["vpos_id"], -1) < now_ms:
                fields, events = bar_update(row, bar, cfg, interval_ms, now_ms, qty)
                ledger.vpos_update(row["vpos_id"], fields, events)
                keep(row, events)
        if row is None and pos is not None and qty != 0.0:
            before = [r for r in rows if r["symbol"] == symbol]
            latest = max(before, key=lambda r: r["entry_ms"], default=None)
            if (
                latest is not None
                and latest["status"] == "closed"
                and abs(qty) <= FLAT_FRAC * latest["qty"]
            ):
                continue  # dust the last position left behind
            # A position that never read exactly 0 keeps its old opened_ms: date the new one now.
            entry_ms = (
                pos.opened_ms if all(r["entry_ms"] < pos.opened_ms for r in before) else now_ms
            )
            fields = open_fields(
                symbol,
                qty,
                pos.avg_price,
                entry_ms,
                scores.get(symbol, (None, None)),
                cfg,
                interval_ms,
            )
            vid = ledger.vpos_open(account, fields)
            new = {
                **fields,
                "vpos_id": vid,
                "status": "open",
                "max_pnl": 0.0,
                "min_pnl": 0.0,
                "close_reason": None,
            }
            events = [_event("created", pos.avg_price, new, now_ms, venue_qty=qty)]
            fields2: dict = {}
            if bar is not None:
                fields2, more = bar_update(new, bar, cfg, interval_ms, now_ms, qty)
                events += more
            ledger.vpos_update(vid, fields2, events)
            keep(new, events)
    return written
