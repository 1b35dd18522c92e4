"""The backtest's numba core: targets on a [bar x symbol] grid -> fills, funding, equity.

One bar, in order: (1) funding events at the bar's open, on the position held before its
fills; (2) orders at the open, sells before buys, each sized from the equity valued at the
open (qty = target * equity / open, floored to stepSize), slipped and rounded to tickSize
against the taker, checked against the venue filters and the margin (spot: cash >= 0; USD-M:
gross / equity <= max_leverage after the trade; an order over it is cut to what fits, and
rejected with reason margin when nothing fits); (3) funding events inside the bar, on the
position after its fills; (4) valuation at the close and the kill-switch.

`simulate_path` is the one loop; `sweep` runs it over K target matrices without records, so the
sweep and the backtest cannot drift apart. Array layouts are the `SYM_*`, `PAR_*`, `EV_*`,
`BAR_*`, `FILL_*`, `REJ_*` column indices below; `quantlab.backtest.engine` builds them.
"""

from __future__ import annotations

import numba
import numpy as np

from quantlab.portfolio.costs import slippage_fraction
from quantlab.portfolio.killswitch import kill_step
from quantlab.portfolio.venue import check_order, floor_to_step, round_price

# sym[S, 9]: per-symbol rules and costs.
SYM_STEP, SYM_TICK, SYM_MIN_QTY, SYM_MAX_QTY, SYM_MIN_NOTIONAL = 0, 1, 2, 3, 4
SYM_FEE, SYM_HALF_SPREAD, SYM_IMPACT, SYM_ALLOW_SHORT = 5, 6, 7, 8
N_SYM = 9
# par[8]: scalars.
PAR_INIT_CASH, PAR_MAX_LEVERAGE, PAR_CASH_ACCOUNT, PAR_BAND = 0, 1, 2, 3
PAR_KILL_ON, PAR_KILL_DD, PAR_KILL_DAILY, PAR_KILL_COOLDOWN = 4, 5, 6, 7
N_PAR = 8
# ev[E, 5]: funding events sorted by bar, at-open first: bar index, symbol, at_open, rate, price.
EV_T, EV_SYM, EV_AT_OPEN, EV_RATE, EV_PRICE = 0, 1, 2, 3, 4
N_EV = 5
# bar_out[T, 8]: per bar close.
BAR_CASH, BAR_EQUITY, BAR_GROSS, BAR_NET, BAR_GROSS_PNL, BAR_FEES, BAR_SLIPPAGE, BAR_FUNDING = (
    range(8)
)
N_BAR = 8
# fills[F, 8]: bar, symbol, side (+1 buy / -1 sell), qty, price, fee, slippage_cost, notional.
N_FILL = 8
# rej[R, 7]: bar, symbol, side, qty, price, reason code (RejectReason), aux (the limit crossed).
N_REJ = 7
# fund_rec[E, 3]: event row, qty held, payment. kills[K, 4]: bar, reason, equity, resume bar.
N_FUND, N_KILL = 3, 4
# counts: fills, rejections, funding payments, kills, orders cut to the margin.
C_FILLS, C_REJ, C_FUND, C_KILLS, C_CLIPPED = 0, 1, 2, 3, 4
N_COUNTS = 5

_FLAT_EPS = 1e-9


@numba.njit(cache=True)
def _pay_funding(e, ev, pos, fund_rec, counts, record):
    s = int(ev[e, EV_SYM])
    q = pos[s]
    if q == 0.0:
        return 0.0
    payment = -q * ev[e, EV_PRICE] * ev[e, EV_RATE]
    if record:
        n = counts[C_FUND]
        fund_rec[n, 0] = e
        fund_rec[n, 1] = q
        fund_rec[n, 2] = payment
    counts[C_FUND] += 1
    return payment


@numba.njit(cache=True)
def _max_qty(s, side, price, fee_rate, cash, pos, vp, lev, cash_account):
    """The largest qty of this order that keeps gross/equity <= lev (and cash >= 0 on spot)."""
    gross = 0.0
    equity = cash
    for j in range(pos.shape[0]):
        if pos[j] != 0.0:
            gross += abs(pos[j]) * vp[j]
            equity += pos[j] * vp[j]
    o = vp[s]
    cost = abs(price - o) + price * fee_rate  # lost to equity per unit traded
    # the part of a sign-crossing order that closes the current position frees exposure
    base = abs(pos[s]) if pos[s] * side < 0.0 else 0.0
    q = base + (lev * (equity - base * cost) - (gross - base * o)) / (o + lev * cost)
    if cash_account and side > 0:
        q = min(q, cash / (price * (1.0 + fee_rate)))
    return q


@numba.njit(cache=True)
def _reject(t, s, side, qty, price, code, aux, rej, counts, record):
    if record:
        n = counts[C_REJ]
        rej[n, 0] = t
        rej[n, 1] = s
        rej[n, 2] = side
        rej[n, 3] = qty
        rej[n, 4] = price
        rej[n, 5] = code
        rej[n, 6] = aux
    counts[C_REJ] += 1


@numba.njit(cache=True)
def simulate_path(
    open_, close_ff, has_bar, targets, prev_qv, sigma, day_id, sym, par, ev,
    bar_out, pos_out, fills, rej, fund_rec, kills, counts, record,
):  # fmt: skip
    """Run one target path; fills `bar_out` (and, when `record`, the record arrays) in place."""
    n_bars, n_sym = open_.shape
    cash = par[PAR_INIT_CASH]
    lev = par[PAR_MAX_LEVERAGE]
    cash_account = par[PAR_CASH_ACCOUNT] > 0.0
    band = par[PAR_BAND]
    kill_on = par[PAR_KILL_ON] > 0.0
    pos = np.zeros(n_sym)
    desired = np.zeros(n_sym)
    blocked = np.full(n_sym, np.nan)  # the weight whose order was rejected: not resent
    vp = np.zeros(n_sym)  # valuation price at this bar's open
    last_close = np.zeros(n_sym)
    peak = cash
    day_start = cash
    prev_eq = cash
    cool = 0
    resume_pending = False
    e = 0
    n_ev = ev.shape[0]
    for t in range(n_bars):
        if t > 0 and day_id[t] != day_id[t - 1]:
            day_start = prev_eq
        if resume_pending:
            peak = prev_eq
            day_start = prev_eq
            resume_pending = False
        fee_t = 0.0
        slip_t = 0.0
        fund_t = 0.0
        for s in range(n_sym):
            vp[s] = open_[t, s] if has_bar[t, s] else last_close[s]
            w = targets[t, s]
            if w == w and w != desired[s]:
                desired[s] = w
                blocked[s] = np.nan
        while e < n_ev and ev[e, EV_T] == t and ev[e, EV_AT_OPEN] > 0.0:
            paid = _pay_funding(e, ev, pos, fund_rec, counts, record)
            cash += paid
            fund_t += paid
            e += 1
        eq_open = cash
        for s in range(n_sym):
            if pos[s] != 0.0:
                eq_open += pos[s] * vp[s]
        for sells_first in range(2):
            want_side = -1.0 if sells_first == 0 else 1.0
            for s in range(n_sym):
                if not has_bar[t, s]:
                    continue
                w = 0.0 if (cool > 0 or eq_open <= 0.0) else desired[s]
                if w == blocked[s]:
                    continue
                o = open_[t, s]
                delta = w * eq_open / o - pos[s] if eq_open > 0.0 else -pos[s]
                if delta == 0.0 or (delta > 0.0) != (want_side > 0.0):
                    continue
                side = want_side
                step = sym[s, SYM_STEP]
                if w < 0.0 and sym[s, SYM_ALLOW_SHORT] == 0.0:
                    _reject(t, s, side, abs(delta), o, 6, w, rej, counts, record)
                    blocked[s] = w
                    continue
                cur_w = pos[s] * o / eq_open if eq_open > 0.0 else 0.0
                flatten = w == 0.0
                sign_change = np.sign(w) != np.sign(pos[s])
                if not flatten and not sign_change and abs(w - cur_w) < band:
                    continue
                want = abs(delta)
                qty = floor_to_step(want, step)
                if flatten and abs(want - qty) <= _FLAT_EPS * max(step, want):
                    qty = want  # close exactly, leaving no float dust
                if qty <= 0.0:
                    _reject(t, s, side, want, o, 1, step, rej, counts, record)
                    blocked[s] = w
                    continue
                frac = slippage_fraction(
                    qty * o, prev_qv[t, s], sigma[t, s], sym[s, SYM_HALF_SPREAD], sym[s, SYM_IMPACT]
                )
                price = round_price(o * (1.0 + side * frac), sym[s, SYM_TICK], int(side))
                fee_rate = sym[s, SYM_FEE]
                reduce_only = pos[s] * side < 0.0 and qty <= abs(pos[s])
                if not reduce_only:
                    qmax = _max_qty(s, side, price, fee_rate, cash, pos, vp, lev, cash_account)
                    if qty > qmax:
                        cut = floor_to_step(max(qmax, 0.0), step)
                        if cut <= 0.0:
                            _reject(t, s, side, qty, price, 5, qmax, rej, counts, record)
                            blocked[s] = w
                            continue
                        qty = cut
                        counts[C_CLIPPED] += 1
                        reduce_only = pos[s] * side < 0.0 and qty <= abs(pos[s])
                code = check_order(
                    qty, price, step, sym[s, SYM_MIN_QTY], sym[s, SYM_MAX_QTY],
                    sym[s, SYM_MIN_NOTIONAL], reduce_only,
                )  # fmt: skip
                if code != 0:
                    aux = sym[s, SYM_MIN_NOTIONAL] if code == 3 else sym[s, SYM_MIN_QTY]
                    if code == 4:
                        aux = sym[s, SYM_MAX_QTY]
                    _reject(t, s, side, qty, price, code, aux, rej, counts, record)
                    blocked[s] = w
                    continue
                notional = qty * price
                fee = notional * fee_rate
                slip = qty * abs(price - o)
                cash -= side * notional + fee
                pos[s] += side * qty
                fee_t += fee
                slip_t += slip
                if record:
                    n = counts[C_FILLS]
                    fills[n, 0] = t
                    fills[n, 1] = s
                    fills[n, 2] = side
                    fills[n, 3] = qty
                    fills[n, 4] = price
                    fills[n, 5] = fee
                    fills[n, 6] = slip
                    fills[n, 7] = notional
                counts[C_FILLS] += 1
        while e < n_ev and ev[e, EV_T] == t:
            paid = _pay_funding(e, ev, pos, fund_rec, counts, record)
            cash += paid
            fund_t += paid
            e += 1
        eq = cash
        gross = 0.0
        net = 0.0
        for s in range(n_sym):
            c = close_ff[t, s]
            if c == c:
                last_close[s] = c
            if pos[s] != 0.0:
                value = pos[s] * last_close[s]
                eq += value
                net += value
                gross += abs(value)
            if record:
                pos_out[t, s] = pos[s]
        bar_out[t, BAR_CASH] = cash
        bar_out[t, BAR_EQUITY] = eq
        bar_out[t, BAR_GROSS] = gross
        bar_out[t, BAR_NET] = net
        bar_out[t, BAR_GROSS_PNL] = eq - prev_eq + fee_t + slip_t - fund_t
        bar_out[t, BAR_FEES] = fee_t
        bar_out[t, BAR_SLIPPAGE] = slip_t
        bar_out[t, BAR_FUNDING] = fund_t
        if cool > 0:
            cool -= 1
            resume_pending = cool == 0
        elif kill_on:
            peak = max(peak, eq)
            why = kill_step(eq, peak, day_start, par[PAR_KILL_DD], par[PAR_KILL_DAILY])
            if why != 0:
                cool = int(par[PAR_KILL_COOLDOWN])
                if record:
                    k = counts[C_KILLS]
                    kills[k, 0] = t
                    kills[k, 1] = why
                    kills[k, 2] = eq
                    kills[k, 3] = t + cool + 1
                counts[C_KILLS] += 1
        prev_eq = eq


@numba.njit(cache=True)
def sweep(open_, close_ff, has_bar, targets_k, prev_qv, sigma, day_id, sym, par, ev):
    """`simulate_path` over K target matrices [K, T, S]: equity [K, T] and counts [K, 5]."""
    n_k = targets_k.shape[0]
    n_bars, n_sym = open_.shape
    equity = np.empty((n_k, n_bars))
    counts_k = np.zeros((n_k, N_COUNTS), dtype=np.int64)
    bar_out = np.empty((n_bars, N_BAR))
    none2 = np.empty((0, n_sym))
    for k in range(n_k):
        counts = np.zeros(N_COUNTS, dtype=np.int64)
        simulate_path(
            open_, close_ff, has_bar, targets_k[k], prev_qv, sigma, day_id, sym, par, ev,
            bar_out, none2, np.empty((0, N_FILL)), np.empty((0, N_REJ)),
            np.empty((0, N_FUND)), np.empty((0, N_KILL)), counts, False,
        )  # fmt: skip
        equity[k] = bar_out[:, BAR_EQUITY]
        counts_k[k] = counts
    return equity, counts_k
