"""The tearsheet's plotly figures, one function per chart, from a `BacktestResult`'s frames.

Each returns a `plotly.graph_objects.Figure`; `tearsheet.render_tearsheet` embeds them. Series
are computed here with polars (monthly and rolling returns, exposures) rather than by
QuantStats, which is not a dependency and assumes 252 periods a year.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from quantlab.backtest.attribution import benchmark_equity, symbol_contribution

ROLLING_DAYS = 30  # the rolling Sharpe's and volatility's window, in days of bars
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LAYOUT = {
    "height": 360,
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "template": "plotly_white",
}


def _go() -> Any:
    import plotly.graph_objects as go  # heavy; imported only when a tearsheet is rendered

    return go


def equity_figure(result: Any, benchmark: pl.DataFrame | None) -> Any:
    """The strategy's equity against the universe bought and held with the same cash."""
    go = _go()
    eq = result.equity.sort("open_time")
    fig = go.Figure(go.Scatter(x=eq["open_time"], y=eq["equity"], name="strategy", mode="lines"))
    if benchmark is not None:
        bench = benchmark_equity(benchmark, eq["open_time"], result.init_cash)
        fig.add_trace(
            go.Scatter(
                x=bench["open_time"],
                y=bench["equity"],
                name="buy and hold, equal weight",
                mode="lines",
                line={"dash": "dot"},
            )
        )
    return fig.update_layout(title="Equity", yaxis_title="equity", **_LAYOUT)


def underwater_figure(result: Any) -> Any:
    """The fall from the running peak (including the starting cash) at each close."""
    go = _go()
    eq = result.equity.sort("open_time")
    peak = eq["equity"].cum_max().clip(lower_bound=result.init_cash)
    under = eq["equity"] / peak - 1.0
    fig = go.Figure(
        go.Scatter(
            x=eq["open_time"], y=under, fill="tozeroy", mode="lines", line={"color": "firebrick"}
        )
    )
    fig.update_yaxes(tickformat=".0%")
    return fig.update_layout(title="Underwater (drawdown)", **_LAYOUT)


def monthly_returns(equity: pl.DataFrame) -> pl.DataFrame:
    """year, month, return: each calendar month's compounded bar returns."""
    return (
        equity.sort("open_time")
        .group_by(
            pl.col("open_time").dt.year().alias("year"),
            pl.col("open_time").dt.month().alias("month"),
        )
        .agg(((1.0 + pl.col("returns").fill_null(0.0)).product() - 1.0).alias("return"))
        .sort("year", "month")
    )


def monthly_figure(result: Any) -> Any:
    """Monthly returns as a year × month heatmap, each cell labelled in percent."""
    go = _go()
    months = monthly_returns(result.equity)
    years = sorted(set(months["year"]))
    grid = [[None] * 12 for _ in years]
    for year, month, value in months.iter_rows():
        grid[years.index(year)][month - 1] = value
    text = [["" if v is None else f"{v:.1%}" for v in row] for row in grid]
    bound = max((abs(v) for row in grid for v in row if v is not None), default=0.01) or 0.01
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=list(_MONTHS),
            y=[str(y) for y in years],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmin=-bound,
            zmax=bound,
            colorbar={"tickformat": ".0%"},
        )
    )
    return fig.update_layout(
        title="Monthly returns", **{**_LAYOUT, "height": 140 + 50 * len(years)}
    )


def rolling_figure(result: Any, periods_per_year: int) -> Any:
    """Rolling Sharpe and annualised volatility over `ROLLING_DAYS` days of bars."""
    from plotly.subplots import make_subplots

    go = _go()
    window = max(2, round(periods_per_year * ROLLING_DAYS / 365))
    eq = result.equity.sort("open_time")
    r = eq["returns"].fill_null(0.0)
    mean, std = r.rolling_mean(window), r.rolling_std(window)
    ratio = mean / std * math.sqrt(periods_per_year)
    sharpe = pl.select(pl.when(ratio.is_finite()).then(ratio)).to_series()  # sd 0: no Sharpe
    vol = std * math.sqrt(periods_per_year)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(go.Scatter(x=eq["open_time"], y=sharpe, name="Sharpe", mode="lines"), 1, 1)
    fig.add_trace(go.Scatter(x=eq["open_time"], y=vol, name="volatility", mode="lines"), 2, 1)
    fig.update_yaxes(title_text="Sharpe (ann.)", row=1, col=1)
    fig.update_yaxes(title_text="volatility (ann.)", tickformat=".0%", row=2, col=1)
    title = f"Rolling {ROLLING_DAYS}-day ({window} bars) Sharpe and volatility"
    return fig.update_layout(title=title, **{**_LAYOUT, "height": 480})


def exposure_frame(result: Any) -> pl.DataFrame:
    """open_time, gross, net: Σ|value| and Σvalue of the positions over equity, per close."""
    per_bar = result.positions.group_by("open_time").agg(
        pl.col("value").abs().sum().alias("gross"), pl.col("value").sum().alias("net")
    )
    return (
        result.equity.select("open_time", "equity")
        .join(per_bar, on="open_time", how="left")
        .fill_null(0.0)
        .select(
            "open_time",
            (pl.col("gross") / pl.col("equity")).alias("gross"),
            (pl.col("net") / pl.col("equity")).alias("net"),
        )
        .sort("open_time")
    )


def exposure_figure(result: Any) -> Any:
    go = _go()
    exp = exposure_frame(result)
    fig = go.Figure()
    for name, dash in (("gross", "solid"), ("net", "dot")):
        line = {"dash": dash}
        fig.add_trace(
            go.Scatter(x=exp["open_time"], y=exp[name], name=name, mode="lines", line=line)
        )
    fig.update_yaxes(tickformat=".0%")
    return fig.update_layout(title="Exposure (share of equity)", **_LAYOUT)


def contribution_figure(result: Any) -> Any:
    """Per symbol: trading P&L, fees and funding (as they moved equity), and the net."""
    go = _go()
    parts = symbol_contribution(result.fills, result.positions, result.funding)
    fig = go.Figure()
    for name, values in (
        ("trading", parts["trading"]),
        ("fees", -parts["fees"]),
        ("funding", parts["funding"]),
        ("net", parts["net"]),
    ):
        fig.add_trace(go.Bar(x=parts["symbol"], y=values, name=name))
    return fig.update_layout(title="Contribution by symbol", barmode="group", **_LAYOUT)


def costs_figure(result: Any) -> Any:
    """Cumulative fees, slippage and funding (funding as received: negative is paid)."""
    go = _go()
    eq = result.equity.sort("open_time")
    fig = go.Figure()
    for name, sign in (("fees", -1.0), ("slippage", -1.0), ("funding", 1.0)):
        fig.add_trace(
            go.Scatter(x=eq["open_time"], y=sign * eq[name].cum_sum(), name=name, mode="lines")
        )
    return fig.update_layout(title="Costs, cumulative (their effect on equity)", **_LAYOUT)
