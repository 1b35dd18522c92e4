"""A small BacktestResult in the engine's contract, from real shipped prices, for the report tests.

The engine is written in parallel; these tests need its output's shape, not its logic. So a
plain Python loop trades a deliberately simple rule on the real BTC/ETH/SOL 1h sample: long
1/3 of equity in a symbol while its close is above its 24-bar mean (decided at the close,
filled at the next open), rebalanced when a weight drifts more than `band` of equity; orders
under `min_notional` are rejected; a drawdown kill-switch flattens for `cooldown` bars; BTC's
position pays the real BTCUSDT funding rates at the bar's close (price_source "bar").
Fee and slippage are flat rates. Every frame carries the contract's columns.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from helpers import SAMPLE, load_funding_events, load_sample_klines
from quantlab.backtest.engine import BacktestResult

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
MONTHS = ("2023-01", "2023-02", "2023-03")
UTC_MS = pl.Datetime("ms", "UTC")


def load_bars() -> pl.DataFrame:
    """symbol, open_time, open, close of the real sample, Jan to Mar 2023 (the 03-24 halt included)."""
    frames = [load_sample_klines(s, MONTHS) for s in SYMBOLS]
    return (
        pl.concat(frames).select("symbol", "open_time", "open", "close").sort("symbol", "open_time")
    )


def build_result(
    bars: pl.DataFrame,
    *,
    init_cash: float = 10_000.0,
    fee_rate: float = 0.001,
    slip: float = 0.0002,
    band: float = 0.01,
    min_notional: float = 120.0,
    kill_drawdown: float = 0.06,
    cooldown: int = 24,
) -> BacktestResult:
    funding_events = load_funding_events(SAMPLE / "api" / "fundingRate" / "BTCUSDT.json")
    rates = dict(
        zip(
            funding_events["funding_time"].dt.truncate("1h"),
            funding_events["funding_rate"],
            strict=True,
        )
    )
    signal = bars.with_columns(
        (pl.col("close") > pl.col("close").rolling_mean(24).over("symbol")).alias("long")
    )
    by_time: dict[datetime, dict[str, dict]] = {}
    for row in signal.iter_rows(named=True):
        by_time.setdefault(row["open_time"], {})[row["symbol"]] = row
    qty = dict.fromkeys(SYMBOLS, 0.0)
    last_close: dict[str, float] = {}
    want = dict.fromkeys(SYMBOLS, False)  # the decision at the previous close
    cash, peak, kill_peak, flat_until = init_cash, init_cash, init_cash, -1
    eq_rows, pos_rows, fills, funding, rejections, kills = [], [], [], [], [], []
    equity = init_cash
    step = _step(bars)
    for i, (t, row) in enumerate(sorted(by_time.items())):
        gross = fee_sum = slip_sum = fund_sum = 0.0
        # Funding at time t is paid on the position held just before it, at the last close.
        if (rate := rates.get(t)) is not None and qty["BTCUSDT"] != 0:
            mark = last_close["BTCUSDT"]
            payment = -qty["BTCUSDT"] * mark * rate
            funding.append(("BTCUSDT", t, qty["BTCUSDT"], mark, rate, payment, "bar"))
            cash, fund_sum = cash + payment, payment
        for s, bar in row.items():  # fills at this bar's open, by the decision at the last close
            if s in last_close:
                gross += qty[s] * (bar["open"] - last_close[s])
            w = 1 / 3 if (want[s] and i > flat_until) else 0.0
            delta = w * equity / bar["open"] - qty[s]
            if delta == 0 or (w > 0 and abs(delta) * bar["open"] < band * equity):
                continue
            side = "BUY" if delta > 0 else "SELL"
            price = bar["open"] * (1 + slip if delta > 0 else 1 - slip)
            notional = abs(delta) * price
            if notional < min_notional and w > 0:
                detail = f"{notional:.2f} < {min_notional}"
                rejections.append((s, t, side, abs(delta), price, notional, "min_notional", detail))
                continue
            fee, cost = notional * fee_rate, abs(delta) * abs(price - bar["open"])
            fills.append((s, t, side, abs(delta), price, fee, cost, notional))
            cash -= delta * price + fee
            qty[s] += delta
            fee_sum, slip_sum = fee_sum + fee, slip_sum + cost
        for s, bar in row.items():  # then the bar runs from its open to its close
            gross += qty[s] * (bar["close"] - bar["open"])
            last_close[s] = bar["close"]
        values = {s: qty[s] * last_close[s] for s in last_close}
        new_equity = cash + sum(values.values())
        peak, kill_peak = max(peak, new_equity), max(kill_peak, new_equity)
        if i > flat_until and new_equity < kill_peak * (1 - kill_drawdown):
            flat_until = i + cooldown
            kills.append((t, "drawdown", new_equity, t + step * (cooldown + 1)))
            kill_peak = new_equity
        gross_exp, net_exp = sum(map(abs, values.values())), sum(values.values())
        eq_rows.append(
            (t, new_equity, cash, gross_exp, net_exp, new_equity / equity - 1, gross,
             fee_sum, slip_sum, fund_sum, new_equity / peak - 1)
        )  # fmt: skip
        for s, v in values.items():
            pos_rows.append((s, t, qty[s], last_close[s], v, v / new_equity))
        equity = new_equity
        want = {s: (row[s]["long"] if s in row else want[s]) for s in SYMBOLS}
    return BacktestResult(
        equity=_frame(
            eq_rows,
            {
                "open_time": UTC_MS,
                "equity": pl.Float64,
                "cash": pl.Float64,
                "gross_exposure": pl.Float64,
                "net_exposure": pl.Float64,
                "returns": pl.Float64,
                "gross_pnl": pl.Float64,
                "fees": pl.Float64,
                "slippage": pl.Float64,
                "funding": pl.Float64,
                "drawdown": pl.Float64,
            },
        ),
        positions=_frame(
            pos_rows,
            {
                "symbol": pl.String,
                "open_time": UTC_MS,
                "qty": pl.Float64,
                "close": pl.Float64,
                "value": pl.Float64,
                "weight": pl.Float64,
            },
        ),
        fills=_frame(
            fills,
            {
                "symbol": pl.String,
                "open_time": UTC_MS,
                "side": pl.String,
                "qty": pl.Float64,
                "price": pl.Float64,
                "fee": pl.Float64,
                "slippage_cost": pl.Float64,
                "notional": pl.Float64,
            },
        ),
        funding=_frame(
            funding,
            {
                "symbol": pl.String,
                "funding_time": UTC_MS,
                "qty": pl.Float64,
                "mark_price": pl.Float64,
                "rate": pl.Float64,
                "payment": pl.Float64,
                "price_source": pl.String,
            },
        ),
        rejections=_frame(
            rejections,
            {
                "symbol": pl.String,
                "open_time": UTC_MS,
                "side": pl.String,
                "qty": pl.Float64,
                "price": pl.Float64,
                "notional": pl.Float64,
                "reason": pl.String,
                "detail": pl.String,
            },
        ),
        kills=_frame(
            kills,
            {"open_time": UTC_MS, "reason": pl.String, "equity": pl.Float64, "resume_time": UTC_MS},
        ),
        init_cash=init_cash,
        stats={},  # the engine's own counts; summarize computes every statistic it reports
    )


def _step(bars: pl.DataFrame):
    times = bars["open_time"].unique().sort()
    return times[1] - times[0]


def _frame(rows: list[tuple], schema: dict) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")
