"""The factor report as one self-contained HTML file: tables and plotly charts, no network needed.

plotly.js is embedded inline once, so the file opens offline in any browser.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
import polars as pl

from quantlab.features.evaluate import FactorEvaluation

_COLUMNS = (
    ("feature", "{}"),
    ("grade", "{}"),
    ("rank_ic", "{:+.4f}"),
    ("rank_icir", "{:+.2f}"),
    ("ic", "{:+.4f}"),
    ("icir", "{:+.2f}"),
    ("t_stat", "{:+.1f}"),
    ("hit_rate", "{:.0%}"),
    ("q_spread", "{:+.5f}"),
    ("monotonicity", "{:+.2f}"),
    ("turnover", "{:.2f}"),
    ("ic_decay", "{:+.2f}"),
    ("n_periods", "{}"),
    ("n_obs", "{}"),
)
_GRADE_COLOURS = {"A": "#1a7f37", "B": "#4c9a2a", "C": "#bf8700", "D": "#d4631a", "F": "#b42318"}


def _fmt(value: object, spec: str) -> str:
    if value is None:
        return "–"
    return html.escape(spec.format(value))


def _table(summary: pl.DataFrame) -> str:
    head = "".join(f"<th>{name}</th>" for name, _ in _COLUMNS)
    rows = []
    for row in summary.iter_rows(named=True):
        cells = []
        for name, spec in _COLUMNS:
            style = ""
            if name == "grade":
                style = f' style="color:#fff;background:{_GRADE_COLOURS.get(row[name], "#666")}"'
            cells.append(f"<td{style}>{_fmt(row[name], spec)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figures(result: FactorEvaluation, primary: int, chosen: list[str]) -> list[go.Figure]:
    ic = result.ic.filter(pl.col("horizon") == primary, pl.col("feature").is_in(chosen))
    over_time = go.Figure()
    cumulative = go.Figure()
    for name in chosen:
        part = ic.filter(pl.col("feature") == name).sort("period")
        x = part["period"].to_list()
        over_time.add_trace(go.Scatter(x=x, y=part["rank_ic"].to_list(), name=name))
        cumulative.add_trace(go.Scatter(x=x, y=part["rank_ic"].cum_sum().to_list(), name=name))
    over_time.update_layout(title=f"Rank IC per period, horizon {primary}", yaxis_title="rank IC")
    cumulative.update_layout(title=f"Cumulative rank IC, horizon {primary}", yaxis_title="sum")
    decay = go.Figure()
    for name in chosen:
        part = result.summary.filter(pl.col("feature") == name).sort("horizon")
        decay.add_trace(
            go.Scatter(
                x=part["horizon"].to_list(),
                y=part["rank_ic"].to_list(),
                name=name,
                mode="lines+markers",
            )
        )
    decay.update_layout(
        title="IC decay: mean rank IC by horizon", xaxis_title="bars ahead", yaxis_title="rank IC"
    )
    quant = go.Figure()
    q = result.quantiles.filter(pl.col("horizon") == primary, pl.col("feature").is_in(chosen))
    for name in chosen:
        part = q.filter(pl.col("feature") == name).sort("quantile")
        quant.add_trace(
            go.Bar(
                x=[f"Q{v}" for v in part["quantile"]],
                y=(part["mean_ret"] * 1e4).to_list(),
                name=name,
            )
        )
    quant.update_layout(
        title=f"Mean forward return by quantile, horizon {primary}",
        yaxis_title="bp",
        barmode="group",
    )
    return [over_time, cumulative, decay, quant]


def render_report(result: FactorEvaluation, title: str, primary: int, top: int = 12) -> str:
    """The whole report: a ranked table per horizon and the plots for the `top` features."""
    summary = result.summary
    ranked = summary.filter(pl.col("horizon") == primary).sort(
        pl.col("rank_icir").abs(), descending=True, nulls_last=True
    )
    chosen = ranked["feature"].head(top).to_list()
    charts = [
        fig.update_layout(template="plotly_white", height=420).to_html(
            full_html=False, include_plotlyjs=(i == 0)
        )
        for i, fig in enumerate(_figures(result, primary, chosen))
    ]
    tables = [f"<h2>Horizon {primary} bars (trained), ranked by |rank ICIR|</h2>", _table(ranked)]
    for h in sorted(set(summary["horizon"].to_list()) - {primary}):
        part = summary.filter(pl.col("horizon") == h).sort(
            pl.col("rank_icir").abs(), descending=True, nulls_last=True
        )
        tables += [f"<h2>Horizon {h} bars</h2>", _table(part)]
    css = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}"
        "table{border-collapse:collapse;font-size:13px;margin-bottom:2em}"
        "th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}"
        "th{background:#f6f8fa}td:first-child{text-align:left;font-family:monospace}"
    )
    how = (
        "each symbol's feature and forward return standardised over its whole sample; a "
        "period's IC is the mean product over its bars, quantiles are of each symbol's history"
        if result.mode == "time_series"
        else "the correlation across symbols at each bar, averaged per period; quantiles "
        "rank the symbols at each bar"
    )
    notes = (
        f"<p><b>{result.mode.replace('_', ' ')}</b>: {how}. ICIR = mean / sd of the "
        "per-period IC; quantile spread = mean forward log return of the top minus the bottom "
        "quantile; monotonicity = Spearman correlation of quantile and mean return; turnover "
        "= share of bars on which a symbol changes quantile. Grades A-F from |rank IC|, "
        "|rank ICIR| and sign-aligned monotonicity, one lower when turnover exceeds 0.5.</p>"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{css}</style></head><body><h1>{html.escape(title)}</h1>{notes}"
        + "".join(charts)
        + "".join(tables)
        + "</body></html>"
    )
