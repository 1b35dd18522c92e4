"""The status page: one self-contained HTML file each monitoring run writes. It opens offline
(inline CSS and SVG, no script, no URL to load): a headline with the worst level, then
freshness and the gate, drift with a PSI bar chart, live accuracy, paper P&L against the
breakers with an equity/drawdown plot, the tasks, and the alerts this run fired or resolved.
Every value is escaped; an empty section says why it is empty.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from quantlab.monitoring._status_svg import (
    accuracy_bar,
    equity_svg,
    esc,
    fmt,
    num,
    psi_chart,
    sparkline,
)
from quantlab.monitoring.findings import NA, SEVERITY, findings

TOP_DRIFT = 10  # features per model in the PSI chart and table
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { padding: 0.2rem 0.7rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.box { border: 2px solid #444; border-radius: 6px; padding: 0.8rem 1.2rem; background: #f7f7f2; }
.note { color: #666; font-size: 0.85rem; }
.badge { color: #fff; border-radius: 4px; padding: 0.05rem 0.45rem; font-size: 0.8rem; }
.level-ok { background: #2e8b57; } .level-warn { background: #e69f00; }
.level-alert { background: #c0392b; } .level-n\\/a { background: #999; }
section { margin-top: 1.5rem; }
"""
EMPTY = {
    "freshness": "No series checked: the config's universe lists no (market, symbol, interval).",
    "gate": "No gate verdict found: no *_checks dataset has been written yet (run market_data).",
    "drift": "No drift figures: no champion model is registered yet, or its training rows "
    "could not be read (run research, then promote a model).",
    "accuracy": "No live accuracy: the lifecycle tracker has no figures for the champion yet "
    "(predictions resolve once their label horizon has passed).",
    "paper": "No paper marks at or before this run: the paper_trading DAG has not run yet.",
    "tasks": "No task tries of the watched DAGs in the lookback window (or none ran).",
    "alerts": "No alert fired or resolved in this run.",
}


@dataclass(frozen=True)
class StatusData:
    """One monitoring run's rows (monitor_* schemas), its alerts (monitor_alerts rows fired or
    resolved this run), paper_equity for the plot and earlier findings for the trends."""

    as_of: datetime
    freshness: pl.DataFrame
    gate: pl.DataFrame
    drift: pl.DataFrame
    accuracy: pl.DataFrame
    paper: pl.DataFrame
    tasks: pl.DataFrame
    alerts: pl.DataFrame
    equity: pl.DataFrame | None = None
    history: pl.DataFrame | None = None


def write_status(data: StatusData, path: Path | str) -> Path:
    """Write the page to `path` atomically (a reader sees the old page or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render_status(data))
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the page from a web server or a mount
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def render_status(data: StatusData) -> str:
    """The page as a full HTML document."""
    as_of = data.as_of if data.as_of.tzinfo else data.as_of.replace(tzinfo=UTC)
    when = f"{as_of:%Y-%m-%d %H:%M} UTC"
    trend = _trends(data.history, as_of)
    body = [
        f"<h1>quantlab status <span class='note'>as of {esc(when)}</span></h1>",
        _headline(data),
        _section("freshness", "Data freshness", data.freshness, _freshness(data, trend)),
        _section("drift", "Feature drift", data.drift, _drift(data.drift, trend)),
        _section("accuracy", "Live accuracy", data.accuracy, _accuracy(data.accuracy, trend)),
        _section("paper", "Paper trading", data.paper, _paper(data, as_of, trend)),
        _section("tasks", "DAG tasks", data.tasks, _tasks(data.tasks)),
        _section("alerts", "Alerts this run", data.alerts, _alerts(data.alerts)),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>quantlab status {esc(when)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _headline(data: StatusData) -> str:
    frames = (data.freshness, data.gate, data.drift, data.accuracy, data.paper, data.tasks)
    levels = findings(*frames)["level"].to_list()
    worst = max(levels, key=_rank, default=NA)
    counts = ", ".join(f"{levels.count(v)} {v}" for v in ("alert", "warn", "ok", NA))
    fired = data.alerts.filter(pl.col("status") == "fired").height if data.alerts.height else 0
    return (
        f"<div class='box' id='headline'><p>Overall: {_badge(worst, 'worst-level')} "
        f"<span id='counts'>{esc(counts)}</span> across {len(levels)} checks; "
        f"<b id='alerts-fired'>{fired}</b> alert(s) fired, "
        f"{data.alerts.height - fired} resolved this run.</p></div>"
    )


def _section(key: str, title: str, frame: pl.DataFrame, body: str) -> str:
    worst = _worst(frame) if frame.height and "level" in frame.columns else NA
    badge = _badge(worst) if frame.height and "level" in frame.columns else ""
    return f"<section id='{key}'><h2>{esc(title)} {badge}</h2>\n{body}\n</section>"


def _freshness(data: StatusData, trend: Callable) -> str:
    cols = [("series", "subject"), ("level", _level), ("newest candle", "newest_open")]
    cols += [("lag (bars)", "lag_bars"), ("trend", trend), ("what to do", "message")]
    gate = [("dataset", "dataset"), ("version", "version"), ("level", _level)]
    gate += [
        ("failed checks", "failed_checks"),
        ("written", "written_at"),
        ("what to do", "message"),
    ]
    return (
        _table(_by_level(data.freshness), cols, "freshness-table", EMPTY["freshness"])
        + "<h3>Gate verdicts</h3>"
        + _table(_by_level(data.gate), gate, "gate-table", EMPTY["gate"])
    )


def _drift(drift: pl.DataFrame, trend: Callable) -> str:
    if drift.height == 0:
        return f"<p id='drift-empty'>{esc(EMPTY['drift'])}</p>"
    ordered = drift.sort("model", "rank", nulls_last=True)  # n/a rows have no rank
    top = ordered.group_by("model", maintain_order=True).head(TOP_DRIFT)
    cols = [("model", "model"), ("feature", "feature"), ("rank", "rank"), ("PSI", "psi")]
    cols += [("level", _level), ("recent rows", "recent_rows"), ("trend", trend)]
    cols += [("what to do", "message")]
    judged = top.filter(pl.col("psi").is_not_null())
    chart = psi_chart(judged) if judged.height else ""
    note = f"<p class='note'>Top {top.height} of {drift.height} features by PSI (1 = worst).</p>"
    return chart + note + _table(top, cols, "drift-table", EMPTY["drift"])


def _accuracy(acc: pl.DataFrame, trend: Callable) -> str:
    cols = [("model", "model"), ("version", "model_version"), ("window (d)", "window_days")]
    cols += [("symbol", "symbol"), ("rows", "rows"), ("accuracy", accuracy_bar)]
    cols += [("level", _level), ("source", "source"), ("trend", trend), ("what to do", "message")]
    ordered = acc.sort("model", "symbol", "window_days") if acc.height else acc
    return _table(ordered, cols, "accuracy-table", EMPTY["accuracy"])


def _paper(data: StatusData, as_of: datetime, trend: Callable) -> str:
    cols = [("account / measure", "subject"), ("level", _level), ("value", "value")]
    cols += [("breaker level", "threshold"), ("equity", "equity"), ("trend", trend)]
    cols += [("what to do", "message")]
    plots = []
    eq = data.equity
    for account in sorted(set(data.paper["account"])) if data.paper.height else []:
        marks = pl.DataFrame() if eq is None else eq.filter(pl.col("account") == account)
        marks = marks.filter(pl.col("time") <= as_of).sort("time") if marks.height else marks
        dd = data.paper.filter((pl.col("account") == account) & (pl.col("measure") == "drawdown"))
        level = dd["threshold"][0] if dd.height else None
        if marks.height >= 2:
            plots.append(f"<h3>{esc(account)}</h3>" + equity_svg(account, marks, level))
    return _table(data.paper, cols, "paper-table", EMPTY["paper"]) + "".join(plots)


def _tasks(tasks: pl.DataFrame) -> str:
    cols = [("task", "subject"), ("level", _level), ("tries", "tries"), ("failed", "failed")]
    cols += [("median s", "median_s"), ("last s", "last_s"), ("last state", "last_state")]
    cols += [("last end", "last_end"), ("what to do", "message")]
    return _table(_by_level(tasks), cols, "tasks-table", EMPTY["tasks"])


def _alerts(alerts: pl.DataFrame) -> str:
    cols = [("status", "status"), ("level", _level), ("check", "check")]
    cols += [("subject", "subject"), ("sent", "sent_at"), ("message", "message")]
    return _table(_by_level(alerts), cols, "alerts-table", EMPTY["alerts"])


def _table(frame: pl.DataFrame, cols: list[tuple[str, Any]], name: str, empty: str) -> str:
    """Rows of `frame`; a column is a field name (escaped) or a function of the row (HTML)."""
    if frame.height == 0:
        return f"<p id='{name}-empty'>{esc(empty)}</p>"
    head = "".join(f"<th>{esc(h)}</th>" for h, _ in cols)
    rows = []
    for r in frame.iter_rows(named=True):
        cells = "".join(
            f(r) if callable(f) else f"<td{num(r.get(f))}>{esc(fmt(r.get(f)))}</td>"
            for _, f in cols
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        f"<table id='{name}'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _trends(history: pl.DataFrame | None, as_of: datetime) -> Callable[[dict], str]:
    """A cell function: the row's value over the earlier runs and this one, as a sparkline."""
    series: dict[tuple[str, str], list[float]] = {}
    if history is not None and history.height:
        earlier = history.filter(pl.col("as_of") < as_of).sort("as_of")
        for check, subject, value in earlier.select("check", "subject", "value").iter_rows():
            series.setdefault((check, subject), []).append(value)

    def cell(row: dict) -> str:
        values = [*series.get((row["check"], row["subject"]), []), row["value"]]
        return f"<td>{sparkline(values)}</td>"

    return cell


def _level(row: dict) -> str:
    return f"<td>{_badge(row.get('level') or NA)}</td>"


def _badge(level: str, ident: str = "") -> str:
    attr = f" id='{ident}'" if ident else ""
    return f"<span{attr} class='badge level-{esc(level)}'>{esc(level)}</span>"


def _worst(frame: pl.DataFrame) -> str:
    return max(frame["level"].to_list(), key=_rank, default=NA)


def _rank(level: str) -> tuple[int, bool]:
    """Severity, and ok above n/a: a page with one ok check and the rest unjudged is ok."""
    return SEVERITY.get(level, 0), level == "ok"


def _by_level(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.height == 0 or "level" not in frame.columns:
        return frame
    sev = pl.col("level").replace_strict(SEVERITY, default=0, return_dtype=pl.Int8)
    return (
        frame.with_columns(sev.alias("_s"))
        .sort(["_s", "subject"], descending=[True, False])
        .drop("_s")
    )
