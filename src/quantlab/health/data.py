"""The data checks: the catalog, the newest klines' freshness, the quality gate's last verdict."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from quantlab.health.result import FAIL, OK, WARN, Result
from quantlab.vocab import last_closed_open_ms

if TYPE_CHECKING:
    from quantlab.catalog import Catalog
    from quantlab.config import Config

# What the research pipeline leaves in the catalog, and `predict` and the monitor read.
RESEARCH_DATASETS = ("klines", "klines_checks", "features", "labels", "predictions")
# Stale beyond `validate.max_stale_bars` bars: WARN (the gate's own staleness warning);
# beyond FAIL_FACTOR times that (at least FAIL_FACTOR bars: 20 hours of 1h bars by default),
# the ingest has stopped rather than lagged: FAIL.
FAIL_FACTOR = 10


def check_catalog(catalog: Catalog, required: tuple[str, ...] = RESEARCH_DATASETS) -> Result:
    """The catalog opens and holds the `required` datasets (default: the research ones)."""
    if not catalog.remote and not Path(catalog.root).is_dir():
        return Result("catalog", FAIL, f"no catalog at {catalog.root}; run `make run` to build it")
    names = catalog.names()
    missing = [n for n in required if n not in names]
    details = {"root": str(catalog.root), "datasets": len(names), "missing": missing}
    if missing:
        return Result(
            "catalog",
            FAIL,
            f"{', '.join(missing)} missing from {catalog.root}; run `make run` (or "
            "`quantlab run STAGE`) to produce them",
            details,
        )
    versions = {n: catalog.latest(n).version for n in required}
    return Result(
        "catalog",
        OK,
        f"{len(names)} datasets, {', '.join(required)} present",
        {**details, **versions},
    )


def reference_time(universe_end: date, now: datetime) -> tuple[datetime, str]:
    """What freshness is judged against: now, or `universe.end` when the configured data
    ends in the past (a research range such as the shipped sample's)."""
    end = datetime.combine(universe_end, time(0), tzinfo=UTC)
    if end <= now:
        return end, f"universe.end {end:%Y-%m-%d} (the configured range ends in the past)"
    return now, "now"


def judge_freshness(
    newest: dict[str, datetime | None],
    step_ms: int,
    ref: datetime,
    ref_label: str,
    max_stale_bars: int,
) -> Result:
    """Each symbol's newest candle against the last one closed at `ref` (pure)."""
    ref_ms = int(ref.timestamp() * 1000)
    last_closed = last_closed_open_ms(ref_ms, step_ms)
    fail_after = FAIL_FACTOR * max(max_stale_bars, 1)
    lags: dict[str, int | None] = {}
    for symbol, at in sorted(newest.items()):
        lags[symbol] = None if at is None else (last_closed - int(at.timestamp() * 1000)) // step_ms
    details = {
        "reference": ref.isoformat(),
        "judged_against": ref_label,
        "lag_bars": lags,
        "warn_after_bars": max_stale_bars,
        "fail_after_bars": fail_after,
    }
    missing = [s for s, lag in lags.items() if lag is None]
    far = [s for s, lag in lags.items() if lag is not None and lag > fail_after]
    late = [s for s, lag in lags.items() if lag is not None and max_stale_bars < lag <= fail_after]
    where = f"judged against {ref_label}"
    if missing or far:
        what = [f"{s}: no candles" for s in missing] + [f"{s}: {lags[s]} bars behind" for s in far]
        return Result(
            "klines_freshness",
            FAIL,
            f"{'; '.join(what)} ({where}; FAIL beyond {fail_after} bars); check the market_data "
            "DAG or run `quantlab data ingest`",
            details,
        )
    if late:
        what = [f"{s}: {lags[s]} bars behind" for s in late]
        return Result(
            "klines_freshness",
            WARN,
            f"{'; '.join(what)} ({where}; more than validate.max_stale_bars={max_stale_bars})",
            details,
        )
    worst = max((lag for lag in lags.values() if lag is not None), default=0)
    return Result(
        "klines_freshness",
        OK,
        f"every symbol within {worst} bar(s) of the last close, {where}",
        details,
    )


def newest_candles(catalog: Catalog, config: Config) -> dict[str, datetime | None]:
    """The newest stored candle's open time per universe symbol (None: none stored)."""
    u = config.universe
    lf = catalog.scan(catalog.latest("klines")).filter(
        (pl.col("market") == u.market)
        & (pl.col("interval") == u.interval)
        & pl.col("symbol").is_in(list(u.symbols))
    )
    found = lf.group_by("symbol").agg(pl.col("open_time").max()).collect()
    stored = dict(zip(found["symbol"].to_list(), found["open_time"].to_list(), strict=True))
    return {s: stored.get(s) for s in u.symbols}


def check_freshness(catalog: Catalog, config: Config, now: datetime) -> Result:
    from quantlab.vocab import INTERVAL_MS

    if not catalog.exists("klines"):
        return Result("klines_freshness", FAIL, "no klines in the catalog; run `make run`")
    ref, label = reference_time(config.universe.end, now)
    return judge_freshness(
        newest_candles(catalog, config),
        INTERVAL_MS[config.universe.interval],
        ref,
        label,
        config.validate_.max_stale_bars,
    )


def check_gate(catalog: Catalog) -> Result:
    """The quality gate's newest verdict on klines, and whether it judged the newest klines."""
    from quantlab.catalog.extras import GateVerdict

    if not catalog.exists("klines_checks"):
        return Result("gate", FAIL, "the klines were never validated; run `quantlab run validate`")
    checks = catalog.latest("klines_checks")
    lineage = catalog.lineage(checks)
    verdict = GateVerdict.of(lineage)
    judged = lineage.inputs.get("klines")
    newest = catalog.latest("klines").version if catalog.exists("klines") else None
    details = {
        "checks": str(checks),
        "klines_judged": judged,
        "klines_newest": newest,
        "failed_checks": verdict.failed_checks,
    }
    if not verdict.passed:
        return Result(
            "gate",
            FAIL,
            f"{checks} failed on klines@v{judged}: {', '.join(verdict.failed_checks) or 'see it'}; "
            "fix the data and ingest again (`quantlab data validate` shows the checks)",
            details,
        )
    if judged is not None and newest is not None and judged != newest:
        return Result(
            "gate",
            WARN,
            f"{checks} passed klines@v{judged}, but klines@v{newest} is not validated yet; "
            "run `quantlab run validate`",
            details,
        )
    return Result("gate", OK, f"{checks} passed klines@v{judged}", details)
