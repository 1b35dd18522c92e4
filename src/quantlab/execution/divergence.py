"""Why paper P&L differs from the backtest's: the gap paper − backtest split into named buckets.

No public tool splits a backtest-vs-live gap (research note §7); this follows pysystemtrade's
slippage decomposition. Each paper fill is paired with its backtest twin by (symbol, fill bar,
side): the backtest trades a decision at the next bar of the symbol, so a paper order's fill bar
is the first bar after its `decision_ms`. All amounts are in quote currency; positive means the
paper account did better. With s = +1 buy / −1 sell, E = the symbol's close at the window's last
bar, Q_c = min(Q_paper, Q_backtest), O = the backtest fill bar's open, A = the open of the bar the
paper fill happened in (O where no bar has it):

- price_timing    s·Q_c·(O − A): the paper filled in another bar than the backtest assumed;
                  equals the difference of the two delays vs the decision price, s·(R − A) − s·(R − O)
- price_execution s·Q_c·((p_bt − O) − (p_paper − A)): each fill's price against its own bar's open
- fees            backtest fee − paper fee in quote (a fee in base × that fill's price)
- funding         paper funding cash flows − the backtest's funding payments (0 on spot)
- size            s·(Q_paper − Q_bt)·(E − the price of the larger fill), plus the move to E of a fee
                  paid in base (the paper holds that much less than it bought)
- missed / extra  −(P&L to E) of a backtest fill with no paper twin / P&L to E of a paper fill with none
- unexplained     total gap − Σ buckets (initial holdings, marks, a fee in a third asset): shown

The total gap is the paper's final equity (ledger equity at or before the last bar's close)
minus the backtest's final equity; both mark with the same closes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from quantlab.backtest.engine import BacktestResult, simulate
from quantlab.config import BacktestConfig
from quantlab.errors import DataError
from quantlab.portfolio.types import Side
from quantlab.portfolio.venue import VenueRules
from quantlab.schema import UTC_MS

BUCKETS = ("price_timing", "price_execution", "fees", "funding", "size", "missed", "extra")
MEANING = {
    "price_timing": "The paper order filled in a different bar than the backtest assumed (the "
    "next bar after the decision): Q_common × the move between the two bars' opens.",
    "price_execution": "Each fill's price against the open of the bar it filled in (spread, "
    "impact, tick rounding, a limit price), paper against backtest, on the common quantity.",
    "fees": "Backtest fee minus the paper fee converted to quote (a fee in base at the fill price).",
    "funding": "Paper funding cash flows minus the backtest's funding payments; 0 on spot.",
    "size": "The quantity difference (rounding, filters, partial fills, breakers) marked from its "
    "fill price to the window's last close, and the later move of a fee paid in base.",
    "missed": "Backtest fills with no paper twin (skipped, rejected or never placed): minus "
    "their P&L from the fill to the window's last close, fees included.",
    "extra": "Paper fills with no backtest twin: their P&L from the fill to the last close.",
    "unexplained": "Total gap minus every bucket above; not hidden: e.g. holdings the paper "
    "account had before the window, equity marked at other prices, a fee in a third asset.",
}
_FILL_COLS = ("symbol", "client_id", "side", "qty", "price", "fee", "fee_asset", "time_ms")


@dataclass(frozen=True)
class Divergence:
    """The decomposed gap: `buckets` (quote; Σ buckets == totals['gap'], unexplained included),
    `per_fill` (one row per pair, missed or extra fill), `by_symbol`, `totals` and `window`."""

    buckets: dict[str, float]
    per_fill: pl.DataFrame
    by_symbol: pl.DataFrame
    totals: dict[str, Any]
    window: tuple[datetime, datetime]

    def to_frame(self) -> pl.DataFrame:
        """One row per bucket (value, share of the gap, meaning): the dataset form."""
        gap = self.totals["gap"]
        return pl.DataFrame(
            {
                "bucket": list(self.buckets),
                "value": [float(v) for v in self.buckets.values()],
                "share_of_gap": [v / gap if gap else math.nan for v in self.buckets.values()],
                "window_start": [self.window[0]] * len(self.buckets),
                "window_end": [self.window[1]] * len(self.buckets),
                "meaning": [MEANING[b] for b in self.buckets],
            },
            schema_overrides={"window_start": UTC_MS, "window_end": UTC_MS},
        )


def backtest_twin(
    bars: pl.DataFrame,
    targets: pl.DataFrame,
    backtest_cfg: BacktestConfig,
    rules: VenueRules,
    market: str,
    init_cash: float,
    periods_per_year: int,
    **simulate_kw: Any,
) -> BacktestResult:
    """The backtest of the paper window: `targets` traded on `bars` from the paper account's
    initial equity. Pass bars from the paper run's first decision bar; targets outside the bars
    are dropped (they cannot trade in the window). `simulate_kw`: funding_rates, mark_klines..."""
    cfg = backtest_cfg.model_copy(update={"init_cash": float(init_cash)})
    inside = targets.join(
        bars.select("symbol", "open_time"), on=["symbol", "open_time"], how="semi"
    )
    return simulate(
        bars, inside, cfg, rules, market=market, periods_per_year=periods_per_year, **simulate_kw
    )


def decompose(
    paper_fills: pl.DataFrame,
    paper_orders: pl.DataFrame,
    paper_equity: pl.DataFrame,
    twin: BacktestResult,
    bars: pl.DataFrame,
    *,
    paper_funding: pl.DataFrame | None = None,
    assets: dict[str, tuple[str, str]] | None = None,
    fee_prices: dict[str, float] | None = None,
) -> Divergence:
    """Split paper final equity − `twin`'s final equity into the module's buckets.

    `paper_fills`/`paper_orders`/`paper_equity`: the ledger's fills, orders_frame and equity
    frames; `paper_funding`: (symbol, time_ms, amount) funding cash flows (perps); `assets`:
    symbol -> (base, quote) where a symbol's name does not tell; `fee_prices`: quote price of a
    fee asset that is neither base nor quote (e.g. BNB).
    """
    times = twin.equity["open_time"]
    if times.len() == 0:
        raise DataError("the backtest twin has no bars; run it over the paper window first")
    start_ms, end_ms = int(times.dt.epoch("ms")[0]), int(times.dt.epoch("ms")[-1])
    index = _bar_index(bars, end_ms)
    end_close_ms = end_ms + _interval_ms(index)
    closes = _end_closes(index)
    paper = _paper_legs(paper_fills, paper_orders, index, assets or {}, fee_prices or {})
    inside = paper.filter(pl.col("fill_ms").is_between(start_ms, end_ms))
    outside = paper.height - inside.height  # before, after, or decided at the last bar
    pairs = _pair(_paper_by_bar(inside), _twin_legs(twin, index), closes)
    funding = _funding(twin, paper_funding, start_ms, end_close_ms)
    buckets = {b: float(pairs[b].sum()) for b in BUCKETS if b != "funding"}
    buckets["funding"] = float(funding["funding"].sum())
    paper_initial, paper_final = _paper_equity_at(paper_equity, start_ms, end_close_ms)
    backtest_final = float(twin.equity["equity"][-1])
    gap = paper_final - backtest_final
    explained = math.fsum(buckets.values())
    buckets = {b: buckets[b] for b in BUCKETS} | {"unexplained": gap - explained}
    kinds = pairs["kind"].value_counts()
    count = dict(zip(kinds["kind"], kinds["count"], strict=True))
    totals = {
        "paper_initial": paper_initial,
        "backtest_initial": float(twin.init_cash),
        "initial_gap": paper_initial - float(twin.init_cash),
        "paper_final": paper_final,
        "backtest_final": backtest_final,
        "gap": gap,
        "explained": explained,
        "unexplained": gap - explained,
        "unexplained_share": (gap - explained) / gap if gap else math.nan,
        "pairs": int(count.get("pair", 0)),
        "missed_fills": int(count.get("missed", 0)),
        "extra_fills": int(count.get("extra", 0)),
        "paper_fills_outside_window": outside,
    }
    window = (times[0], times[-1])
    return Divergence(buckets, pairs, _by_symbol(pairs, funding), totals, window)


def _bar_index(bars: pl.DataFrame, end_ms: int) -> pl.DataFrame:
    missing = {"symbol", "open_time", "open", "close"} - set(bars.columns)
    if missing:
        raise DataError(f"bars lack {sorted(missing)}; pass the klines the twin was run on")
    return (
        bars.select(
            pl.col("symbol").cast(pl.String),
            pl.col("open_time").cast(UTC_MS).dt.epoch("ms").alias("bar_ms"),
            pl.col("open").cast(pl.Float64),
            pl.col("close").cast(pl.Float64),
        )
        .filter(pl.col("bar_ms") <= end_ms)
        .sort("bar_ms")
    )


def _interval_ms(index: pl.DataFrame) -> int:
    step = index.sort("symbol", "bar_ms").select(pl.col("bar_ms").diff().over("symbol").min())
    value = step.item()
    if value is None or value <= 0:
        raise DataError("cannot tell the bar interval: pass at least two bars of one symbol")
    return int(value)


def _end_closes(index: pl.DataFrame) -> pl.DataFrame:
    return index.drop_nulls("close").group_by("symbol").agg(pl.col("close").last().alias("end"))


def _fee_roles(fills: pl.DataFrame, assets, fee_prices) -> tuple[list[float], list[float]]:
    """Each fill's fee in quote and the part of it paid in base (in base units)."""
    quote_fee, base_fee = [], []
    for sym, fee, asset, price in fills.select("symbol", "fee", "fee_asset", "price").iter_rows():
        base, quote = assets.get(sym, (None, None))
        is_quote = asset == quote if quote else sym.endswith(asset) and sym != asset
        is_base = asset == base if base else sym.startswith(asset) and sym != asset
        if is_quote:
            quote_fee.append(fee)
            base_fee.append(0.0)
        elif is_base:
            quote_fee.append(fee * price)
            base_fee.append(fee)
        elif asset in fee_prices:
            quote_fee.append(fee * fee_prices[asset])
            base_fee.append(0.0)
        else:
            raise DataError(
                f"a {sym} fill paid its fee in {asset}, neither base nor quote; pass "
                f"fee_prices={{'{asset}': price in quote}} or assets={{'{sym}': (base, quote)}}"
            )
    return quote_fee, base_fee


def _paper_legs(fills, orders, index, assets, fee_prices) -> pl.DataFrame:
    """Paper fills with their order's decision and the fill bar (first bar after the decision;
    the bar the fill happened in when the order is unknown) and the arrival bar's open."""
    missing = set(_FILL_COLS) - set(fills.columns)
    if missing:
        raise DataError(f"paper fills lack {sorted(missing)}; pass ledger.fills(account)")
    extra = ("decision_ms", "reference_price", "target_weight", "type")
    have = [c for c in extra if c in orders.columns]
    o = orders.select("client_id", *have).unique("client_id", keep="last")
    f = fills.select(*_FILL_COLS).join(o, on="client_id", how="left")
    f = f.with_columns(pl.lit(None).alias(c) for c in extra if c not in have)
    quote_fee, base_fee = _fee_roles(f, assets, fee_prices)
    f = f.with_columns(
        pl.col("time_ms").cast(pl.Int64),
        pl.col("decision_ms").cast(pl.Int64),
        pl.Series("fee_quote", quote_fee, pl.Float64),
        pl.Series("fee_base", base_fee, pl.Float64),
    ).with_columns(
        (pl.col("decision_ms") + 1).alias("after_ms"),
        (pl.col("fee_base") * pl.col("price")).alias("fee_base_value"),
    )
    bar = index.select("symbol", "bar_ms", pl.col("bar_ms").alias("next_ms"))
    arrival = index.select(
        "symbol", pl.col("bar_ms").alias("arrival_ms"), pl.col("open").alias("arrival")
    )
    f = f.sort("time_ms").join_asof(
        arrival,
        left_on="time_ms", right_on="arrival_ms", by="symbol", strategy="backward",
        check_sortedness=False,  # both sorted on the key just above; polars cannot check by group
    )  # fmt: skip
    f = f.with_columns(pl.col("after_ms").fill_null(pl.col("arrival_ms"))).sort("after_ms")
    f = f.join_asof(
        bar, left_on="after_ms", right_on="next_ms", by="symbol", strategy="forward",
        check_sortedness=False,
    )  # fmt: skip
    # an order decided at the window's last bar has no fill bar in it: fill_ms stays null
    known = pl.col("decision_ms").is_not_null()
    return f.with_columns(
        pl.when(known).then(pl.col("next_ms")).otherwise(pl.col("arrival_ms")).alias("fill_ms")
    )


def _paper_by_bar(paper: pl.DataFrame) -> pl.DataFrame:
    q = pl.col("qty")
    return paper.group_by("symbol", "fill_ms", "side").agg(
        q.sum().alias("paper_qty"),
        ((q * pl.col("price")).sum() / q.sum()).alias("paper_price"),
        # null (then the backtest's fill bar open) unless every fill's bar is known
        pl.when(pl.col("arrival").null_count() == 0)
        .then((q * pl.col("arrival")).sum() / q.sum())
        .alias("paper_arrival_open"),
        pl.col("fee_quote").sum().alias("paper_fee"),
        pl.col("fee_base").sum().alias("paper_fee_base"),
        pl.col("fee_base_value").sum().alias("paper_fee_base_value"),
        pl.len().alias("paper_fills"),
        pl.col("client_id").unique().sort().str.join(" ").alias("client_id"),
        pl.col("decision_ms").min(),
        pl.col("reference_price").first(),
        pl.col("target_weight").first(),
    )


def _twin_legs(twin: BacktestResult, index: pl.DataFrame) -> pl.DataFrame:
    legs = twin.fills.select(
        "symbol",
        pl.col("open_time").dt.epoch("ms").alias("fill_ms"),
        "side",
        pl.col("qty").alias("bt_qty"),
        pl.col("price").alias("bt_price"),
        pl.col("fee").alias("bt_fee"),
    )
    opens = index.select(
        "symbol", pl.col("bar_ms").alias("fill_ms"), pl.col("open").alias("bt_open")
    )
    return legs.join(opens, on=["symbol", "fill_ms"], how="left")


def _pair(paper: pl.DataFrame, twin: pl.DataFrame, closes: pl.DataFrame) -> pl.DataFrame:
    """Full join on (symbol, fill bar, side) and each row's buckets (see the module docstring)."""
    keys = ["symbol", "fill_ms", "side"]
    rows = twin.join(paper, on=keys, how="full", coalesce=True).join(
        closes, on="symbol", how="left"
    )
    if rows["end"].null_count():
        bad = rows.filter(pl.col("end").is_null())["symbol"].unique().to_list()
        raise DataError(f"no close for {bad} in the window's bars; pass their klines")
    s = pl.when(pl.col("side") == Side.BUY.value).then(1.0).otherwise(-1.0)
    has_bt, has_paper = pl.col("bt_qty").is_not_null(), pl.col("paper_qty").is_not_null()
    pair = has_bt & has_paper
    qb, qp, end = pl.col("bt_qty"), pl.col("paper_qty"), pl.col("end")
    qc = pl.min_horizontal(qb, qp)
    arrival = pl.coalesce("paper_arrival_open", "bt_open")
    base_move = pl.col("paper_fee_base_value") - pl.col("paper_fee_base") * end
    larger = pl.when(qp >= qb).then(pl.col("paper_price")).otherwise(pl.col("bt_price"))
    paper_pnl = s * qp * (end - pl.col("paper_price")) - pl.col("paper_fee") + base_move
    rows = rows.with_columns(
        pl.when(pair).then(pl.lit("pair")).when(has_bt).then(pl.lit("missed"))
        .otherwise(pl.lit("extra")).alias("kind"),
        pl.when(pair).then(qc).otherwise(0.0).alias("q_common"),
        pl.when(pair).then(s * qc * (pl.col("bt_open") - arrival)).otherwise(0.0)
        .alias("price_timing"),
        pl.when(pair).then(s * qc * ((pl.col("bt_price") - pl.col("bt_open"))
                                     - (pl.col("paper_price") - arrival)))
        .otherwise(0.0).alias("price_execution"),
        pl.when(pair).then(pl.col("bt_fee") - pl.col("paper_fee")).otherwise(0.0).alias("fees"),
        pl.when(pair).then(s * (qp - qb) * (end - larger) + base_move).otherwise(0.0).alias("size"),
        pl.when(has_bt & ~has_paper)
        .then(-(s * qb * (end - pl.col("bt_price")) - pl.col("bt_fee"))).otherwise(0.0)
        .alias("missed"),
        pl.when(has_paper & ~has_bt).then(paper_pnl).otherwise(0.0).alias("extra"),
    )  # fmt: skip
    parts = [b for b in BUCKETS if b != "funding"]
    return rows.with_columns(
        pl.sum_horizontal(parts).alias("gap"),
        pl.from_epoch("fill_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("fill_time"),
        pl.col("end").alias("end_close"),
    ).select(
        "fill_time", "symbol", "side", "kind", "client_id", "decision_ms", "target_weight",
        "reference_price", "bt_qty", "bt_price", "bt_open", "bt_fee", "paper_qty", "paper_price",
        "paper_arrival_open", "paper_fee", "paper_fee_base", "paper_fills", "end_close",
        "q_common", *parts, "gap",
    ).sort("fill_time", "symbol", "side")  # fmt: skip


def _funding(twin, paper_funding, start_ms: int, end_close_ms: int) -> pl.DataFrame:
    """symbol, paper, backtest, funding (= paper − backtest) funding cash flows in the window."""
    bt = twin.funding.group_by("symbol").agg(pl.col("payment").sum().alias("backtest"))
    if paper_funding is None:
        paper = pl.DataFrame(schema={"symbol": pl.String, "paper": pl.Float64})
    else:
        paper = (
            paper_funding.filter(pl.col("time_ms").is_between(start_ms, end_close_ms))
            .group_by("symbol")
            .agg(pl.col("amount").sum().alias("paper"))
        )
    both = bt.join(paper, on="symbol", how="full", coalesce=True).fill_null(0.0)
    return both.with_columns((pl.col("paper") - pl.col("backtest")).alias("funding"))


def _paper_equity_at(equity: pl.DataFrame, start_ms: int, end_close_ms: int) -> tuple[float, float]:
    """The ledger's equity at the window's start (else its first row) and at its end."""
    eq = equity.select(pl.col("time_ms").cast(pl.Int64), pl.col("equity").cast(pl.Float64))
    eq = eq.sort("time_ms")
    before_end = eq.filter(pl.col("time_ms") <= end_close_ms)
    if before_end.height == 0:
        raise DataError(
            "the paper ledger has no equity row by the window's last close; record equity "
            "each bar (ledger.record_equity) or pass the window the paper run covered"
        )
    at_start = eq.filter(pl.col("time_ms") <= start_ms)
    initial = at_start if at_start.height else eq.head(1)
    return float(initial["equity"][-1]), float(before_end["equity"][-1])


def _by_symbol(pairs: pl.DataFrame, funding: pl.DataFrame) -> pl.DataFrame:
    parts = [b for b in BUCKETS if b != "funding"]
    per = pairs.group_by("symbol").agg(pl.col(parts).sum())
    out = per.join(funding.select("symbol", "funding"), on="symbol", how="full", coalesce=True)
    out = out.fill_null(0.0).select("symbol", *BUCKETS)
    return out.with_columns(pl.sum_horizontal(BUCKETS).alias("gap")).sort("symbol")
