"""Is the data current and did it pass its gate? Each expected series' newest candle against
the newest candle closed at the check's time (`monitor_freshness`), and each validation
gate's last verdict (`monitor_gate`). Pure: the time is `as_of`, the frames are passed in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import polars as pl

from quantlab.monitoring.findings import ALERT, OK, UTC_MS, crossed, level_above
from quantlab.vocab import INTERVAL_MS, last_closed_open_ms

if TYPE_CHECKING:
    from quantlab.config.monitoring import FreshnessConfig

FRESHNESS, GATE = "monitor_freshness", "monitor_gate"


def _schema(name: str) -> dict[str, pl.DataType]:
    from quantlab.catalog.datasets import DATASETS

    return dict(DATASETS[name].schema)


def _ms(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError(f"as_of {t} is naive: pass an aware UTC datetime")
    return int(t.timestamp() * 1000)


def expected_open(as_of: datetime, interval: str) -> datetime:
    """The open time of the newest candle closed at `as_of`: a candle opened at o closes at
    o + interval, so the 10:00 1h candle is closed at 11:00 and not at 10:59."""
    opened = last_closed_open_ms(_ms(as_of), INTERVAL_MS[interval])
    return datetime.fromtimestamp(opened / 1000, tz=UTC)


def newest_candles(klines: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """[market, symbol, interval, newest_open]: each series' newest open_time."""
    return (
        klines.lazy()
        .group_by("market", "symbol", "interval")
        .agg(pl.col("open_time").max().cast(UTC_MS).alias("newest_open"))
        .sort("market", "symbol", "interval")
        .collect()
    )


def _freshness_row(
    series: tuple[str, str, str], newest: datetime | None, as_of: datetime, cfg: FreshnessConfig
) -> dict:
    market, symbol, interval = series
    expected = expected_open(as_of, interval)
    subject = f"{market}:{symbol}:{interval}"
    if newest is None:
        lag, level, threshold = None, ALERT, cfg.alert_lag_bars
        message = (
            f"{subject} has no candle in the catalog; run the market_data DAG for it "
            "(or drop it from the config's universe)"
        )
    else:
        # A candle newer than the expected one (a check run for a past as_of) is not late.
        lag = max(0, (_ms(expected) - _ms(newest)) // INTERVAL_MS[interval])
        level = level_above(lag, cfg.warn_lag_bars, cfg.alert_lag_bars)
        threshold = crossed(level, cfg.warn_lag_bars, cfg.alert_lag_bars)
        if level == OK:
            message = f"{subject} is current: newest candle {newest:%Y-%m-%d %H:%M} UTC"
        else:
            message = (
                f"{subject} is {lag} bar(s) behind: newest candle {newest:%Y-%m-%d %H:%M} UTC, "
                f"expected {expected:%Y-%m-%d %H:%M} UTC; check the market_data DAG's last runs "
                "and the exchange's status"
            )
    return {
        "as_of": as_of,
        "check": "freshness",
        "subject": subject,
        "level": level,
        "value": None if lag is None else float(lag),
        "threshold": float(threshold),
        "message": message,
        "market": market,
        "symbol": symbol,
        "interval": interval,
        "newest_open": newest,
        "expected_open": expected,
        "lag_bars": lag,
    }


def check_freshness(
    newest: pl.DataFrame,
    series: list[tuple[str, str, str]],
    as_of: datetime,
    cfg: FreshnessConfig,
) -> pl.DataFrame:
    """`monitor_freshness` rows: one per expected (market, symbol, interval), its lag in bars
    judged against `cfg`; a series with no candle at all alerts with a null lag."""
    found = {
        (m, s, i): t
        for m, s, i, t in newest.select("market", "symbol", "interval", "newest_open").iter_rows()
    }
    rows = [_freshness_row(key, found.get(key), as_of, cfg) for key in series]
    return pl.DataFrame(rows, schema=_schema(FRESHNESS))


def check_gates(verdicts: list[dict], as_of: datetime) -> pl.DataFrame:
    """`monitor_gate` rows: each gate's last verdict (dicts with dataset, version, passed,
    failed_checks, written_at); a failed gate alerts."""
    rows = []
    for v in verdicts:
        failed = list(v["failed_checks"] or [])
        passed = bool(v["passed"])
        if passed:
            message = f"{v['dataset']} v{v['version']} passed every check"
        else:
            message = (
                f"{v['dataset']} v{v['version']} failed {', '.join(failed) or 'its gate'}; "
                "the data behind it was not published: read the failed checks' rows in "
                f"{v['dataset']}, fix the source and rerun its DAG"
            )
        rows.append(
            {
                "as_of": as_of,
                "check": "gate",
                "subject": v["dataset"],
                "level": OK if passed else ALERT,
                "value": 1.0 if passed else 0.0,
                "threshold": 1.0,
                "message": message,
                "dataset": v["dataset"],
                "version": v["version"],
                "passed": passed,
                "failed_checks": ",".join(failed),
                "written_at": v["written_at"],
            }
        )
    return pl.DataFrame(rows, schema=_schema(GATE))
