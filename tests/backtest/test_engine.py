"""Backtest core: hand-checked fills at the next bar's open, no lookahead, gaps, real data."""

from __future__ import annotations

import json
import math
import re
import zipfile
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from helpers import SAMPLE
from quantlab.backtest import render_report, simulate
from quantlab.config import BacktestConfig, SignalConfig
from quantlab.errors import SchemaError
from quantlab.metrics import probabilistic_sharpe_ratio, sharpe_moments
from quantlab.portfolio import directions_from_scores
from quantlab.schema import BINANCE_KLINE_FIELDS, UTC_MS, normalize_klines

KLINES = SAMPLE / "data/spot/monthly/klines"
T0 = datetime(2023, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
FREE = BacktestConfig(init_cash=1000.0, fees=0.0, slippage=0.0)

# One symbol, five hourly bars: opens and closes chosen so every fill is easy to check by hand.
OPENS = [10.0, 11.0, 12.0, 13.0, 14.0]
CLOSES = [10.5, 11.5, 12.5, 13.5, 14.5]


def make_bars(symbol: str, opens: list[float], closes: list[float], rows: list[int] | None = None):
    rows = list(range(len(opens))) if rows is None else rows
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(rows),
            "open_time": [T0 + i * HOUR for i in rows],
            "open": [float(opens[i]) for i in rows],
            "close": [float(closes[i]) for i in rows],
        },
        schema={"symbol": pl.String, "open_time": UTC_MS, "open": pl.Float64, "close": pl.Float64},
    )


def make_directions(symbol: str, values: list[float], rows: list[int] | None = None):
    rows = list(range(len(values))) if rows is None else rows
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(rows),
            "open_time": [T0 + i * HOUR for i in rows],
            "direction": [float(values[i]) for i in rows],
        },
        schema={"symbol": pl.String, "open_time": UTC_MS, "direction": pl.Float64},
    )


def load_klines(symbol: str, month: str, n_rows: int | None = None) -> pl.DataFrame:
    path = KLINES / symbol / "1h" / f"{symbol}-1h-{month}.zip"
    with zipfile.ZipFile(path) as zf:
        payload = zf.read(zf.namelist()[0])
    raw = pl.read_csv(
        payload,
        has_header=False,
        new_columns=list(BINANCE_KLINE_FIELDS),
        schema_overrides=dict.fromkeys(BINANCE_KLINE_FIELDS, pl.String),
        n_rows=n_rows,
    )
    return normalize_klines(raw, "spot", symbol, "1h")


def always_long(bars: pl.DataFrame) -> pl.DataFrame:
    return bars.select("symbol", "open_time", pl.lit(1.0).alias("direction"))


# --- directions_from_scores ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow_short", "expected"),
    [
        (True, [1, 0, 0, 0, 0, -1, 0, 0]),
        (False, [1, 0, 0, 0, 0, 0, 0, 0]),
    ],
)
def test_directions_from_scores_thresholds(allow_short, expected):
    cfg = SignalConfig(threshold=0.02, allow_short=allow_short)
    scores = [0.5, 0.02, 0.01, 0.0, -0.02, -0.5, None, float("nan")]
    signals = pl.DataFrame(
        {
            "symbol": ["A"] * len(scores),
            "open_time": [T0 + i * HOUR for i in range(len(scores))],
            "score": scores,
        },
        schema={"symbol": pl.String, "open_time": UTC_MS, "score": pl.Float64},
    )
    out = directions_from_scores(signals, cfg)
    assert out.columns == ["symbol", "open_time", "direction"]
    assert out["direction"].to_list() == expected


# --- hand arithmetic -----------------------------------------------------------------------


def test_equity_matches_hand_arithmetic_with_entry_at_next_open():
    # Long decided at the close of bar 0, flat decided at the close of bar 2.
    result = simulate(make_bars("A", OPENS, CLOSES), make_directions("A", [1, 1, 0, 0, 0]), FREE)

    units = 1000.0 / 11.0  # all cash at bar 1's open, not bar 0's close (10.5)
    expected = [1000.0, units * 11.5, units * 12.5, units * 13.0, units * 13.0]
    np.testing.assert_allclose(result.equity["equity"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(
        result.equity["returns"].to_numpy(),
        [0.0, 11.5 / 11 - 1, 12.5 / 11.5 - 1, 13 / 12.5 - 1, 0.0],
        rtol=1e-12,
        atol=1e-15,
    )
    assert result.fills.select("open_time", "side", "price").rows() == [
        (T0 + 1 * HOUR, "BUY", 11.0),
        (T0 + 3 * HOUR, "SELL", 13.0),
    ]
    assert result.fills["qty"].to_list() == pytest.approx([units, units])
    assert result.targets["target_weight"].to_list() == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert result.stats["total_return"] == pytest.approx(13.0 / 11.0 - 1)
    assert result.stats["trades"] == 2.0
    assert result.stats["win_rate"] == 1.0
    assert result.stats["exposure"] == pytest.approx(2 / 5)
    m = sharpe_moments(result.equity["returns"].to_numpy())
    psr = probabilistic_sharpe_ratio(m.sharpe, m.n, 0.0, m.skew, m.kurtosis)
    assert result.stats["psr"] == pytest.approx(psr, rel=1e-12) and 0.5 < psr < 1


def test_short_direction_matches_hand_arithmetic():
    result = simulate(make_bars("A", OPENS, CLOSES), make_directions("A", [-1, -1, 0, 0, 0]), FREE)

    units = 1000.0 / 11.0  # sold short at bar 1's open, bought back at bar 3's open
    expected = [
        1000.0,
        2000 - units * 11.5,
        2000 - units * 12.5,
        2000 - units * 13,
        2000 - units * 13,
    ]
    np.testing.assert_allclose(result.equity["equity"].to_numpy(), expected, rtol=1e-12)
    assert result.fills["side"].to_list() == ["SELL", "BUY"]
    assert result.targets["target_weight"].to_list() == [0.0, -1.0, -1.0, 0.0, 0.0]
    assert result.stats["win_rate"] == 0.0
    assert result.stats["max_drawdown"] == pytest.approx(expected[-1] / 1000 - 1)


def test_signal_on_last_bar_produces_no_trade():
    result = simulate(make_bars("A", OPENS, CLOSES), make_directions("A", [0, 0, 0, 0, 1]), FREE)

    assert result.fills.height == 0
    assert result.fills.schema["open_time"] == UTC_MS
    assert result.equity["equity"].to_list() == [1000.0] * 5
    assert result.targets["target_weight"].to_list() == [0.0] * 5
    assert result.stats["trades"] == 0.0
    assert result.stats["total_return"] == 0.0
    assert result.stats["win_rate"] is None  # no closed trade: undefined, not 0


@pytest.mark.parametrize(
    ("fees", "slippage"),
    [(0.001, 0.0), (0.0, 0.01), (0.001, 0.0005)],
)
def test_fees_and_slippage_reduce_equity_by_the_expected_amount(fees, slippage):
    cfg = BacktestConfig(init_cash=1000.0, fees=fees, slippage=slippage)
    result = simulate(make_bars("A", OPENS, CLOSES), make_directions("A", [1, 1, 0, 0, 0]), cfg)

    # All cash goes in, fees included: units * 11 * (1 + slippage) * (1 + fees) == 1000.
    buy_price, sell_price = 11.0 * (1 + slippage), 13.0 * (1 - slippage)
    units = 1000.0 / (buy_price * (1 + fees))
    final = units * sell_price * (1 - fees)
    assert result.equity["equity"][-1] == pytest.approx(final, rel=1e-12)
    assert result.fills["price"].to_list() == pytest.approx([buy_price, sell_price])
    assert result.fills["fee"].to_list() == pytest.approx(
        [units * buy_price * fees, units * sell_price * fees]
    )
    assert result.stats["fees_paid"] == pytest.approx(units * (buy_price + sell_price) * fees)
    free = simulate(make_bars("A", OPENS, CLOSES), make_directions("A", [1, 1, 0, 0, 0]), FREE)
    assert result.equity["equity"][-1] < free.equity["equity"][-1]


# --- no lookahead --------------------------------------------------------------------------


def momentum_pipeline(bars: pl.DataFrame, cfg: BacktestConfig, signal: SignalConfig):
    """Decide at each close from closes up to that bar only, then backtest."""
    scores = bars.sort("symbol", "open_time").select(
        "symbol",
        "open_time",
        (pl.col("close") / pl.col("close").shift(1) - 1).over("symbol").alias("score"),
    )
    directions = directions_from_scores(scores, signal)
    return directions, simulate(bars, directions, cfg)


def random_bars(symbol: str, n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    opens = np.r_[100.0, closes[:-1]] * np.exp(rng.normal(0, 0.005, n))
    return make_bars(symbol, opens.tolist(), closes.tolist())


def test_changing_bars_after_t_changes_nothing_up_to_t():
    cfg = BacktestConfig(init_cash=10_000.0, fees=0.001, slippage=0.0005)
    signal = SignalConfig(threshold=0.01)
    bars = pl.concat([random_bars("A", 40, 1), random_bars("B", 40, 2)])
    t = T0 + 20 * HOUR
    rng = np.random.default_rng(3)
    later = pl.col("open_time") > t
    shocked = bars.with_columns(
        pl.when(later).then(pl.col("open") * 1.5).otherwise(pl.col("open")).alias("open"),
        pl.when(later)
        .then(pl.col("close") * pl.Series(rng.uniform(0.5, 1.5, bars.height)))
        .otherwise(pl.col("close"))
        .alias("close"),
    )

    pos_a, res_a = momentum_pipeline(bars, cfg, signal)
    pos_b, res_b = momentum_pipeline(shocked, cfg, signal)

    upto = pl.col("open_time") <= t
    assert pos_a.filter(upto).equals(pos_b.filter(upto))
    assert res_a.equity.filter(upto).equals(res_b.equity.filter(upto))
    assert res_a.fills.filter(upto).equals(res_b.fills.filter(upto))
    assert res_a.fills.filter(upto).height > 0  # the strategy does trade before t
    # ...and the shock is visible after t, so the comparison above could have failed.
    assert not res_a.equity.filter(~upto).equals(res_b.equity.filter(~upto))


def test_decision_at_t_first_affects_bar_t_plus_1():
    bars = make_bars("A", OPENS, CLOSES)
    flat = simulate(bars, make_directions("A", [0, 0, 0, 0, 0]), FREE)
    long_at_2 = simulate(bars, make_directions("A", [0, 0, 1, 0, 0]), FREE)

    assert long_at_2.equity["equity"][:3].to_list() == flat.equity["equity"][:3].to_list()
    assert long_at_2.equity["equity"][3] == pytest.approx(1000.0 / 13.0 * 13.5)
    assert long_at_2.fills.select("open_time", "side", "price").rows() == [
        (T0 + 3 * HOUR, "BUY", 13.0),
        (T0 + 4 * HOUR, "SELL", 14.0),
    ]


def test_entry_price_is_the_next_bars_open():
    opens = list(OPENS)
    opens[3] = 12.2  # only bar 3's open moves
    directions = make_directions("A", [0, 0, 1, 1, 1])
    base = simulate(make_bars("A", OPENS, CLOSES), directions, FREE)
    moved = simulate(make_bars("A", opens, CLOSES), directions, FREE)

    assert base.fills["price"].to_list() == [13.0]
    assert moved.fills["price"].to_list() == [12.2]
    assert moved.equity["equity"][:3].equals(base.equity["equity"][:3])
    assert moved.equity["equity"][3] == pytest.approx(1000.0 / 12.2 * 13.5)


# --- missing bars --------------------------------------------------------------------------

B_OPENS = [20.0, 21.0, 22.0, 23.0, 24.0, 25.0]
B_CLOSES = [20.5, 21.5, 22.5, 23.5, 24.5, 25.5]
A6_OPENS = [*OPENS, 15.0]
A6_CLOSES = [*CLOSES, 15.5]


def test_missing_bar_in_one_symbol_delays_only_that_symbol():
    gap = [0, 1, 2, 4, 5]  # B has no bar 3
    bars = pl.concat([make_bars("A", A6_OPENS, A6_CLOSES), make_bars("B", B_OPENS, B_CLOSES, gap)])
    # A: long from bar 0's close, flat from bar 2's close (sells at bar 3, while B is missing).
    # B: long from bar 0's close, flat from bar 2's close; its next bar is bar 4.
    directions = pl.concat(
        [
            make_directions("A", [1, 1, 0, 0, 0, 0]),
            make_directions("B", [1, 1, 0, 0, 0, 0], gap),
        ]
    )
    result = simulate(bars, directions, FREE)

    assert result.equity.height == 6
    assert result.equity["equity"].is_finite().all()
    fills = result.fills.select("symbol", "open_time", "side", "price").rows()
    assert fills == [
        ("A", T0 + 1 * HOUR, "BUY", 11.0),
        ("B", T0 + 1 * HOUR, "BUY", 21.0),
        ("A", T0 + 3 * HOUR, "SELL", 13.0),
        ("B", T0 + 4 * HOUR, "SELL", 24.0),  # never at the missing bar 3
    ]
    units_a, units_b = 500.0 / 11.0, 500.0 / 21.0
    cash_after_a = units_a * 13.0
    # Bar 3: B is valued at its last known close (bar 2's 22.5), not at a made-up price.
    assert result.equity["equity"][3] == pytest.approx(cash_after_a + units_b * 22.5)
    assert result.equity["equity"][5] == pytest.approx(cash_after_a + units_b * 24.0)
    held_b = result.targets.filter(pl.col("symbol") == "B")["target_weight"].to_list()
    assert held_b == [0.0, 0.5, 0.5, 0.5, 0.0, 0.0]


def test_missing_bar_does_not_shift_other_symbols():
    a = make_bars("A", A6_OPENS, A6_CLOSES)
    pos_a = make_directions("A", [0, 1, 1, 0, 1, 1])
    with_gap = simulate(
        pl.concat([a, make_bars("B", B_OPENS, B_CLOSES, [0, 1, 2, 4, 5])]),
        pl.concat([pos_a, make_directions("B", [0] * 6, [0, 1, 2, 4, 5])]),
        FREE,
    )
    without_gap = simulate(
        pl.concat([a, make_bars("B", B_OPENS, B_CLOSES)]),
        pl.concat([pos_a, make_directions("B", [0] * 6)]),
        FREE,
    )
    assert with_gap.fills.equals(without_gap.fills)
    assert with_gap.equity.equals(without_gap.equity)


def test_real_halt_2023_03_24_is_skipped_not_filled():
    start, end = datetime(2023, 3, 24, 6, tzinfo=UTC), datetime(2023, 3, 24, 20, tzinfo=UTC)
    window = pl.col("open_time").is_between(start, end)
    bars = pl.concat(
        [load_klines(s, "2023-03").filter(window) for s in ("BTCUSDT", "ETHUSDT")]
    ).select("symbol", "open_time", "open", "close")
    halt = datetime(2023, 3, 24, 13, tzinfo=UTC)
    assert bars.filter(pl.col("open_time") == halt).height == 0  # the real missing candle
    decided = datetime(2023, 3, 24, 12, tzinfo=UTC)
    directions = bars.select(
        "symbol", "open_time", (pl.col("open_time") >= decided).cast(pl.Float64).alias("direction")
    )
    result = simulate(bars, directions, BacktestConfig())

    assert halt not in result.equity["open_time"].to_list()
    assert result.equity["equity"].is_finite().all()
    entry = datetime(2023, 3, 24, 14, tzinfo=UTC)  # the first bar after the 12:00 decision
    opens = bars.filter(pl.col("open_time") == entry).sort("symbol")["open"].to_list()
    assert result.fills["open_time"].to_list() == [entry, entry]
    assert sorted(result.fills["price"].to_list()) == pytest.approx(
        sorted(o * (1 + BacktestConfig().slippage) for o in opens)
    )


# --- real slice ----------------------------------------------------------------------------


def test_always_long_basket_matches_buy_and_hold_minus_fees():
    cfg = BacktestConfig()  # default fees and slippage
    bars = pl.concat([load_klines(s, "2023-01", n_rows=500) for s in ("BTCUSDT", "ETHUSDT")])
    result = simulate(bars, always_long(bars), cfg)

    entry = bars.filter(pl.col("open_time") == T0 + HOUR).sort("symbol")["open"].to_numpy()
    last = bars.filter(pl.col("open_time") == bars["open_time"].max()).sort("symbol")
    growth = last["close"].to_numpy() / (entry * (1 + cfg.slippage))
    expected = growth.mean() * (1 - cfg.fees) - 1
    assert result.stats["total_return"] == pytest.approx(expected, abs=2e-4)
    gross = last["close"].to_numpy() / entry
    assert result.stats["total_return"] < gross.mean() - 1  # costs are really charged
    assert result.stats["trades"] == 2.0  # bought once, never churned
    assert result.stats["exposure"] == pytest.approx(499 / 500)
    assert result.equity.height == 500
    assert result.equity["drawdown"].max() == 0.0
    assert result.stats["max_drawdown"] == pytest.approx(result.equity["drawdown"].min())
    held = result.targets.filter(pl.col("open_time") > T0)["target_weight"]
    assert (held == 0.5).all()


def test_stats_are_plain_json_floats():
    bars = pl.concat([load_klines(s, "2023-01", n_rows=200) for s in ("BTCUSDT", "ETHUSDT")])
    cfg = BacktestConfig()
    signal = SignalConfig(threshold=0.003)
    _, result = momentum_pipeline(bars.select("symbol", "open_time", "open", "close"), cfg, signal)

    required = {
        "total_return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "trades",
        "win_rate",
        "exposure",
        "annual_return",
    }
    assert required <= result.stats.keys()
    assert all(v is None or type(v) is float for v in result.stats.values())
    json.dumps(result.stats, allow_nan=False)
    assert result.stats["trades"] == float(result.fills.height) > 0
    returns = result.equity["returns"].to_numpy()
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(24 * 365)
    assert result.stats["sharpe"] == pytest.approx(sharpe)


# --- input errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directions", "message"),
    [
        (make_directions("A", [0] * 8, [7]), "no matching bar"),
        (make_directions("A", [2.0]), "outside"),
        (make_directions("A", [float("nan")]), "outside"),
        (make_directions("A", [1, 1], [0, 0]), "sharing"),
        (pl.DataFrame({"symbol": ["A"], "open_time": [T0]}), "lacks column"),
    ],
)
def test_bad_directions_raise_schema_error(directions, message):
    with pytest.raises(SchemaError, match=message):
        simulate(make_bars("A", OPENS, CLOSES), directions, FREE)


# --- report --------------------------------------------------------------------------------


def test_render_report_is_self_contained_html():
    result = simulate(make_bars("A", OPENS, CLOSES), make_directions("A", [1, 1, 0, 0, 0]), FREE)
    page = render_report(result, "demo <run>")

    assert page.lstrip().startswith("<!DOCTYPE html>")
    assert "<html" in page
    assert "<title>demo &lt;run&gt;</title>" in page
    assert re.search(r"<script[^>]*\bsrc=", page) is None  # nothing fetched from a CDN
    assert "plotly.js v" in page  # the library itself is inline
    assert "total_return" in page and "18.18%" in page
