"""Stage `validate`: the data-quality gate between ingest and everything downstream.

Input dataset: `klines`. Output: `klines_checks`, one row per check for that
klines version, with `passed` recorded in its lineage. Downstream stages read
klines only through a passed `klines_checks` version (see `quality.gate`).
"""

from __future__ import annotations

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.config import config_hash
from quantlab.context import RunContext
from quantlab.errors import QualityError
from quantlab.quality.klines import ValidationReport, validate_klines
from quantlab.schema import conform_klines


def check_klines(klines: pl.DataFrame, interval: str, ctx: RunContext) -> ValidationReport:
    return validate_klines(conform_klines(klines), interval, ctx.config.validate_)


def run(ctx: RunContext, klines: DatasetRef) -> DatasetRef:
    """Validate one `klines` version; record the result; raise QualityError if it failed."""
    universe = ctx.config.universe
    data = (
        ctx.catalog.scan(klines)
        .filter(pl.col("market") == universe.market, pl.col("interval") == universe.interval)
        .collect()
    )
    report = check_klines(data, universe.interval, ctx)
    failed = [c.check for c in report.failed()]
    ref = ctx.catalog.write(
        "klines_checks",
        report.to_frame().with_columns(
            pl.lit(klines.name).alias("dataset"), pl.lit(klines.version).alias("version")
        ),
        stage="validate",
        inputs=[klines],
        config_hash=config_hash(ctx.config.validate_),
        extra={"passed": report.passed, "failed_checks": failed, "rows": report.row_count},
    )
    if not report.passed:
        raise QualityError(
            f"{klines} failed validation; the report is {ref}.\n{report.summary()}",
            failed_checks=failed,
        )
    return ref
