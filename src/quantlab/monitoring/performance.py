"""Is the champion still right, and is paper trading near a breaker? The live accuracy
tracker's windows against a floor (`live_accuracy` -> `monitor_accuracy`) and each paper
account's P&L, drawdown, daily loss and exposure against the circuit breakers' levels
(`paper_equity` -> `monitor_paper`). Pure: the time is `as_of`, the limits are arguments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import polars as pl

from quantlab.monitoring.findings import (
    ALERT,
    NA,
    OK,
    UTC_MS,
    WARN,
    crossed,
    level_above,
    level_below,
)

if TYPE_CHECKING:
    from quantlab.config.monitoring import AccuracyMonitorConfig, PaperMonitorConfig

ACCURACY, PAPER = "monitor_accuracy", "monitor_paper"
_TOL = 1e-9  # relative: an exposure equal to its cap (fully invested) is not above it


def _schema(name: str) -> dict[str, pl.DataType]:
    from quantlab.catalog.datasets import DATASETS

    return dict(DATASETS[name].schema)


def _accuracy_row(r: dict, as_of: datetime, cfg: AccuracyMonitorConfig) -> dict:
    subject = f"{r['model']}/{r['window_days']}d/{r['symbol']}"
    acc, n = r["accuracy"], r["rows"] or 0
    where = f"{subject} v{r['version']} ({r['source']} rows)"
    if n < cfg.min_rows or acc is None:
        level, threshold = NA, cfg.alert_below
        message = (
            f"{where}: {n} resolved row(s), fewer than accuracy.min_rows {cfg.min_rows}; "
            "not judged until more labels resolve"
        )
    else:
        level = level_below(acc, cfg.warn_below, cfg.alert_below)
        threshold = crossed(level, cfg.warn_below, cfg.alert_below)
        if level == OK:
            message = f"{where}: accuracy {acc:.1%} on {n} rows"
        else:
            message = (
                f"{where}: accuracy {acc:.1%} on {n} rows is below {threshold:.1%} ({level}); "
                "look at the model diagnostics (notebook 03) and the drift check, and consider "
                "retraining or rolling back the champion"
            )
    return {
        "as_of": as_of,
        "check": "accuracy",
        "subject": subject,
        "level": level,
        "value": acc,
        "threshold": threshold,
        "message": message,
        "model": r["model"],
        "model_version": r["version"],
        "window_days": r["window_days"],
        "symbol": r["symbol"],
        "rows": n,
        "accuracy": acc,
        "metric": r["metric"],
        "metric_value": r["value"],
        "source": r["source"],
    }


def check_accuracy(rows: pl.DataFrame, as_of: datetime, cfg: AccuracyMonitorConfig) -> pl.DataFrame:
    """`monitor_accuracy` rows from `live_accuracy` rows: each window's accuracy against
    `cfg.warn_below`/`alert_below`; n/a with fewer than `cfg.min_rows` resolved rows."""
    ordered = rows.sort("model", "window_days", "symbol")
    out = [_accuracy_row(r, as_of, cfg) for r in ordered.iter_rows(named=True)]
    return pl.DataFrame(out, schema=_schema(ACCURACY))


def _day_start(marks: pl.DataFrame, as_of: datetime) -> float:
    """The equity the UTC day of `as_of` started from, as the breaker keeps it: the last mark
    at or before 00:00 UTC (a mark's time is its bar's close, the breaker keys it by the
    bar's open); an account that started that day starts from its first mark."""
    day = as_of.astimezone(UTC)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    before = marks.filter(pl.col("time") <= midnight)["equity"]
    return float(before[-1]) if before.len() else float(marks["equity"][0])


def _breaker(value: float, kill: float | None, warn_fraction: float, name: str) -> tuple:
    """(level, threshold, text) of a figure against a breaker's level (None: breaker off)."""
    if kill is None:
        return OK, None, f"{value:.2%}; {name} is off, so not judged"
    level = level_above(value, warn_fraction * kill, kill)
    if level == OK:
        return OK, kill, f"{value:.2%}, below {name} {kill:.2%}"
    if level == WARN:
        text = f"{value:.2%}, near {name} {kill:.2%}; look at the positions before it halts"
        return WARN, warn_fraction * kill, text
    text = (
        f"{value:.2%} at or beyond {name} {kill:.2%}: the breaker halts the account; a person "
        "resumes it (quantlab paper resume) after looking at its orders and P&L"
    )
    return ALERT, kill, text


def _paper_rows(
    account: str,
    marks: pl.DataFrame,
    as_of: datetime,
    kill_drawdown: float | None,
    kill_daily_loss: float | None,
    max_gross: float,
    cfg: PaperMonitorConfig,
) -> list[dict]:
    last = marks.row(-1, named=True)
    equity, gross = float(last["equity"]), float(last["gross_exposure"])
    peak = float(marks["equity"].max())
    pnl = equity - float(marks["equity"][0])
    drawdown = 1.0 - equity / peak if peak > 0 else 0.0
    start = _day_start(marks, as_of)
    daily_loss = 1.0 - equity / start if start > 0 else 0.0
    exposure = gross / equity if equity > 0 else None
    cap = cfg.max_gross_exposure if cfg.max_gross_exposure is not None else max_gross
    cap_name = "monitoring.paper.max_gross_exposure" if cfg.max_gross_exposure else "risk.max_gross"

    if exposure is None:
        exp = (NA, cap, f"equity is {equity:,.2f}, so exposure cannot be judged; look at it")
    elif exposure > cap * (1 + _TOL):
        exp = (
            ALERT,
            cap,
            f"gross/equity {exposure:.2f} above {cap_name} {cap:g}: the limits did not hold; "
            "look at the account's last orders before the next bar",
        )
    else:
        exp = (OK, cap, f"gross/equity {exposure:.2f}, within {cap_name} {cap:g}")
    frac = cfg.warn_fraction
    judged = {
        "pnl": (pnl, (OK, None, f"P&L {pnl:+,.2f} since the first mark (not judged)")),
        "drawdown": (drawdown, _breaker(drawdown, kill_drawdown, frac, "risk.kill_drawdown")),
        "daily_loss": (
            daily_loss,
            _breaker(daily_loss, kill_daily_loss, frac, "risk.kill_daily_loss"),
        ),
        "exposure": (exposure, exp),
    }
    common = {
        "account": account,
        "time": last["time"],
        "equity": equity,
        "peak_equity": peak,
        "pnl": pnl,
        "drawdown": drawdown,
        "daily_loss": daily_loss,
        "gross_exposure": gross,
    }
    return [
        {
            "as_of": as_of,
            "check": "paper",
            "subject": f"{account}/{measure}",
            "level": level,
            "value": value,
            "threshold": threshold,
            "message": f"{account} {measure.replace('_', ' ')}: {text}",
            "measure": measure,
            **common,
        }
        for measure, (value, (level, threshold, text)) in judged.items()
    ]


def check_paper(
    equity: pl.DataFrame,
    as_of: datetime,
    *,
    kill_drawdown: float | None,
    kill_daily_loss: float | None,
    max_gross: float,
    cfg: PaperMonitorConfig,
) -> pl.DataFrame:
    """`monitor_paper` rows: per account, its P&L since the first mark (not judged), drawdown
    from the peak and loss since the day's start (warn at `cfg.warn_fraction` of the breaker,
    alert at it) and gross exposure / equity (alert above `cfg.max_gross_exposure`, else
    `max_gross`). Only marks at or before `as_of` count; an account without one has no rows."""
    marks = equity.filter(pl.col("time").cast(UTC_MS) <= pl.lit(as_of).cast(UTC_MS)).sort(
        "account", "time"
    )
    rows = []
    for (account,), part in marks.group_by("account", maintain_order=True):
        rows += _paper_rows(account, part, as_of, kill_drawdown, kill_daily_loss, max_gross, cfg)
    return pl.DataFrame(rows, schema=_schema(PAPER))
