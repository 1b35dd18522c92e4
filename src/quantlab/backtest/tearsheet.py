"""One self-contained HTML tearsheet of a backtest: it opens offline, from a file or an archive.

plotly.js is embedded inline once (no CDN, no network); every chart after the first reuses it.
The page: the trials box (N, PSR, DSR, MinTRL in plain words), the statistics, equity against
the benchmark, underwater drawdown, monthly returns, rolling Sharpe and volatility, exposure,
per-symbol contribution, costs, the fills, the rejections and the kill-switch events.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import polars as pl

from quantlab.backtest import charts
from quantlab.backtest.attribution import symbol_contribution
from quantlab.backtest.trials import TrialSet

MAX_TABLE_ROWS = 2000  # the fills table shows the first rows; the page says how many are left out
_PERCENT = {
    "total_return", "annual_return", "volatility", "max_drawdown", "exposure", "hit_rate",
    "benchmark_total_return", "benchmark_annual_return", "benchmark_max_drawdown", "psr", "dsr",
}  # fmt: skip
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { padding: 0.2rem 0.7rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td { font-variant-numeric: tabular-nums; }
.trials { border: 2px solid #444; border-radius: 6px; padding: 0.8rem 1.2rem; background: #f7f7f2; }
.note { color: #666; font-size: 0.85rem; }
.stats { columns: 2; }
.scroll { max-height: 28rem; overflow-y: auto; margin-bottom: 1.5rem; }
"""


def render_tearsheet(
    result: Any,
    stats: dict[str, Any],
    *,
    title: str,
    benchmark: pl.DataFrame | None = None,
    trials: TrialSet | None = None,
) -> str:
    """The tearsheet of `result` as a full HTML document; `stats` is `stats.summarize`'s dict
    on the same result (it carries periods_per_year, N, PSR, DSR and MinTRL)."""
    ppy = int(stats["periods_per_year"])
    figures = [
        ("equity", charts.equity_figure(result, benchmark)),
        ("underwater", charts.underwater_figure(result)),
        ("monthly", charts.monthly_figure(result)),
        ("rolling", charts.rolling_figure(result, ppy)),
        ("exposure", charts.exposure_figure(result)),
        ("contribution", charts.contribution_figure(result)),
        ("costs", charts.costs_figure(result)),
    ]
    blocks = {
        name: fig.to_html(
            full_html=False,
            include_plotlyjs=i == 0,
            div_id=f"chart-{name}",
            config={"displaylogo": False, "responsive": True},
        )
        for i, (name, fig) in enumerate(figures)
    }
    parts = symbol_contribution(result.fills, result.positions, result.funding)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>{html.escape(stats['start'])} to {html.escape(stats['end'])}, "
        f"{stats['n_periods']} bars ({ppy} a year)</p>",
        trials_box(stats, trials),
        "<h2>Statistics</h2>",
        f"<div class='stats'>{_stats_table(stats)}</div>",
        blocks["equity"],
        blocks["underwater"],
        blocks["monthly"],
        blocks["rolling"],
        blocks["exposure"],
        "<h2>Contribution by symbol</h2>",
        blocks["contribution"],
        html_table(parts, "contribution"),
        "<h2>Costs</h2>",
        _costs(stats, result.funding),
        blocks["costs"],
        "<h2>Trades (fills)</h2>",
        f"<div class='scroll'>{html_table(result.fills.sort('open_time'), 'fills')}</div>",
        "<h2>Rejected orders</h2>",
        _rejections(result.rejections),
        "<h2>Kill-switch events</h2>",
        html_table(result.kills, "kills", empty="The kill-switch never tripped."),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def trials_box(stats: dict[str, Any], trials: TrialSet | None = None) -> str:
    """N, PSR, DSR and MinTRL in plain words."""
    n, dsr, psr = stats.get("n_trials"), stats.get("dsr"), stats.get("psr")
    trl, days = stats.get("min_trl"), stats.get("min_trl_days")
    lines = [
        f"<p>Sharpe ratio <b id='sharpe'>{_num(stats.get('sharpe'))}</b> (annualised) over "
        f"{stats.get('n_periods')} bars.</p>",
        f"<p>Tried <b id='n-trials'>{n}</b> configuration(s). The chance that the true Sharpe "
        f"is above the best of {n} unskilled tries is the deflated Sharpe ratio, "
        f"DSR = <b id='dsr'>{_pct(dsr)}</b>.</p>",
        f"<p>The chance that the true Sharpe is above zero is the probabilistic Sharpe ratio, "
        f"PSR = <b id='psr'>{_pct(psr)}</b>.</p>",
    ]
    if trl is None:
        lines.append(
            "<p>Minimum track record length: <b id='min-trl'>none</b> is long enough to be 95% "
            "sure the Sharpe is above zero, because the observed Sharpe is not above zero.</p>"
        )
    else:
        lines.append(
            f"<p>Minimum track record length: <b id='min-trl'>{trl:,.0f}</b> bars "
            f"({days:,.0f} days) to be 95% sure the true Sharpe is above zero; "
            f"this record has {stats.get('n_periods')}.</p>"
        )
    notes = [
        stats.get("dsr_note"),
        trials.describe() if trials is not None else stats.get("trials_note"),
    ]
    lines += [f"<p class='note'>{html.escape(x)}</p>" for x in notes if x]
    return "<div class='trials' id='trials'>\n" + "\n".join(lines) + "\n</div>"


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool | str):
        return html.escape(str(value))
    if float(value).is_integer() and abs(value) >= 1:
        return f"{value:,.0f}"
    return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _stats_table(stats: dict[str, Any]) -> str:
    skip = {"start", "end", "dsr_note", "trials_note", "hit_rate_basis"}
    rows = [
        f"<tr><th>{html.escape(k)}</th><td>{_pct(v) if k in _PERCENT else _num(v)}</td></tr>"
        for k, v in stats.items()
        if k not in skip
    ]
    basis = html.escape(str(stats.get("hit_rate_basis", "")))
    return f"<table id='stats'>{''.join(rows)}</table><p class='note'>hit rate: {basis}</p>"


def html_table(
    frame: pl.DataFrame,
    name: str,
    empty: str = "None.",
    *,
    cell: Callable[[Any], str] | None = None,
    max_rows: int = MAX_TABLE_ROWS,
) -> str:
    """`frame` as an HTML table with id `name` (the tearsheet's and the divergence report's):
    at most `max_rows` rows with a note on the rest, each value through `cell` (escaped)."""
    if frame.height == 0:
        return f"<p id='{name}-empty'>{html.escape(empty)}</p>"
    cell = cell or _cell
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in shown.iter_rows()
    )
    more = frame.height - shown.height
    note = f"<p class='note'>{more} more rows not shown (first {shown.height}).</p>" if more else ""
    return f"<table id='{name}'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}"
    if hasattr(value, "isoformat"):
        return html.escape(value.strftime("%Y-%m-%d %H:%M"))
    return html.escape("" if value is None else str(value))


def _costs(stats: dict[str, Any], funding: pl.DataFrame) -> str:
    rows = "".join(
        f"<tr><th>{k}</th><td>{_num(stats.get(k))}</td></tr>"
        for k in ("gross_pnl", "fees", "slippage", "funding")
    )
    note = "Fees and slippage are costs; funding is as received (negative: paid)."
    if funding.height and "price_source" in funding.columns:
        by_source = funding.group_by("price_source").len().sort("price_source")
        fallback = by_source.filter(pl.col("price_source") != "mark")
        if fallback.height:
            counts = ", ".join(f"{n} at {s} prices" for s, n in fallback.iter_rows())
            note += f" No mark price for some funding payments: {counts} (not the mark price)."
    return f"<table id='costs'>{rows}</table><p class='note'>{html.escape(note)}</p>"


def _rejections(rejections: pl.DataFrame) -> str:
    if rejections.height == 0:
        return "<p id='rejections-empty'>No order was rejected.</p>"
    reasons = rejections.group_by("reason").len("orders").sort("orders", descending=True)
    return html_table(reasons, "rejection-reasons") + html_table(
        rejections.sort("open_time"), "rejections"
    )
