"""The divergence report's arithmetic, proved on the backtest's own fills.

The backtest twin runs on real shipped spot klines (BTC/ETH/SOL 1h, March 2023, with the
2023-03-24 halt) and real exchangeInfo filters. The paper fills are SYNTHETIC: copied from the
twin's fills and then perturbed by known amounts (a worse price, a fee in base, a skipped
order, a rounded quantity, a late fill, an extra fill), so each bucket must equal the P&L of its
perturbation and the unexplained rest must be ~0. The paper equity is computed independently,
from asset balances (cash flows per fill, marked at the window's last closes), as the ledger
would record it.
"""

from __future__ import annotations

import math
import re

import polars as pl
import pytest

import engine_data as data
from quantlab.config import BacktestConfig, TrackingConfig
from quantlab.errors import DataError
from quantlab.execution import divergence_html
from quantlab.execution.divergence import BUCKETS, backtest_twin, decompose
from quantlab.execution.divergence_tracked import log_to_mlflow

INIT = 100_000.0
START, END = "2023-03-18", "2023-03-28"  # holds the 2023-03-24 halt
TOL = 1e-6


def _cut(frame: pl.DataFrame, col: str = "open_time") -> pl.DataFrame:
    return frame.filter(pl.col(col) >= data.utc(START), pl.col(col) < data.utc(END))


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return _cut(data.spot_bars("2023-03"))


@pytest.fixture(scope="module")
def targets(bars) -> pl.DataFrame:
    return data.pattern_targets(bars, data.PATTERN).drop_nulls("target_weight")


@pytest.fixture(scope="module")
def twin(bars, targets):
    cfg = BacktestConfig()
    return backtest_twin(bars, targets, cfg, data.spot_rules(), "spot", INIT, 24 * 365)


def _ms(col: str) -> pl.Expr:
    return pl.col(col).dt.epoch("ms")


def synthetic_paper(twin, bars, targets) -> tuple[pl.DataFrame, pl.DataFrame]:
    """SYNTHETIC ledger fills and orders: one MARKET order per backtest fill, decided at the
    symbol's previous bar (its close is the reference price), filled at the fill bar's open."""
    prev = bars.sort("symbol", "open_time").select(
        "symbol",
        "open_time",
        pl.col("open_time").shift(1).over("symbol").alias("decision"),
        pl.col("close").shift(1).over("symbol").alias("reference_price"),
    )
    f = (
        twin.fills.join(prev, on=["symbol", "open_time"], how="left")
        .join(targets.rename({"open_time": "decision"}), on=["symbol", "decision"], how="left")
        .with_row_index("i")
    )
    fills = f.select(
        pl.lit("paper").alias("account"),
        "symbol",
        pl.col("i").cast(pl.String).alias("trade_id"),
        ("c" + pl.col("i").cast(pl.String)).alias("client_id"),
        "side", "qty", "price", "fee",
        pl.lit("USDT").alias("fee_asset"),
        _ms("open_time").alias("time_ms"),
        pl.lit(False).alias("maker"),
    )  # fmt: skip
    orders = f.select(
        ("c" + pl.col("i").cast(pl.String)).alias("client_id"),
        "symbol", "side", pl.lit("MARKET").alias("type"),
        _ms("decision").alias("decision_ms"), "reference_price", "target_weight",
    )  # fmt: skip
    return fills, orders


def end_closes(bars) -> dict[str, float]:
    last = bars.sort("open_time").group_by("symbol").agg(pl.col("close").last())
    return dict(last.iter_rows())


def books_equity(
    fills: pl.DataFrame, bars: pl.DataFrame, funding: float = 0.0, prices: dict | None = None
) -> pl.DataFrame:
    """The paper account's equity from its balances (`prices`: of other assets held): at the
    start and at the last bar (time_ms, equity, cash, gross_exposure)."""
    bal = {"USDT": INIT + funding}
    for sym, side, qty, price, fee, asset in fills.select(
        "symbol", "side", "qty", "price", "fee", "fee_asset"
    ).iter_rows():
        s = 1.0 if side == "BUY" else -1.0
        base = sym.removesuffix("USDT")
        bal[base] = bal.get(base, 0.0) + s * qty
        bal["USDT"] -= s * qty * price
        bal[asset] = bal.get(asset, 0.0) - fee
    close = {k.removesuffix("USDT"): v for k, v in end_closes(bars).items()} | {"USDT": 1.0}
    close |= prices or {}
    equity = math.fsum(v * close[a] for a, v in bal.items())
    times = bars["open_time"].dt.epoch("ms")
    return pl.DataFrame({"time_ms": [times.min(), times.max()], "equity": [INIT, equity],
                         "cash": [INIT, bal["USDT"]], "gross_exposure": [0.0, 0.0]})  # fmt: skip


def test_paper_equal_to_backtest_gives_all_buckets_zero(twin, bars, targets):
    fills, orders = synthetic_paper(twin, bars, targets)
    div = decompose(fills, orders, books_equity(fills, bars), twin, bars)
    assert twin.fills.height > 20
    assert div.totals["pairs"] == twin.fills.height
    assert div.totals["missed_fills"] == div.totals["extra_fills"] == 0
    assert div.totals["gap"] == pytest.approx(0.0, abs=TOL)
    for name in (*BUCKETS, "unexplained"):
        assert div.buckets[name] == pytest.approx(0.0, abs=TOL), name
    # a fill after the halt was decided at the bar before the gap, hours earlier: still paired
    waits = div.per_fill["fill_time"].dt.epoch("ms") - div.per_fill["decision_ms"]
    assert waits.max() > 3_600_000


def _row(fills: pl.DataFrame, symbol: str, side: str, nth: int = 0) -> int:
    idx = fills.with_row_index("r").filter(pl.col("symbol") == symbol, pl.col("side") == side)
    return int(idx["r"][nth])


def _set(frame: pl.DataFrame, row: int, **values) -> pl.DataFrame:
    r = pl.int_range(pl.len()) == row
    return frame.with_columns(
        pl.when(r).then(pl.lit(v)).otherwise(pl.col(k)).alias(k) for k, v in values.items()
    )


def test_each_perturbation_lands_in_its_bucket(twin, bars, targets):
    fills, orders = synthetic_paper(twin, bars, targets)
    close = end_closes(bars)
    expected = dict.fromkeys(BUCKETS, 0.0)
    opens = dict(
        ((s, t), o) for s, t, o in bars.select("symbol", _ms("open_time"), "open").iter_rows()
    )

    # a worse price on a BTC buy: paper pays x more per unit
    i = _row(fills, "BTCUSDT", "BUY")
    q, p = fills["qty"][i], fills["price"][i]
    fills = _set(fills, i, price=p + 7.5)
    expected["price_execution"] += -q * 7.5

    # an ETH buy pays 0.075% in ETH (base) instead of 0.1% of notional in USDT
    i = _row(fills, "ETHUSDT", "BUY")
    q, p, fee = fills["qty"][i], fills["price"][i], fills["fee"][i]
    fills = _set(fills, i, fee=0.00075 * q, fee_asset="ETH")
    expected["fees"] += fee - 0.00075 * q * p
    expected["size"] += -0.00075 * q * (close["ETHUSDT"] - p)

    # a SOL buy never placed (a breaker, a filter): the paper misses its P&L
    i = _row(fills, "SOLUSDT", "BUY")
    q, p, fee = fills["qty"][i], fills["price"][i], fills["fee"][i]
    fills = fills.filter(pl.int_range(pl.len()) != i)
    expected["missed"] += -(q * (close["SOLUSDT"] - p) - fee)

    # a BTC sell rounded down to 0.01 BTC, its fee in proportion
    i = _row(fills, "BTCUSDT", "SELL", 1)
    q, p, fee = fills["qty"][i], fills["price"][i], fills["fee"][i]
    q2 = math.floor(q * 100) / 100
    assert 0 < q2 < q
    fills = _set(fills, i, qty=q2, fee=fee * q2 / q)
    expected["size"] += -(q2 - q) * (close["BTCUSDT"] - p)
    expected["fees"] += fee - fee * q2 / q

    # an ETH sell filled one bar late, with the same slippage against that bar's open
    i = _row(fills, "ETHUSDT", "SELL", 1)
    q, p, t = fills["qty"][i], fills["price"][i], fills["time_ms"][i]
    late = t + 3_600_000
    fills = _set(fills, i, time_ms=late, price=opens["ETHUSDT", late] + (p - opens["ETHUSDT", t]))
    expected["price_timing"] += -q * (opens["ETHUSDT", t] - opens["ETHUSDT", late])

    # an extra SOL buy the backtest never made (an adopted order: no ledger order row)
    t = int(bars["open_time"].dt.epoch("ms").max()) - 5 * 3_600_000
    p = opens["SOLUSDT", t] * 1.001
    extra = pl.DataFrame(
        {"account": ["paper"], "symbol": ["SOLUSDT"], "trade_id": ["x1"], "client_id": ["x1"],
         "side": ["BUY"], "qty": [3.0], "price": [p], "fee": [3.0 * p * 0.001],
         "fee_asset": ["USDT"], "time_ms": [t], "maker": [False]},
    )  # fmt: skip
    fills = pl.concat([fills, extra], how="vertical_relaxed")
    expected["extra"] += 3.0 * (close["SOLUSDT"] - p) - 3.0 * p * 0.001

    assert all(abs(v) > 1e-3 for k, v in expected.items() if k != "funding"), expected
    div = decompose(fills, orders, books_equity(fills, bars), twin, bars)
    assert div.totals["gap"] == pytest.approx(sum(expected.values()), abs=TOL)
    for name, value in expected.items():
        assert div.buckets[name] == pytest.approx(value, abs=TOL), name
    assert div.buckets["unexplained"] == pytest.approx(0.0, abs=TOL)
    assert (div.totals["missed_fills"], div.totals["extra_fills"]) == (1, 1)
    frame = div.to_frame()
    assert frame["bucket"].to_list() == [*BUCKETS, "unexplained"]
    assert frame["value"].sum() == pytest.approx(div.totals["gap"], abs=TOL)
    by_symbol = div.by_symbol.filter(pl.col("symbol") == "SOLUSDT")
    assert by_symbol["missed"][0] + by_symbol["extra"][0] == pytest.approx(
        expected["missed"] + expected["extra"], abs=TOL
    )


def test_unmarked_difference_is_unexplained_not_hidden(twin, bars, targets):
    fills, orders = synthetic_paper(twin, bars, targets)
    equity = books_equity(fills, bars).with_columns(pl.col("equity") + 12.5)  # marked elsewhere
    div = decompose(fills, orders, equity, twin, bars)
    assert div.buckets["unexplained"] == pytest.approx(12.5, abs=TOL)
    assert div.totals["unexplained_share"] == pytest.approx(1.0, abs=1e-6)


def test_perp_funding_gap(bars):
    """Real USD-M bars, marks and funding (March 2024); the paper misses one funding payment."""
    perp = data.perp_frames("futures", "2024-03-01", "2024-03-08")
    marks = data.perp_frames("mark", "2024-03-01", "2024-03-08")
    rates = data.perp_frames("funding_rate", "2024-03-01", "2024-03-08")
    tgt = data.pattern_targets(perp, {"BTCUSDT": [0.4, 0.4, -0.3, -0.3], "ETHUSDT": [0.2] * 4})
    twin = backtest_twin(
        perp, tgt.drop_nulls("target_weight"), BacktestConfig(), data.perp_rules(),
        "futures_um", INIT, 24 * 365, funding_rates=rates, mark_klines=marks,
    )  # fmt: skip
    assert twin.funding.height > 5
    fills, orders = synthetic_paper(twin, perp, tgt)
    paid = twin.funding.select(
        "symbol", _ms("funding_time").alias("time_ms"), pl.col("payment").alias("amount")
    )
    paper_funding = paid.slice(1)  # the first payment never booked
    equity = books_equity(fills, perp, funding=float(paper_funding["amount"].sum()))
    div = decompose(fills, orders, equity, twin, perp, paper_funding=paper_funding)
    assert div.buckets["funding"] == pytest.approx(-paid["amount"][0], abs=TOL)
    assert div.buckets["unexplained"] == pytest.approx(0.0, abs=TOL)


def test_fee_in_a_third_asset_needs_its_price(twin, bars, targets):
    fills, orders = synthetic_paper(twin, bars, targets)
    bt_fee = fills["fee"][0]
    fills = _set(fills, 0, fee_asset="BNB", fee=0.01)
    equity = books_equity(fills, bars, prices={"BNB": 300.0})
    with pytest.raises(DataError, match="fee_prices"):
        decompose(fills, orders, equity, twin, bars)
    div = decompose(fills, orders, equity, twin, bars, fee_prices={"BNB": 300.0})
    assert div.buckets["fees"] == pytest.approx(bt_fee - 0.01 * 300.0, abs=TOL)
    assert div.buckets["unexplained"] == pytest.approx(0.0, abs=TOL)


def test_no_paper_equity_by_the_window_end_is_an_error(twin, bars, targets):
    fills, orders = synthetic_paper(twin, bars, targets)
    late = books_equity(fills, bars).with_columns(pl.col("time_ms") + 10**12)
    with pytest.raises(DataError, match="record_equity"):
        decompose(fills, orders, late, twin, bars)


def _perturbed(twin, bars, targets):
    fills, orders = synthetic_paper(twin, bars, targets)
    fills = _set(fills, 3, price=fills["price"][3] * 1.002).filter(pl.int_range(pl.len()) != 5)
    return decompose(fills, orders, books_equity(fills, bars), twin, bars)


def test_html_is_offline_and_shows_the_numbers(twin, bars, targets, tmp_path):
    div = _perturbed(twin, bars, targets)
    page = divergence_html.write(div, tmp_path / "report" / "divergence.html").read_text()
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "<svg id='waterfall'" in page
    for name in (*BUCKETS, "unexplained"):
        cell = re.search(rf"<tr id='bucket-{name}'><th>[^<]*</th><td class='value'>([^<]*)<", page)
        assert cell and cell.group(1) == divergence_html.money(div.buckets[name]), name
    share = re.search(r"id='unexplained-share'>([^<]*)<", page).group(1)
    assert share == divergence_html.share(div.totals["unexplained_share"])
    assert re.search(r"id='gap'>([^<]*)<", page).group(1) == divergence_html.money(
        div.totals["gap"]
    )
    assert div.buckets["missed"] != 0 and "<table id='pairs'>" in page


def test_log_to_mlflow_records_buckets_and_the_report(twin, bars, targets, tmp_path):
    import mlflow

    div = _perturbed(twin, bars, targets)
    tracking = TrackingConfig(
        uri=f"sqlite:///{tmp_path}/mlflow.db", artifacts=str(tmp_path / "artifacts")
    )
    run_id = log_to_mlflow(div, tracking, run_name="divergence test")
    client = mlflow.MlflowClient(tracking.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for name, value in div.buckets.items():
        assert run.data.metrics[f"divergence.{name}"] == pytest.approx(value)
    assert run.data.metrics["divergence.gap"] == pytest.approx(div.totals["gap"])
    listed = [a.path for a in client.list_artifacts(run_id, "divergence")]
    assert listed == ["divergence/divergence.html"]


def test_an_order_decided_at_the_last_bar_falls_outside_the_window(twin, bars, targets):
    fills, orders = synthetic_paper(twin, bars, targets)
    equity = books_equity(fills, bars)
    last = int(bars["open_time"].dt.epoch("ms").max())
    late = fills.head(1).with_columns(
        pl.lit("late").alias("client_id"), pl.lit(last + 3_600_000).alias("time_ms")
    )
    order = orders.head(1).with_columns(
        pl.lit("late").alias("client_id"), pl.lit(last).alias("decision_ms")
    )
    div = decompose(pl.concat([fills, late]), pl.concat([orders, order]), equity, twin, bars)
    assert div.totals["paper_fills_outside_window"] == 1
    assert div.totals["extra_fills"] == 0
    assert div.buckets["unexplained"] == pytest.approx(0.0, abs=TOL)


def test_the_report_opens_offline_in_chromium(twin, bars, targets, tmp_path):
    """Headless Chromium with the network switched off draws the waterfall and the tables."""
    from selenium.webdriver.common.by import By

    from helpers import headless_chromium

    div = _perturbed(twin, bars, targets)
    path = divergence_html.write(div, tmp_path / "divergence.html")
    driver = headless_chromium(
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"
    )
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        driver.get(path.as_uri())
        waterfall = driver.find_element(By.ID, "waterfall")
        assert waterfall.size["width"] > 100 and waterfall.size["height"] > 50
        gap = driver.find_element(By.ID, "gap").text
        assert gap == divergence_html.money(div.totals["gap"])
        rows = driver.find_elements(By.CSS_SELECTOR, "table#pairs tr")
        assert len(rows) > 1
    finally:
        driver.quit()
