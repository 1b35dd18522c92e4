"""The simulated venue: orders fill against recorded bars with the backtest's prices and costs.

A MARKET order placed at venue time t (the decision bar's close = the next bar's open_time) fills
at the first bar of its symbol opening at or after t, once the clock has passed that bar's close,
at `matching.market_price` with `costs.slippage_fraction` fed by `costs.impact_inputs` over the
venue's bars: the same inputs the backtest engine uses, so the same order on the same bars gets
the same price (the EWMA sigma starts at the first bar passed, so pass the backtest's window).
LIMIT orders follow `matching.limit_fill` bar by bar; fees follow `matching.fee_for`.

Everything the venue knows (orders, trades, balances, clock, fault script) lives in its own
SQLite file (`_paper_state`), one transaction per state change, so a restarted process sees
every order placed before. Where the venue parts from Binance: a client id is never reused (Binance frees it once
the order is closed), IOC/FOK are judged on the first bar instead of the book at placement, and
spot has no reduce-only exemption from the min notional (Binance's rule, stricter than the
engine's).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import polars as pl

from quantlab.execution._paper_state import EPS, FAULT_KINDS, PaperState
from quantlab.execution.planner import lock_for
from quantlab.portfolio import matching
from quantlab.portfolio.costs import CostModel, impact_inputs, slippage_fraction
from quantlab.portfolio.orders import (
    Ack,
    Balance,
    OrderIntent,
    OrderReport,
    OrderStatus,
    OrderType,
    Rejected,
    SubmitResult,
    TimeInForce,
    Unknown,
    VenueSnapshot,
)  # fmt: skip
from quantlab.portfolio.types import RejectReason, Side
from quantlab.portfolio.venue import VenueRules, check_order_for, floor_to_step

__all__ = ["FAULT_KINDS", "INSUFFICIENT", "PaperVenue"]

INSUFFICIENT = "Account has insufficient balance for requested action."
BAR_COLUMNS = ("symbol", "open_time", "open", "high", "low", "close", "volume", "quote_volume")


@dataclass(frozen=True)
class _Bars:
    """One symbol's bars as arrays, with the engine's impact inputs per bar."""

    ms: list[int]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    prev_qv: np.ndarray
    sigma: np.ndarray

    def prices(self, k: int) -> matching.BarPrices:
        return matching.BarPrices(self.ms[k], float(self.open[k]), float(self.high[k]),
                                  float(self.low[k]), float(self.close[k]), float(self.volume[k]))  # fmt: skip


def _symbol_bars(bars: pl.DataFrame, lam: float) -> dict[str, _Bars]:
    """Per symbol, as `backtest.arrays.prepare_inputs` builds them: quote volume (else volume x
    close) and `impact_inputs` over the symbol's own bars (a grid gap carries the state there)."""
    out = {}
    frame = bars.with_columns(
        pl.col("open_time").dt.epoch("ms").alias("_ms"),
        pl.coalesce(pl.col("quote_volume").cast(pl.Float64), pl.col("volume") * pl.col("close")).alias("_qv"),
    ).sort("symbol", "open_time")  # fmt: skip
    for (symbol,), g in frame.group_by("symbol", maintain_order=True):
        col = {
            c: g[c].cast(pl.Float64).to_numpy()
            for c in ("open", "high", "low", "close", "volume", "_qv")
        }
        one = [col[c].reshape(-1, 1).copy() for c in ("open", "close", "_qv")]
        prev_qv, sigma = impact_inputs(*one, np.ones((g.height, 1), dtype=np.bool_), lam)
        out[symbol] = _Bars(g["_ms"].to_list(), col["open"], col["high"], col["low"], col["close"],
                            col["volume"], prev_qv[:, 0], sigma[:, 0])  # fmt: skip
    return out


class PaperVenue:
    """`types.Broker` on recorded bars, its state in a SQLite file (`sqlite:///path`).

    The clock starts at the first bar's open_time and only moves forward (`advance`). A BUY
    locks `planner.lock_for` (quote at the reference price plus `MARKET_BUY_BUFFER` for a market
    order, at the limit for a limit), a SELL its base qty; short of free balance the order is
    Rejected(-2010, INSUFFICIENT). A fill costing more than the order's lock plus the free
    quote is cut to what the balance allows and the rest EXPIRES (Binance's market remainder).

    Faults for the integrator's tests, persisted with the state; each entry is used up by the
    next operation it applies to:
    - `venue.faults = ("lose_reply", ("missing_for", 2), "timeout_before", "snapshot_fail")`
      (assign a new tuple; the property returns a copy). "lose_reply": the next submit places
      the order and returns Unknown("reply lost"); "timeout_before": the next submit returns
      Unknown without placing; ("missing_for", N): the next order placed (also one whose reply
      is lost: Binance's eventual consistency) is invisible to its next N reads (query, cancel,
      snapshot); "snapshot_fail": the next snapshot is complete=False with nothing in it.
    - `venue.fault_rate = x`: each submit and snapshot draws (seeded by `fault_seed`, reproducible
      across restarts) a fault of those kinds with probability x; `venue.faults_injected` counts
      scripted and random faults.
    """

    name = "paper"

    def __init__(self, state_url: str, account: str, bars: pl.DataFrame, interval_ms: int,
                 rules: VenueRules, assets: dict[str, tuple[str, str]], costs: CostModel,
                 max_participation: float, initial_balances: dict[str, float],
                 fault_seed: int = 0) -> None:  # fmt: skip
        missing = sorted(set(BAR_COLUMNS) - set(bars.columns))
        if missing:
            raise ValueError(f"bars lack {missing}; pass klines with OHLC, volume, quote_volume")
        self.account, self.interval_ms, self.rules = account, interval_ms, rules
        self.assets = assets
        self.costs, self.max_participation = costs, max_participation
        self._bars = _symbol_bars(bars, costs.ewma_lambda)
        start = min((b.ms[0] for b in self._bars.values()), default=0)
        self._state = PaperState(state_url, account, initial_balances, start, fault_seed)

    def close(self) -> None:
        self._state.close()

    def __enter__(self) -> PaperVenue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def faults(self) -> tuple:
        return self._state.faults()

    @faults.setter
    def faults(self, entries) -> None:
        self._state.set_faults(entries)

    @property
    def fault_rate(self) -> float:
        return self._state.get("fault_rate")

    @fault_rate.setter
    def fault_rate(self, x: float) -> None:
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"fault_rate is a probability in [0, 1], got {x}")
        with self._state.tx() as db:
            self._state.set(db, "fault_rate", float(x))

    @property
    def faults_injected(self) -> int:
        return self._state.get("faults_injected")

    @property
    def now_ms(self) -> int:
        return self._state.get("now_ms")

    def balances(self) -> dict[str, Balance]:
        return self._state.balances()

    def submit(self, intent: OrderIntent) -> SubmitResult:
        st = self._state
        with st.tx() as db:
            fault = st.scripted(db, ("lose_reply", "timeout_before")) or st.draw(
                db, ("lose_reply", "timeout_before", "missing_for")
            )
            if fault == "timeout_before":
                return Unknown("timeout: the order never reached the paper venue (injected)")
            result = self._place(db, intent)
            if isinstance(result, Ack):
                hide = fault if isinstance(fault, tuple) else st.scripted(db, ("missing_for",))
                if hide:
                    st.hide(db, intent.client_id, hide[1])
            if fault == "lose_reply":
                return Unknown("reply lost (injected): the order may exist; query it")
            return result

    def _place(self, db, it: OrderIntent) -> SubmitResult:
        """Binance's checks in its order: symbol, duplicate id, filters, then the balance."""
        if not (
            it.symbol in self._bars and it.symbol in self.assets and it.symbol in self.rules.symbols
        ):
            return Rejected(-1121, "Invalid symbol.")
        if self._state.row(db, it.client_id):
            return Rejected(-2010, "Duplicate order sent.")
        i = self.rules.index(it.symbol)
        step, tick = float(self.rules.step_size[i]), float(self.rules.tick_size[i])
        if it.type is OrderType.LIMIT:
            if it.tif is None:
                return Rejected(-1102, "Mandatory parameter 'timeInForce' was not sent, was "
                                "empty/null, or malformed.")  # fmt: skip
            off_tick = (
                it.price
                and tick > 0
                and abs(round(it.price / tick) * tick - it.price) > EPS * it.price
            )
            if not it.price or it.price <= 0 or off_tick:
                return Rejected(-1013, "Filter failure: PRICE_FILTER")
        if it.qty <= 0 or abs(floor_to_step(it.qty, step) - it.qty) > EPS * it.qty:
            return Rejected(-1013, "Filter failure: LOT_SIZE")
        ref = it.price if it.type is OrderType.LIMIT else it.reference_price
        reason = check_order_for(self.rules, it.symbol, it.qty, ref, reduce_only=False)
        if reason is not None:
            name = "NOTIONAL" if reason is RejectReason.MIN_NOTIONAL else "LOT_SIZE"
            return Rejected(-1013, f"Filter failure: {name}")
        asset, amount = lock_for(it, self.costs.taker, self.assets)
        if self._state.free(db, asset) < amount * (1.0 - EPS):
            return Rejected(-2010, INSUFFICIENT)
        self._state.move(db, asset, -amount, amount)
        row = self._state.insert_order(db, it, self._state.get("now_ms", db), asset, amount)
        return Ack(self._state.report(db, row))

    def advance(self, now_ms: int) -> None:
        """Match every open order against the bars that closed by `now_ms` (sells first)."""
        with self._state.tx() as db:
            if now_ms <= self._state.get("now_ms", db):
                return
            where = "status IN ('NEW', 'PARTIALLY_FILLED') ORDER BY side = 'BUY', seq"
            for row in self._state.rows(db, where):
                self._match(db, row, now_ms)
            self._state.set(db, "now_ms", now_ms)

    def _match(self, db, o: dict, now_ms: int) -> None:
        b = self._bars[o["symbol"]]
        side = Side(o["side"])
        i = self.rules.index(o["symbol"])
        step, tick = float(self.rules.step_size[i]), float(self.rules.tick_size[i])
        k = bisect.bisect_left(b.ms, o["time_ms"]) + o["bars_seen"]
        status = OrderStatus(o["status"])
        while status.open and k < len(b.ms) and b.ms[k] + self.interval_ms <= now_ms:
            left = o["qty"] - o["executed_qty"]
            first = o["bars_seen"] == 0
            if o["type"] == OrderType.MARKET:
                j = self.costs.symbols.index(o["symbol"])
                frac = slippage_fraction(left * b.open[k], b.prev_qv[k], b.sigma[k],
                                         self.costs.half_spread[j], self.costs.impact_coef[j])  # fmt: skip
                qty, price = left, matching.market_price(side, float(b.open[k]), frac, tick)
            else:
                qty, price = matching.limit_fill(
                    side, o["price"], left, b.prices(k), self.max_participation, step
                )
                if o["tif"] == TimeInForce.FOK and qty < left * (1.0 - EPS):
                    qty = 0.0
            done = self._fill(db, o, side, qty, price, not first, b.ms[k], step) if qty > 0 else 0.0
            o["bars_seen"] += 1
            o["update_ms"] = b.ms[k] if done > 0 else o["update_ms"]
            left -= done
            if left <= EPS * o["qty"]:
                status = OrderStatus.FILLED
            elif (
                done < qty
                or o["type"] == OrderType.MARKET
                or o["tif"] in (TimeInForce.IOC, TimeInForce.FOK)
            ):
                status = OrderStatus.EXPIRED
                o["update_ms"] = b.ms[k]
            elif o["executed_qty"] > 0:
                status = OrderStatus.PARTIALLY_FILLED
            k += 1
        o["status"] = str(status)
        self._state.save(db, o)

    def _fill(
        self, db, o: dict, side: Side, qty: float, price: float, maker: bool, t: int, step: float
    ) -> float:
        """Book one execution; a buy is cut to what its lock and the free quote pay. The qty filled."""
        base, quote = self.assets[o["symbol"]]
        if side is Side.BUY:
            can = o["lock_left"] + self._state.free(db, quote)
            if qty * price > can:
                qty = float(floor_to_step(can / price, step))
            if qty <= 0:
                return 0.0
            cost = qty * price
            from_lock = min(cost, o["lock_left"])
            self._state.move(db, quote, -(cost - from_lock), -from_lock)
            o["lock_left"] -= from_lock
        else:
            qty = min(qty, o["lock_left"])
            self._state.move(db, base, 0.0, -qty)
            o["lock_left"] -= qty
        rate = self.costs.maker if maker else self.costs.taker
        fee, fee_asset = matching.fee_for(side, qty, price, rate, base, quote)
        if side is Side.BUY:
            self._state.move(db, base, qty - fee, 0.0)
        else:
            self._state.move(db, quote, qty * price - fee, 0.0)
        self._state.add_trade(db, o, side, qty, price, fee, fee_asset, t, maker)
        return qty

    def query(self, symbol: str, client_id: str) -> OrderReport | None:
        with self._state.tx() as db:
            row = self._state.row(db, client_id, symbol)
            return self._state.report(db, row) if self._state.visible(db, row) else None

    def cancel(self, symbol: str, client_id: str) -> OrderReport | None:
        st = self._state
        with st.tx() as db:
            row = st.row(db, client_id, symbol)
            if not st.visible(db, row):
                return None
            if OrderStatus(row["status"]).open:
                row["status"], row["update_ms"] = str(OrderStatus.CANCELED), st.get("now_ms", db)
                st.save(db, row)
            return st.report(db, row)

    def snapshot(self, symbols: list[str], since_ms: int) -> VenueSnapshot:
        st = self._state
        with st.tx() as db:
            if st.scripted(db, ("snapshot_fail",)) or st.draw(db, ("snapshot_fail",)):
                return VenueSnapshot((), (), (), {}, complete=False,
                                     errors=("snapshot read failed (injected)",))  # fmt: skip
            marks = ",".join("?" * len(symbols))
            where = (f"symbol IN ({marks}) AND (status IN ('NEW', 'PARTIALLY_FILLED')"
                     " OR time_ms >= ? OR update_ms >= ?) ORDER BY seq")  # fmt: skip
            rows = st.rows(db, where, (*symbols, since_ms, since_ms))
            shown = [st.report(db, r) for r in rows if st.visible(db, r)]
            return VenueSnapshot(
                open_orders=tuple(r for r in shown if r.status.open),
                recent_orders=tuple(r for r in shown if max(r.time_ms, r.update_ms) >= since_ms),
                trades=tuple(t for r in shown for t in r.trades if t.time_ms >= since_ms),
                balances=st.balances(),
            )
