"""A plain-Python event loop with the engine's semantics, for parity tests only (slow, readable).

Nothing here is shared with the numba core except the config and rules it reads: rounding,
costs, funding lookup, sizing, margin and the kill-switch are written again with dicts and
floats, so a test that compares the two catches a slip in either.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import polars as pl

from quantlab.backtest.arrays import KillSettings
from quantlab.config import BacktestConfig
from quantlab.portfolio.venue import VenueRules

_EPS = 1e-9
HOUR = 3_600_000
DAY = 86_400_000


@dataclass
class RefResult:
    equity: list[float] = field(default_factory=list)  # per bar close, on the grid
    fills: list[dict] = field(default_factory=list)
    funding: list[dict] = field(default_factory=list)
    rejections: list[dict] = field(default_factory=list)
    kills: list[dict] = field(default_factory=list)


def _floor(q: float, step: float) -> float:
    return q if step <= 0 else math.floor(q / step + _EPS) * step


def _round_price(p: float, tick: float, side: int) -> float:
    if tick <= 0:
        return p
    return math.ceil(p / tick - _EPS) * tick if side > 0 else math.floor(p / tick + _EPS) * tick


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def simulate_reference(
    bars: pl.DataFrame,
    targets: pl.DataFrame,
    cfg: BacktestConfig,
    rules: VenueRules,
    *,
    market: str,
    funding_rates: pl.DataFrame | None = None,
    mark_klines: pl.DataFrame | None = None,
    kill: KillSettings | None = None,
    allow_short: bool | None = None,
) -> RefResult:
    spot = market == "spot"
    shorts = (market == "futures_um") if allow_short is None else allow_short
    tier = getattr(cfg.fees, market)
    fee_rate = tier.taker * ((1 - (0.25 if spot else 0.10)) if cfg.fees.bnb_discount else 1.0)
    lev = 1.0 if spot else cfg.max_leverage
    lam = cfg.slippage.ewma_lambda

    bar = {}  # (sym, ms) -> row
    by_sym: dict[str, list[int]] = {}
    for r in bars.sort("symbol", "open_time").iter_rows(named=True):
        ms = int(r["open_time"].timestamp() * 1000)
        qv = r.get("quote_volume")
        r = {**r, "qv": qv if qv is not None else r["volume"] * r["close"]}
        bar[(r["symbol"], ms)] = r
        by_sym.setdefault(r["symbol"], []).append(ms)
    symbols = sorted(by_sym)
    times = sorted({ms for _, ms in bar})
    filt = {
        s: {
            c: float(getattr(rules, c)[rules.index(s)])
            for c in ("tick_size", "step_size", "min_qty", "max_qty", "min_notional")
        }
        for s in symbols
    }
    slip = {}
    for s in symbols:
        own = cfg.slippage.per_symbol.get(s)
        hs = own.half_spread_bps if own and own.half_spread_bps is not None else None
        ic = own.impact_coef if own and own.impact_coef is not None else None
        slip[s] = (
            (cfg.slippage.half_spread_bps if hs is None else hs) * 1e-4,
            cfg.slippage.impact_coef if ic is None else ic,
        )

    # a decision at a symbol's bar applies from that symbol's next bar
    decided = {
        (r["symbol"], int(r["open_time"].timestamp() * 1000)): r["target_weight"]
        for r in targets.iter_rows(named=True)
        if r["target_weight"] is not None
    }
    applies = {}
    for s, ts in by_sym.items():
        for a, b in itertools.pairwise(ts):
            if (s, a) in decided:
                applies[(s, b)] = decided[(s, a)]

    events = _funding(funding_rates, mark_klines, bar, by_sym, symbols, times)

    out = RefResult()
    cash = cfg.init_cash
    pos = dict.fromkeys(symbols, 0.0)
    desired = dict.fromkeys(symbols, 0.0)
    blocked: dict[str, float | None] = dict.fromkeys(symbols)
    last_close = dict.fromkeys(symbols, 0.0)
    var = dict.fromkeys(symbols)  # EWMA variance through the last bar
    prev_qv = dict.fromkeys(symbols)
    peak = day_start = prev_eq = cfg.init_cash
    cool, resume = 0, False

    def pay(ev):
        nonlocal cash
        q = pos[ev["symbol"]]
        if q == 0.0:
            return 0.0
        p = -q * ev["price"] * ev["rate"]
        cash += p
        out.funding.append({**ev, "qty": q, "payment": p})
        return p

    def reject(s, t, side, qty, price, reason, w):
        out.rejections.append(
            {
                "symbol": s,
                "open_time": t,
                "side": side,
                "qty": qty,
                "price": price,
                "reason": reason,
            }
        )
        blocked[s] = w

    for i, t in enumerate(times):
        if i > 0 and t // DAY != times[i - 1] // DAY:
            day_start = prev_eq
        if resume:
            peak = day_start = prev_eq
            resume = False
        fees = slips = 0.0
        vp = {s: bar[(s, t)]["open"] if (s, t) in bar else last_close[s] for s in symbols}
        for s in symbols:
            w = applies.get((s, t))
            if w is not None and w != desired[s]:
                desired[s] = w
                blocked[s] = None
        fund = sum(pay(ev) for ev in events.get((i, True), []))
        eq_open = cash + sum(pos[s] * vp[s] for s in symbols if pos[s] != 0.0)
        for want_side in (-1, 1):
            for s in symbols:
                if (s, t) not in bar:
                    continue
                w = 0.0 if (cool > 0 or eq_open <= 0) else desired[s]
                if blocked[s] is not None and w == blocked[s]:
                    continue
                o = bar[(s, t)]["open"]
                delta = w * eq_open / o - pos[s] if eq_open > 0 else -pos[s]
                if delta == 0 or _sign(delta) != want_side:
                    continue
                side = want_side
                f = filt[s]
                if w < 0 and not shorts:
                    reject(s, t, side, abs(delta), o, "short_not_allowed", w)
                    continue
                cur_w = pos[s] * o / eq_open if eq_open > 0 else 0.0
                if w != 0 and _sign(w) == _sign(pos[s]) and abs(w - cur_w) < cfg.rebalance_band:
                    continue
                want = abs(delta)
                qty = _floor(want, f["step_size"])
                if w == 0 and abs(want - qty) <= _EPS * max(f["step_size"], want):
                    qty = want
                if qty <= 0:
                    reject(s, t, side, want, o, "step_size", w)
                    continue
                hs, ic = slip[s]
                frac = hs
                sig = math.sqrt(var[s]) if var[s] is not None else None
                if prev_qv[s] and prev_qv[s] > 0 and sig and sig > 0:
                    frac += ic * sig * math.sqrt(qty * o / prev_qv[s])
                price = _round_price(o * (1 + side * frac), f["tick_size"], side)
                reduce_only = pos[s] * side < 0 and qty <= abs(pos[s])
                if not reduce_only:
                    cost = abs(price - o) + price * fee_rate
                    gross = sum(abs(pos[j]) * vp[j] for j in symbols if pos[j] != 0.0)
                    equity = cash + sum(pos[j] * vp[j] for j in symbols if pos[j] != 0.0)
                    base = abs(pos[s]) if pos[s] * side < 0 else 0.0
                    qmax = base + (lev * (equity - base * cost) - (gross - base * o)) / (
                        o + lev * cost
                    )
                    if spot and side > 0:
                        qmax = min(qmax, cash / (price * (1 + fee_rate)))
                    if qty > qmax:
                        cut = _floor(max(qmax, 0.0), f["step_size"])
                        if cut <= 0:
                            reject(s, t, side, qty, price, "margin", w)
                            continue
                        qty = cut
                        reduce_only = pos[s] * side < 0 and qty <= abs(pos[s])
                reason = None
                if qty < f["min_qty"] * (1 - _EPS):
                    reason = "min_qty"
                elif qty > f["max_qty"] * (1 + _EPS):
                    reason = "max_qty"
                elif not reduce_only and qty * price < f["min_notional"] * (1 - _EPS):
                    reason = "min_notional"
                if reason:
                    reject(s, t, side, qty, price, reason, w)
                    continue
                notional = qty * price
                fee = notional * fee_rate
                cash -= side * notional + fee
                pos[s] += side * qty
                fees += fee
                slips += qty * abs(price - o)
                out.fills.append(
                    {
                        "symbol": s,
                        "open_time": t,
                        "side": side,
                        "qty": qty,
                        "price": price,
                        "fee": fee,
                    }
                )
        fund += sum(pay(ev) for ev in events.get((i, False), []))
        for s in symbols:
            if (s, t) in bar:
                r = bar[(s, t)]
                base_px = r["open"] if var[s] is None else last_close[s]
                ret = math.log(r["close"] / base_px)
                var[s] = ret * ret if var[s] is None else lam * var[s] + (1 - lam) * ret * ret
                last_close[s] = r["close"]
                prev_qv[s] = r["qv"]
        eq = cash + sum(pos[s] * last_close[s] for s in symbols if pos[s] != 0.0)
        out.equity.append(eq)
        if cool > 0:
            cool -= 1
            resume = cool == 0
        elif kill is not None:
            peak = max(peak, eq)
            dd = math.inf if kill.kill_drawdown is None else kill.kill_drawdown
            daily = math.inf if kill.kill_daily_loss is None else kill.kill_daily_loss
            why = (
                "drawdown"
                if eq <= peak * (1 - dd)
                else ("daily_loss" if eq <= day_start * (1 - daily) else None)
            )
            if why:
                cool = kill.kill_cooldown_bars
                out.kills.append({"open_time": t, "reason": why, "equity": eq})
        prev_eq = eq
    return out


def _funding(funding_rates, mark_klines, bar, by_sym, symbols, times) -> dict:
    """(bar index, at_open) -> events, each {symbol, funding_time, rate, price, price_source}."""
    if funding_rates is None:
        return {}
    marks = {}
    if mark_klines is not None:
        for r in mark_klines.iter_rows(named=True):
            marks.setdefault((r["symbol"], int(r["open_time"].timestamp() * 1000)), r["open"])
    end = times[-1] + (min(b - a for a, b in itertools.pairwise(times)) if len(times) > 1 else HOUR)
    events: dict = {}
    for r in funding_rates.sort("symbol", "funding_time").iter_rows(named=True):
        s = r["symbol"]
        if s not in symbols:
            continue
        ms = int(r["funding_time"].timestamp() * 1000)
        T = (ms + HOUR // 2) // HOUR * HOUR
        if not times[0] <= T < end:
            continue
        if marks.get((s, T)) is not None and marks[(s, T)] > 0:
            price, src = marks[(s, T)], "mark"
        elif r.get("mark_price") is not None and r["mark_price"] > 0:
            price, src = r["mark_price"], "funding_rates"
        else:
            after = [b for b in by_sym[s] if b >= T]
            before = [b for b in by_sym[s] if b <= T]
            price = bar[(s, after[0])]["open"] if after else bar[(s, before[-1])]["close"]
            src = "bar"
        i = max(k for k, b in enumerate(times) if b <= T)
        ev = {
            "symbol": s,
            "funding_time": T,
            "rate": r["funding_rate"],
            "price": price,
            "price_source": src,
        }
        events.setdefault((i, times[i] == T), []).append(ev)
    for key in events:
        events[key].sort(key=lambda e: (symbols.index(e["symbol"]), e["funding_time"]))
    return events
