"""The status page's drawings as inline SVG (no plotting library, no script): a sparkline
of one finding over the runs, the PSI bars of the top drifting features, a paper account's
equity and drawdown against its breaker, and the accuracy bar of a table cell."""

from __future__ import annotations

import html
import math
from datetime import datetime
from typing import Any

import polars as pl

from quantlab.monitoring.findings import NA

COLOR = {"ok": "#2e8b57", "warn": "#e69f00", "alert": "#c0392b", NA: "#999999"}


def sparkline(values: list[float | None], w: int = 120, h: int = 24) -> str:
    """A finding's value over the runs, oldest first; empty under two finite values."""
    pts = [v for v in values if v is not None and math.isfinite(v)]
    if len(pts) < 2:
        return ""
    lo, span = min(pts), (max(pts) - min(pts)) or 1.0
    xy = [
        (2 + i * (w - 4) / (len(pts) - 1), h - 2 - (v - lo) / span * (h - 4))
        for i, v in enumerate(pts)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    return (
        f"<svg class='spark' role='img' width='{w}' height='{h}' viewBox='0 0 {w} {h}'>"
        f"<title>{len(pts)} runs: {esc(fmt(pts[0]))} to {esc(fmt(pts[-1]))}</title>"
        f"<polyline points='{line}' fill='none' stroke='#3b6ea5' stroke-width='1.5'/>"
        f"<circle cx='{xy[-1][0]:.1f}' cy='{xy[-1][1]:.1f}' r='2.5' fill='#3b6ea5'/></svg>"
    )


def psi_chart(top: pl.DataFrame, w: int = 760, bar: int = 18, left: int = 260) -> str:
    """Horizontal PSI bars, coloured by level, with the thresholds as dashed lines."""
    lines = sorted({t for t in top["threshold"].to_list() if t is not None and math.isfinite(t)})
    hi = max([*top["psi"].to_list(), *lines]) or 1.0
    h = 24 + top.height * (bar + 6)

    def x(v: float) -> float:
        return left + v / hi * (w - left - 60)

    parts = [f"<svg id='psi-chart' role='img' width='{w}' height='{h}' viewBox='0 0 {w} {h}'>"]
    for i, r in enumerate(top.iter_rows(named=True)):
        y = 16 + i * (bar + 6)
        label = esc(f"{r['model']} / {r['feature']}")
        parts += [
            f"<text x='{left - 6}' y='{y + bar - 5}' font-size='11' text-anchor='end'>{label}</text>",
            f"<rect x='{left}' y='{y}' width='{max(x(r['psi']) - left, 1):.1f}' height='{bar}' "
            f"fill='{COLOR.get(r['level'], '#999')}'><title>{label}: PSI {r['psi']:.4f}</title></rect>",
            f"<text x='{x(r['psi']) + 4:.1f}' y='{y + bar - 5}' font-size='11'>{r['psi']:.3f}</text>",
        ]
    for t in lines:
        parts.append(
            f"<line x1='{x(t):.1f}' y1='8' x2='{x(t):.1f}' y2='{h - 4}' stroke='#444' "
            f"stroke-dasharray='4 3'><title>threshold {t:g}</title></line>"
        )
    return "\n".join([*parts, "</svg>"])


def equity_svg(account: str, marks: pl.DataFrame, breaker: float | None) -> str:
    """Equity (top) and drawdown from the running peak (bottom, with the breaker's level)."""
    w, h, pad = 760, 220, 40
    eq = marks["equity"].to_list()
    peak = marks["equity"].cum_max().to_list()
    dd = [1 - e / p if p else 0.0 for e, p in zip(eq, peak, strict=True)]
    n = len(eq)

    def xs(i: int) -> float:
        return pad + i * (w - 2 * pad) / (n - 1)

    def path(vals: list[float], top: float, height: float, lo: float, hi: float) -> str:
        span = (hi - lo) or 1.0
        return " ".join(
            f"{xs(i):.1f},{top + (hi - v) / span * height:.1f}" for i, v in enumerate(vals)
        )

    dd_hi = max([*dd, breaker or 0.0]) or 0.01
    parts = [
        f"<svg class='equity' data-account='{esc(account)}' role='img' width='{w}' height='{h}' "
        f"viewBox='0 0 {w} {h}'><title>{esc(account)}: equity and drawdown</title>",
        f"<polyline points='{path(eq, 10, 110, min(eq), max(eq))}' fill='none' stroke='#3b6ea5'/>",
        f"<polyline points='{path([-d for d in dd], 140, 60, -dd_hi, 0)}' fill='none' stroke='#c0392b'/>",
        f"<text x='4' y='20' font-size='11'>{max(eq):,.0f}</text>",
        f"<text x='4' y='120' font-size='11'>{min(eq):,.0f}</text>",
        f"<text x='4' y='150' font-size='11'>drawdown {max(dd):.1%} max</text>",
    ]
    if breaker is not None:
        y = 140 + 60 * breaker / dd_hi
        parts.append(
            f"<line x1='{pad}' y1='{y:.1f}' x2='{w - pad}' y2='{y:.1f}' stroke='#444' "
            f"stroke-dasharray='4 3'><title>kill drawdown {breaker:.1%}</title></line>"
        )
    first, last = (marks["time"][i] for i in (0, -1))
    parts.append(
        f"<text x='{pad}' y='{h - 6}' font-size='11'>{esc(fmt(first))} to {esc(fmt(last))}</text>"
    )
    return "\n".join([*parts, "</svg>"])


def accuracy_bar(row: dict) -> str:
    """A table cell: the accuracy in percent and as a bar on 0..1, coloured by its level."""
    v = row.get("accuracy")
    if v is None or not math.isfinite(v):
        return "<td>n/a</td>"
    color = COLOR.get(row.get("level"), "#999")
    return (
        f"<td class='num'>{v:.1%} <svg width='60' height='10' role='img'>"
        f"<rect width='60' height='10' fill='#eee'/><rect width='{60 * v:.1f}' height='10' "
        f"fill='{color}'/></svg></td>"
    )


def fmt(value: Any) -> str:
    """A value as the page writes it (then escaped); a missing one as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def num(value: Any) -> str:
    return " class='num'" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))
