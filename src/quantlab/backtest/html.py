"""Render a `BacktestResult` as one self-contained HTML page.

plotly.js is embedded in the page rather than linked from a CDN, so the report opens offline
and stays readable as an archived artifact.
"""

from __future__ import annotations

import html

from quantlab.backtest.engine import BacktestResult

# Stats shown as percentages; everything else is printed as a plain number.
_PERCENT = {"total_return", "annual_return", "max_drawdown", "win_rate", "exposure"}


def render_report(result: BacktestResult, title: str) -> str:
    """Equity curve, drawdown and the stats table of one backtest, as a full HTML document."""
    import plotly.graph_objects as go  # heavy; imported only when a report is rendered
    from plotly.subplots import make_subplots

    times = result.equity["open_time"].to_list()
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.05,
        subplot_titles=("Equity", "Drawdown"),
    )
    fig.add_trace(
        go.Scatter(x=times, y=result.equity["equity"].to_list(), name="equity", mode="lines"),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=times,
            y=result.equity["drawdown"].to_list(),
            name="drawdown",
            mode="lines",
            fill="tozeroy",
            line={"color": "firebrick"},
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(tickformat=".1%", row=2, col=1)
    fig.update_layout(height=650, margin={"l": 60, "r": 20, "t": 40, "b": 40}, showlegend=False)
    chart = fig.to_html(full_html=False, include_plotlyjs=True)

    rows = "\n".join(
        f"<tr><th>{html.escape(name)}</th><td>{_format(name, value)}</td></tr>"
        for name, value in result.stats.items()
    )
    safe_title = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{safe_title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table.stats {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
table.stats th, table.stats td {{ padding: 0.25rem 0.75rem; border-bottom: 1px solid #ddd; }}
table.stats th {{ text-align: left; font-weight: 500; }}
table.stats td {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style>
</head>
<body>
<h1>{safe_title}</h1>
<table class="stats">
{rows}
</table>
{chart}
</body>
</html>
"""


def _format(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if name in _PERCENT:
        return f"{value:.2%}"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.4f}"
