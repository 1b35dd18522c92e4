"""quantlab.backtest.stats and .attribution on a contract-shaped result from real shipped prices:
figures cross-checked against vectorbt's returns accessor and recomputed by hand from the
frames; PSR/DSR/MinTRL from the same per-period returns with raw kurtosis."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from backtest.result_fixture import build_result, load_bars
from quantlab import metrics
from quantlab.backtest.attribution import benchmark_equity, round_trips, symbol_contribution
from quantlab.backtest.stats import LINEAGE_KEYS, summarize
from quantlab.backtest.trials import TrialSet

PPY = 8760


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return load_bars()


@pytest.fixture(scope="module")
def result(bars):
    return build_result(bars)


@pytest.fixture(scope="module")
def trials() -> TrialSet:
    # Annualised Sharpe ratios of five tuning trials (one pruned) and a three-point grid.
    tried = TrialSet().extend("optuna", [0.5, 1.0, -0.3, 2.0, None], periods_per_year=PPY)
    return tried.extend("signal_grid", [0.8, 1.9, 1.1], periods_per_year=PPY)


def test_the_fixture_keeps_the_contract_identity(result):
    e = result.equity
    step = e["equity"].diff().fill_null(e["equity"][0] - result.init_cash)
    flows = e["gross_pnl"] - e["fees"] - e["slippage"] + e["funding"]
    np.testing.assert_allclose(step.to_numpy(), flows.to_numpy(), atol=1e-8 * result.init_cash)
    assert result.fills.height and result.funding.height and result.rejections.height
    assert result.kills.height


def test_return_figures_equal_vectorbt(result, bars):
    import pandas as pd
    import vectorbt as vbt  # noqa: F401  (registers the .vbt accessor)

    s = summarize(result, periods_per_year=PPY, benchmark=bars)
    r = result.equity.select("open_time", "returns").to_pandas().set_index("open_time")["returns"]
    acc = r.vbt.returns(freq="1h", year_freq=pd.Timedelta(days=365))
    assert acc.ann_factor == PPY
    assert r.iloc[0] == 0.0  # flat on the first bar: vectorbt's drawdown starting after it agrees
    expected = {
        "total_return": acc.total(),
        "annual_return": acc.annualized(),
        "volatility": acc.annualized_volatility(),
        "sharpe": acc.sharpe_ratio(),
        "sortino": acc.sortino_ratio(),
        "max_drawdown": acc.max_drawdown(),
        "calmar": acc.calmar_ratio(),
    }
    for key, value in expected.items():
        assert s[key] == pytest.approx(value, rel=1e-9), key


def test_activity_costs_and_trades_recomputed_from_the_frames(result):
    s = summarize(result, periods_per_year=PPY)
    fills, eq = result.fills, result.equity
    assert s["fees"] == pytest.approx(fills["fee"].sum(), rel=1e-12)
    assert s["slippage"] == pytest.approx(fills["slippage_cost"].sum(), rel=1e-12)
    assert s["funding"] == pytest.approx(result.funding["payment"].sum(), rel=1e-12)
    assert s["funding"] < 0  # the long BTC book paid the (mostly positive) 2023 Q1 rates
    turnover = fills["notional"].sum() / eq["equity"].mean() * PPY / eq.height
    assert s["turnover"] == pytest.approx(turnover, rel=1e-12)
    held = result.positions.group_by("open_time").agg((pl.col("qty") != 0).any().alias("held"))
    assert s["exposure"] == pytest.approx(held["held"].mean())
    assert (s["n_fills"], s["n_rejections"], s["n_kills"]) == (
        fills.height,
        result.rejections.height,
        result.kills.height,
    )
    trips = round_trips(fills)["pnl"]
    assert s["n_round_trips"] == trips.len()
    assert s["hit_rate"] == pytest.approx((trips > 0).mean())
    assert s["profit_factor"] == pytest.approx(
        trips.filter(trips > 0).sum() / -trips.filter(trips < 0).sum()
    )
    assert "round trips" in s["hit_rate_basis"]


def test_per_symbol_contribution_adds_up_to_the_book(result):
    parts = symbol_contribution(result.fills, result.positions, result.funding)
    assert sorted(parts["symbol"]) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    pnl = result.equity["equity"][-1] - result.init_cash
    assert parts["net"].sum() == pytest.approx(pnl, rel=1e-9)
    assert parts["fees"].sum() == pytest.approx(result.fills["fee"].sum(), rel=1e-12)


def test_round_trips_hand_made():
    t = [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(6)]
    fills = pl.DataFrame(
        {
            "symbol": ["A"] * 6,
            "open_time": t,
            # long 2 @10, add 1 @13 (avg 11), sell 3 @12: +3 − fees; then sell 1 @12 (short),
            # buy 2 @11 flips to long 1 (the short closes +1), sell 1 @9 (the long closes −2).
            "side": ["BUY", "BUY", "SELL", "SELL", "BUY", "SELL"],
            "qty": [2.0, 1.0, 3.0, 1.0, 2.0, 1.0],
            "price": [10.0, 13.0, 12.0, 12.0, 11.0, 9.0],
            "fee": [0.2, 0.1, 0.3, 0.1, 0.2, 0.1],
        },
        schema_overrides={"open_time": pl.Datetime("ms", "UTC")},
    )
    trips = round_trips(fills)
    assert trips["direction"].to_list() == [1, -1, 1]
    np.testing.assert_allclose(trips["pnl"], [3 - 0.6, 1 - 0.1 - 0.1, -2 - 0.1 - 0.1], atol=1e-12)
    assert trips["exit_time"].to_list() == [t[2], t[4], t[5]]
    assert trips["entry_time"].to_list() == [t[0], t[3], t[4]]


def test_benchmark_is_equal_weight_buy_and_hold(result, bars):
    s = summarize(result, periods_per_year=PPY, benchmark=bars)
    growth = bars.group_by("symbol").agg(pl.col("close").last() / pl.col("close").first())
    assert s["benchmark_total_return"] == pytest.approx(growth["close"].mean() - 1, rel=1e-12)
    curve = benchmark_equity(bars, result.equity["open_time"], 1.0)
    again = summarize(result, periods_per_year=PPY, benchmark=curve)  # an equity works as well
    assert again["benchmark_sharpe"] == pytest.approx(s["benchmark_sharpe"], rel=1e-12)
    assert s["benchmark_max_drawdown"] == pytest.approx(
        metrics.max_drawdown(equity=curve["equity"])
    )


def test_deflation_from_the_same_returns_with_raw_kurtosis(result, trials):
    s = summarize(result, periods_per_year=PPY, trials=trials)
    assert all(k in s for k in LINEAGE_KEYS)
    r = result.equity["returns"].to_numpy()
    sr = r.mean() / r.std(ddof=1)
    assert s["sharpe_per_period"] == pytest.approx(sr, rel=1e-12)
    assert s["sharpe"] == pytest.approx(sr * math.sqrt(PPY), rel=1e-12)
    assert s["kurtosis"] == pytest.approx(sps.kurtosis(r, fisher=False), rel=1e-12)
    assert s["kurtosis"] > 3 and s["n_periods"] == len(r)
    assert s["n_trials"] == 8  # the pruned trial counts in N
    var = np.var(np.array([0.5, 1.0, -0.3, 2.0, 0.8, 1.9, 1.1]) / math.sqrt(PPY), ddof=1)
    assert s["trials_sharpe_var"] == pytest.approx(var, rel=1e-12)
    # DSR by the research note's formula, written out here.
    g = np.euler_gamma
    sr0 = math.sqrt(var) * (
        (1 - g) * sps.norm.ppf(1 - 1 / 8) + g * sps.norm.ppf(1 - 1 / (8 * math.e))
    )
    sigma = math.sqrt(1 - s["skew"] * sr + (s["kurtosis"] - 1) / 4 * sr**2)
    assert s["dsr"] == pytest.approx(
        sps.norm.cdf((sr - sr0) * math.sqrt(len(r) - 1) / sigma), rel=1e-9
    )
    assert s["psr"] == pytest.approx(sps.norm.cdf(sr * math.sqrt(len(r) - 1) / sigma), rel=1e-9)
    assert s["dsr"] < s["psr"]
    z = sps.norm.ppf(0.95)
    assert s["min_trl"] == pytest.approx(1 + sigma**2 * (z / sr) ** 2, rel=1e-9)
    assert s["min_trl_days"] == pytest.approx(s["min_trl"] * 365 / PPY)


def test_one_trial_falls_back_to_psr_and_unknown_spread_says_so(result):
    alone = summarize(result, periods_per_year=PPY)
    assert alone["n_trials"] == 1 and alone["dsr"] == alone["psr"]
    assert "N = 1" in alone["dsr_note"] and "PSR(0)" in alone["dsr_note"]
    unscored = summarize(
        result, periods_per_year=PPY, trials=TrialSet().extend("optuna", [None] * 4)
    )
    assert unscored["n_trials"] == 4 and unscored["dsr"] is None
    assert "V[SR]" in unscored["dsr_note"]


def test_a_later_start_is_the_out_of_fold_span(result):
    start = datetime(2023, 2, 1, tzinfo=UTC)
    s = summarize(result, periods_per_year=PPY, start=start)
    later = result.equity.filter(pl.col("open_time") >= start)
    assert s["n_periods"] == later.height and s["start"].startswith("2023-02-01")
    assert s["total_return"] == pytest.approx(
        later["equity"][-1] / later["equity"][0] * (1 + later["returns"][0]) - 1
    )
    assert s["fees"] == pytest.approx(later["fees"].sum())
    trips = round_trips(result.fills).filter(pl.col("exit_time") >= start)  # whole trips
    assert s["n_round_trips"] == trips.height and s["hit_rate"] == pytest.approx(
        (trips["pnl"] > 0).mean()
    )
    curve = np.concatenate([[later["equity"][0] / (1 + later["returns"][0])], later["equity"]])
    assert s["max_drawdown"] == pytest.approx((curve / np.maximum.accumulate(curve) - 1).min())


def test_drawdown_duration_in_bars_and_days():
    t = [datetime(2024, 1, d, tzinfo=UTC) for d in range(1, 8)]
    equity = [100.0, 110.0, 99.0, 88.0, 100.0, 111.0, 105.0]
    returns = np.array(equity) / np.array([100.0, *equity[:-1]]) - 1
    frame = pl.DataFrame({"open_time": t, "equity": equity, "returns": returns})
    from quantlab.backtest.stats import _drawdown_duration

    got = _drawdown_duration(frame["equity"], frame["open_time"], 100.0)
    # Peak 110 on day 2, trough 88 on day 4, back above 110 on day 6: 4 bars, 4 days.
    assert got == {"max_drawdown_bars": 4, "max_drawdown_days": 4.0, "max_drawdown_recovered": True}


def test_a_flat_book_has_no_sharpe_and_says_why(bars):
    flat = build_result(bars, min_notional=1e12)  # every entry is rejected: nothing is held
    s = summarize(flat, periods_per_year=PPY, benchmark=bars)
    assert flat.fills.height == 0 and s["n_rejections"] == flat.rejections.height > 0
    assert s["sharpe"] is None and s["psr"] is None and s["dsr"] is None and s["min_trl"] is None
    assert "flat book" in s["dsr_note"]
    assert (s["turnover"], s["exposure"], s["max_drawdown"], s["n_round_trips"]) == (
        0.0,
        0.0,
        0.0,
        0,
    )
    assert s["hit_rate"] is None and s["benchmark_total_return"] > 0


def test_dsr_over_a_sizing_grid_equals_vectorbt(bars):
    """Four kill-switch settings tried on the same period are four trials: our DSR of each
    equals vectorbt 1.2's `deflated_sharpe_ratio` over the four columns (raw kurtosis, ddof 1)."""
    import pandas as pd
    import vectorbt as vbt  # noqa: F401

    grid = {k: build_result(bars, kill_drawdown=k) for k in (0.04, 0.06, 0.1, 1.0)}
    sharpes = [metrics.sharpe(r.equity["returns"]) for r in grid.values()]
    trials = TrialSet().extend("sizing_grid", sharpes)
    frame = pd.DataFrame(
        {k: r.equity["returns"].to_numpy() for k, r in grid.items()},
        index=grid[0.06].equity["open_time"].to_pandas(),
    )
    acc = frame.vbt.returns(freq="1h", year_freq=pd.Timedelta(days=365))
    expected = acc.deflated_sharpe_ratio(ddof=1)
    for k, result in grid.items():
        s = summarize(result, periods_per_year=PPY, trials=trials)
        assert s["n_trials"] == 4
        assert s["dsr"] == pytest.approx(expected[k], rel=1e-9, abs=1e-12), k


def test_headline_prints_sharpe_with_n_psr_and_dsr(result, trials):
    from quantlab.backtest.stats import headline

    s = summarize(result, periods_per_year=PPY, trials=trials)
    line = headline(s)
    assert line.startswith(f"Sharpe {s['sharpe']:.2f}") and "N = 8 trials" in line
    assert f"PSR {s['psr']:.1%}" in line and f"DSR {s['dsr']:.1%}" in line
    assert "DSR n/a" in headline({**s, "dsr": None})
