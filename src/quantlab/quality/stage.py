"""`run` for the quality stage: the gate between ingest and everything downstream.

Input dataset: one version of `klines` or `mark_klines` (every market and interval it holds),
`funding_rates` or `exchange_info`; for klines also the latest `klines_gaps`, the
candles the exchange confirmed missing, which are known gaps and not errors. Output:
`<name>_checks`, one row per check (check, severity, success, unexpected_count,
examples) for that version, with the verdict in its lineage (`passed`,
`failed_checks`, counts, the first failing rows, the Data Docs page). Downstream
stages read data only through a passed checks version (see `quality.gate`).
Each validation runs once, through the dataset's GX Checkpoint in `<data>/gx`, whose
action adds the result to the Data Docs site under `<data>/data_docs/`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.errors import DatasetNotFound, QualityError
from quantlab.quality._gx import Runner
from quantlab.quality._project import Project, checkpoint_runner, open_project
from quantlab.quality._series import SeriesKey, key_tuple, lacking, read_ahead, series_of
from quantlab.quality.checks import CheckReport
from quantlab.quality.exchange_info import check_exchange_info
from quantlab.quality.funding_rates import check_funding_rates
from quantlab.quality.klines import AMOUNTS, check_klines
from quantlab.quality.outages import load_outages
from quantlab.schema import (
    EXCHANGE_INFO_KEY,
)
from quantlab.vocab import INTERVAL_MS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateResult:
    """What validating one version produced: the report, its record and the Data Docs page."""

    data: DatasetRef
    report: CheckReport
    checks: DatasetRef
    data_docs: Path | None


# The runner that validates one slice of a version, by its label (a klines interval, or "").
RunnerFor = Callable[[str], Runner | None]
# Datasets a validation reads beside the version it validates (their latest version),
# recorded as inputs of the checks version: ingest's record of the candles the exchange
# confirmed missing (`quantlab.ingest`, columns market, symbol, interval, gap_start, gap_end).
CONTEXT = {"klines": ("klines_gaps",)}


def _klines(
    ctx: RunContext,
    ref: DatasetRef,
    as_of: datetime,
    runner_for: RunnerFor,
    context: dict[str, DatasetRef],
) -> CheckReport:
    """Every interval the version holds, each validated on its own grid, one series at a time
    (the gate's memory stays that of one series, however many the version holds). Missing
    candles in `klines_gaps` (when `context` has it) are known, not errors. Series whose
    source lacks columns (`schema.SOURCE_OPTIONAL`, null on every row: freqtrade's OHLCV)
    are validated apart from the others, without the checks that read those columns."""
    return _candles(ctx, ref, as_of, runner_for, context)


def _mark_klines(
    ctx: RunContext,
    ref: DatasetRef,
    as_of: datetime,
    runner_for: RunnerFor,
    context: dict[str, DatasetRef],
) -> CheckReport:
    """Mark-price candles: the klines checks on their prices and times; they have no volume."""
    return _candles(ctx, ref, as_of, runner_for, context, mark=True)


def _candles(
    ctx: RunContext,
    ref: DatasetRef,
    as_of: datetime,
    runner_for: RunnerFor,
    context: dict[str, DatasetRef],
    *,
    mark: bool = False,
) -> CheckReport:
    cfg = ctx.config.validate_
    outages = load_outages(cfg.known_outages)
    gaps = context.get("klines_gaps")
    confirmed = (
        ctx.catalog.scan(gaps).select("market", "symbol", "interval", "gap_start", "gap_end")
        if gaps is not None
        else None
    )
    default = ctx.config.universe.interval
    series, read = series_of(ctx, ref, pad=mark)
    lacks = dict.fromkeys(map(key_tuple, series), AMOUNTS) if mark else lacking(ctx, ref)
    # A series whose interval is missing or unknown is checked on the configured grid,
    # where it fails not_null.interval or interval_matches.
    grids: dict[tuple[str, tuple[str, ...]], list[SeriesKey]] = {}
    for key in series:
        label = key["interval"]
        iv = label if label in INTERVAL_MS else default
        grids.setdefault((iv, lacks.get(key_tuple(key), ())), []).append(key)
    parts = [
        # A Delta version keeps no row order, so the order of rows is not a check here.
        (
            iv if not absent or mark else f"{iv} ({'+'.join(absent)} absent)",
            check_klines(
                read_ahead(read, keys),
                iv,
                cfg,
                outages=outages,
                confirmed_gaps=(
                    confirmed.filter(pl.col("interval") == iv).collect()
                    if confirmed is not None and not mark
                    else None
                ),
                as_of=as_of,
                row_order=False,
                runner=runner_for(iv if not absent or mark else f"{iv}-lacking"),
                absent=absent,
                dataset=ref.name,
            ),
        )
        for (iv, absent), keys in sorted((grids or {(default, ()): []}).items())
    ]
    return CheckReport.merge(parts, key="interval")


def _funding_rates(
    ctx: RunContext,
    ref: DatasetRef,
    as_of: datetime,
    runner_for: RunnerFor,
    context: dict[str, DatasetRef],
) -> CheckReport:
    return check_funding_rates(
        ctx.catalog.read(ref),
        ctx.config.validate_,
        as_of=as_of,
        row_order=False,
        runner=runner_for(""),
    )


def _exchange_info(
    ctx: RunContext,
    ref: DatasetRef,
    as_of: datetime,
    runner_for: RunnerFor,
    context: dict[str, DatasetRef],
) -> CheckReport:
    """The filters in force: the newest snapshot of each market and symbol in the version
    (ingest adds a snapshot only when a symbol's entry changes)."""
    snapshots = ctx.catalog.read(ref)
    current = (
        snapshots.sort("snapshot_time")
        .unique(EXCHANGE_INFO_KEY, keep="last", maintain_order=True)
        .drop("snapshot_time")
        if "snapshot_time" in snapshots.columns
        else snapshots
    )
    return check_exchange_info(current, ctx.config.validate_, runner=runner_for(""))


Validator = Callable[
    [RunContext, DatasetRef, datetime, RunnerFor, dict[str, DatasetRef]], CheckReport
]
VALIDATORS: dict[str, Validator] = {
    "klines": _klines,
    "mark_klines": _mark_klines,
    "funding_rates": _funding_rates,
    "exchange_info": _exchange_info,
}


def default_as_of(ctx: RunContext) -> datetime:
    """The end of the configured data interval: the reference time for staleness."""
    return datetime.combine(ctx.config.universe.end, time(0), tzinfo=UTC)


def check_version(
    ctx: RunContext, ref: DatasetRef, *, as_of: datetime | None = None, data_docs: bool = True
) -> GateResult:
    """Validate one version and record the result as `<name>_checks`; never raises QualityError.

    `as_of` is the reference time for staleness (default: `universe.end`); pass the run's
    data interval end from a scheduled DAG. With `data_docs`, each slice is validated by
    its GX Checkpoint, which stores the result and adds it to Data Docs (run name
    `<ref>-<interval>` for klines, `<ref>` otherwise); without, in memory only.
    """
    if ref.name not in VALIDATORS:
        raise DatasetNotFound(
            f"there is no validation suite for dataset {ref.name!r}; "
            f"validate one of {', '.join(VALIDATORS)}"
        )
    as_of = as_of or default_as_of(ctx)
    data = ctx.config.paths.data

    def open_and_load() -> Project:
        project = open_project(data, data / "data_docs")
        project.load(ref.name)
        return project

    with ThreadPoolExecutor(1) as pool:
        # Opening the GX project and reading the Checkpoint is Python work; reading and
        # preparing the data is mostly polars, which releases the GIL: do both at once.
        opening = pool.submit(open_and_load) if data_docs else None

        def runner_for(label: str) -> Runner | None:
            if opening is None:
                return None
            return checkpoint_runner(opening.result, f"{ref}-{label}" if label else str(ref))

        context = {
            name: ctx.catalog.latest(name)
            for name in CONTEXT.get(ref.name, ())
            if ctx.catalog.exists(name)
        }
        report = VALIDATORS[ref.name](ctx, ref, as_of, runner_for, context)
        docs = opening.result().index if opening is not None else None
    extra = {
        **report.record(),
        "as_of": as_of.isoformat(),
        "data_docs": str(docs) if docs else None,
    }
    checks = ctx.catalog.write(
        f"{ref.name}_checks",
        report.to_frame().with_columns(
            pl.lit(ref.name).alias("dataset"), pl.lit(ref.version).alias("version")
        ),
        stage="validate",
        inputs=[ref, *context.values()],
        config_hash=_config_hash(ctx, as_of),
        extra=extra,
    )
    return GateResult(ref, report, checks, docs)


def run(
    ctx: RunContext, ref: DatasetRef, *, as_of: datetime | None = None, data_docs: bool = True
) -> DatasetRef:
    """Validate one version, record and log the result; raise QualityError if it failed.

    Returns the `<name>_checks` version that downstream stages hand to `require_passed`.
    """
    result = check_version(ctx, ref, as_of=as_of, data_docs=data_docs)
    docs = f"\nData Docs: {result.data_docs}" if result.data_docs else ""
    text = f"{ref} -> {result.checks}\n{result.report.summary()}{docs}"
    if result.report.passed:
        log.info("%s", text)
        return result.checks
    errors = result.report.by_severity("error")
    raise QualityError(
        f"{ref} failed validation ({', '.join(f'{c.check}: {c.unexpected_count:,}' for c in errors)}"
        f"); recorded as {result.checks}. Fix the data at its source and ingest again; a retry "
        f"will not help.\n{text}",
        failed_checks=[c.check for c in errors],
    )


# The config the gate reads: its settings and the interval a series without one is checked
# on; the outage list counts by its content (below), not by where the file lies.
READS = ("validate", "universe.interval")
IGNORES = ("validate.known_outages",)


def _config_hash(ctx: RunContext, as_of: datetime) -> str:
    """The gate's settings, the outage list it used and the reference time, as one hash."""
    cfg = ctx.config.validate_
    outages = [o.model_dump(mode="json") for o in load_outages(cfg.known_outages)]
    payload = json.dumps(
        {
            "validate": slice_hash(ctx.config, READS, IGNORES),
            "outages": outages,
            "as_of": as_of.isoformat(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
