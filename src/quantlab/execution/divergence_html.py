"""The divergence report as one self-contained HTML file: it opens offline, from a file or an
MLflow artifact. The waterfall is inline SVG drawn here (no plotting library, no script, no
URL to load); the page holds the buckets, the totals, the per-symbol table, the pairs with the
largest gaps and a paragraph per bucket saying what it means.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import polars as pl

from quantlab.backtest.tearsheet import html_table
from quantlab.execution.divergence import MEANING, Divergence

TOP_PAIRS = 50  # the pairs table shows the rows with the largest |gap|
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { padding: 0.2rem 0.7rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td { font-variant-numeric: tabular-nums; }
.box { border: 2px solid #444; border-radius: 6px; padding: 0.8rem 1.2rem; background: #f7f7f2; }
.note { color: #666; font-size: 0.85rem; }
dt { font-weight: bold; margin-top: 0.5rem; }
"""
_W, _H, _PAD = 860, 340, 50  # the waterfall's size and margin, in SVG units


def money(value: float) -> str:
    """How the page writes an amount in quote currency (tests read it back the same way)."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:,.2f}"


def share(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.1%}"


def write(div: Divergence, path: Path | str, *, title: str = "Paper vs backtest") -> Path:
    """Write `div`'s report to `path` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(div, title=title), encoding="utf-8")
    return path


def render(div: Divergence, *, title: str = "Paper vs backtest") -> str:
    """The report as a full HTML document."""
    t = div.totals
    start, end = (w.strftime("%Y-%m-%d %H:%M") for w in div.window)
    pairs = div.per_fill.with_columns(pl.col("gap").abs().alias("_abs"))
    top = pairs.sort("_abs", descending=True).head(TOP_PAIRS).drop("_abs")
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Window: fill bars {start} to {end} UTC. Amounts in quote currency; "
        "positive = the paper account did better than the backtest.</p>",
        _summary(t),
        "<h2>Where the gap comes from</h2>",
        waterfall_svg(div.buckets, t["gap"]),
        _buckets_table(div.buckets, t["gap"]),
        "<h2>By symbol</h2>",
        _table(div.by_symbol, "by-symbol", amounts=True),
        f"<h2>Fills with the largest gaps (top {min(TOP_PAIRS, pairs.height)} of "
        f"{pairs.height})</h2>",
        _table(top, "pairs", empty="No fill on either side in the window."),
        "<h2>What each bucket means</h2>",
        _meanings(),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _summary(t: dict[str, Any]) -> str:
    lines = [
        f"<p>Paper final equity <b id='paper-final'>{money(t['paper_final'])}</b>, backtest "
        f"final equity <b id='backtest-final'>{money(t['backtest_final'])}</b>: gap "
        f"<b id='gap'>{money(t['gap'])}</b>.</p>",
        f"<p>Unexplained <b id='unexplained'>{money(t['unexplained'])}</b>, "
        f"<b id='unexplained-share'>{share(t['unexplained_share'])}</b> of the gap.</p>",
        f"<p class='note'>{t['pairs']} paired fill(s), {t['missed_fills']} backtest fill(s) with "
        f"no paper twin, {t['extra_fills']} paper fill(s) with no backtest twin, "
        f"{t['paper_fills_outside_window']} paper fill(s) outside the window (left out). "
        f"Initial equity: paper {money(t['paper_initial'])}, backtest "
        f"{money(t['backtest_initial'])}.</p>",
    ]
    return "<div class='box' id='summary'>\n" + "\n".join(lines) + "\n</div>"


def waterfall_svg(buckets: dict[str, float], gap: float) -> str:
    """Each bucket as a step from 0 to the total gap, then the gap itself; inline SVG."""
    steps, level = [], 0.0
    for name, value in buckets.items():
        steps.append((name, level, level + value))
        level += value
    steps.append(("gap", 0.0, gap))
    ends = [0.0, *(v for _, a, b in steps for v in (a, b))]
    lo, hi = min(ends), max(ends)
    span = (hi - lo) or 1.0

    def y(v: float) -> float:
        return _PAD + (hi - v) / span * (_H - 2 * _PAD)

    slot = (_W - 2 * _PAD) / len(steps)
    parts = [
        f"<svg id='waterfall' role='img' width='{_W}' height='{_H}' viewBox='0 0 {_W} {_H}'>",
        f"<line x1='{_PAD}' y1='{y(0):.1f}' x2='{_W - _PAD}' y2='{y(0):.1f}' stroke='#888'/>",
    ]
    for i, (name, a, b) in enumerate(steps):
        x = _PAD + i * slot + slot * 0.15
        top, height = y(max(a, b)), max(abs(y(a) - y(b)), 1.0)
        color = _color(name, b - a)
        parts += [
            f"<rect x='{x:.1f}' y='{top:.1f}' width='{slot * 0.7:.1f}' height='{height:.1f}' "
            f"fill='{color}'><title>{html.escape(name)}: {money(b - a)}</title></rect>",
            f"<text x='{x + slot * 0.35:.1f}' y='{top - 6:.1f}' font-size='11' "
            f"text-anchor='middle'>{money(b - a)}</text>",
            f"<text x='{x + slot * 0.35:.1f}' y='{_H - _PAD / 3:.1f}' font-size='11' "
            f"text-anchor='middle'>{html.escape(name)}</text>",
        ]
    return "\n".join([*parts, "</svg>"])


def _color(name: str, value: float) -> str:
    if name == "gap":
        return "#3b6ea5"
    if name == "unexplained":
        return "#999999"
    return "#2e8b57" if value >= 0 else "#c0392b"


def _buckets_table(buckets: dict[str, float], gap: float) -> str:
    rows = "".join(
        f"<tr id='bucket-{name}'><th>{html.escape(name)}</th><td class='value'>{money(v)}</td>"
        f"<td>{share(v / gap) if gap else 'n/a'}</td></tr>"
        for name, v in buckets.items()
    )
    total = f"<tr id='bucket-gap'><th>gap</th><td class='value'>{money(gap)}</td><td></td></tr>"
    head = "<thead><tr><th>bucket</th><th>quote</th><th>share of gap</th></tr></thead>"
    return f"<table id='buckets'>{head}<tbody>{rows}{total}</tbody></table>"


def _meanings() -> str:
    items = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in MEANING.items()
    )
    return (
        f"<dl id='meanings'>{items}</dl><p class='note'>s = +1 for a buy, −1 for a sell; a paper "
        "fill pairs with the backtest fill of the same symbol, side and fill bar (the bar after "
        "the order's decision bar). Buckets + unexplained = gap, exactly.</p>"
    )


def _table(frame: pl.DataFrame, name: str, empty: str = "None.", *, amounts: bool = False) -> str:
    """`frame` as the tearsheet writes a table; `amounts`: every float is quote currency."""
    amount = (lambda v: money(v) if isinstance(v, float) else _cell(v)) if amounts else _cell
    return html_table(frame, name, empty, cell=amount)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.8g}"
    if hasattr(value, "strftime"):
        return html.escape(value.strftime("%Y-%m-%d %H:%M"))
    return html.escape("" if value is None else str(value))
