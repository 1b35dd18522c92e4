"""Data-quality checks on a klines frame, run through Great Expectations.

A pure core: a polars frame in the klines schema goes in, a `ValidationReport`
comes out; no file I/O and no clock. Rules GX has no built-in for (OHLC
consistency, the interval grid, per-series order, calendar gaps, return
outliers) are computed as columns in polars first and then checked by a GX
expectation, so every check is evaluated and reported by GX the same way.

A derived rule is only evaluated on rows whose inputs passed the basic checks
(not null, in range, aligned). One defect then fails one check: a µs value in
`open_time` fails `open_time_in_range`, not also the order and close_time rules.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from quantlab.config import ValidateConfig
from quantlab.errors import ConfigError, QualityError, SchemaError
from quantlab.schema import INTERVAL_MS, KLINES_KEY, KLINES_SCHEMA

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.expectations import Expectation

Severity = Literal["error", "warning"]

SERIES_KEY = ("market", "symbol", "interval")
PRICES = ("open", "high", "low", "close")
AMOUNTS = ("volume", "quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume")
MAX_EXAMPLES = 5
_TIMES = ("open_time", "close_time")
_SHOWN_AS_TIME = (*_TIMES, "_check_prev_open_time")
_DERIVED = "_check_"  # prefix of the helper columns handed to GX next to the data
_DAY_MS = 86_400_000
_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check; `examples` holds up to five offending rows or values."""

    check: str
    severity: Severity
    success: bool
    unexpected_count: int
    examples: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationReport:
    """All checks run on one klines frame; `passed` is False if any error-severity check failed."""

    passed: bool
    checks: list[CheckResult]
    row_count: int

    def failed(self) -> list[CheckResult]:
        """Every check that did not succeed, errors first, then warnings."""
        bad = [c for c in self.checks if not c.success]
        return sorted(bad, key=lambda c: c.severity != "error")

    def summary(self) -> str:
        """Readable text for logs and the CLI: the verdict, then each failed check with examples."""
        failed = self.failed()
        errors = sum(c.severity == "error" for c in failed)
        verdict = "passed" if self.passed else "FAILED"
        lines = [
            f"klines validation {verdict}: {len(self.checks)} checks on {self.row_count:,} rows, "
            f"{errors} error(s), {len(failed) - errors} warning(s)"
        ]
        for c in failed:
            lines.append(f"  {c.severity.upper():<7} {c.check}: {c.unexpected_count:,} unexpected")
            lines.extend(f"            e.g. {json.dumps(e, sort_keys=False)}" for e in c.examples)
        return "\n".join(lines)

    def to_frame(self) -> pl.DataFrame:
        """One row per check, with the examples as a JSON string (for storing in the catalog)."""
        return pl.DataFrame(
            {
                "check": [c.check for c in self.checks],
                "severity": [c.severity for c in self.checks],
                "success": [c.success for c in self.checks],
                "unexpected_count": [c.unexpected_count for c in self.checks],
                "examples": [json.dumps(c.examples) for c in self.checks],
            },
            schema={
                "check": pl.String(),
                "severity": pl.String(),
                "success": pl.Boolean(),
                "unexpected_count": pl.Int64(),
                "examples": pl.String(),
            },
        )

    def raise_for_errors(self) -> None:
        """Raise QualityError, with the summary as its message, if an error check failed."""
        if not self.passed:
            raise QualityError(
                "klines failed validation; fix the data or its source and ingest again.\n"
                + self.summary(),
                failed_checks=[c.check for c in self.failed() if c.severity == "error"],
            )


@dataclass(frozen=True)
class _Check:
    """One expectation, its report name and severity, and the columns its examples show."""

    name: str
    severity: Severity
    expectation: Expectation
    show: tuple[str, ...] = ()


def validate_klines(
    df: pl.DataFrame, interval: str, cfg: ValidateConfig | None = None
) -> ValidationReport:
    """Run every klines check on `df` (one or many series of `interval`) and report the result.

    Raises ConfigError for an unknown interval and SchemaError if a column has the
    wrong type (call `quantlab.schema.conform_klines` first). Missing or extra
    columns are reported by the `columns_match` check instead.
    """
    cfg = cfg or ValidateConfig()
    if interval not in INTERVAL_MS:
        raise ConfigError(
            f"unknown kline interval {interval!r}; use one of {', '.join(INTERVAL_MS)}"
        )
    step = INTERVAL_MS[interval]
    _check_dtypes(df)
    if all(c in df.columns for c in KLINES_SCHEMA):
        data = _prepare(df, step, cfg)
        checks = _build_checks(interval, cfg, data.columns)
    else:
        # Without all columns the row rules cannot be computed: report the schema alone.
        data = df
        checks = [_columns_check([])]
    results = _run_gx(data.to_pandas(), checks)
    report = [_to_result(chk, results[chk.name], data, step) for chk in checks]
    passed = all(r.success for r in report if r.severity == "error")
    return ValidationReport(passed=passed, checks=report, row_count=df.height)


def _check_dtypes(df: pl.DataFrame) -> None:
    for name, want in KLINES_SCHEMA.items():
        if name not in df.columns:
            continue
        got = df.schema[name]
        ok = (
            isinstance(got, pl.Datetime) and got.time_zone == "UTC"
            if isinstance(want, pl.Datetime)
            else got == want
        )
        if not ok:
            raise SchemaError(
                f"klines column {name!r} is {got}, expected {want}; "
                "cast the frame with quantlab.schema.conform_klines before validating it"
            )


def _year_bounds_ms(cfg: ValidateConfig) -> tuple[int, int]:
    epoch = date(1970, 1, 1)
    lo = (date(cfg.min_year, 1, 1) - epoch).days * _DAY_MS
    hi = ((date(cfg.max_year, 12, 31) - epoch).days + 1) * _DAY_MS - 1
    return lo, hi


def _prepare(df: pl.DataFrame, step: int, cfg: ValidateConfig) -> pl.DataFrame:
    """The frame GX sees: times as epoch ms, plus one helper column per derived rule.

    Rows keep their input order, so GX's row indexes point back into `df`.
    """
    lo, hi = _year_bounds_ms(cfg)
    ot, ct = pl.col("open_time"), pl.col("close_time")
    keys = list(SERIES_KEY)
    d = _DERIVED

    # Extra columns stay, so that `columns_match` sees and reports them.
    base = df.with_columns(ot.dt.epoch("ms"), ct.dt.epoch("ms"))

    ot_ok = ot.is_not_null() & ot.is_between(lo, hi)
    ct_ok = ct.is_not_null() & ct.is_between(lo, hi)
    aligned = ot_ok & (ot % step == 0)
    times_ok = aligned & ct_ok
    prices_ok = pl.all_horizontal(
        [pl.col(c).is_not_null() & (pl.col(c) >= cfg.min_price) for c in PRICES]
    )
    volumes = ("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")
    volumes_ok = pl.all_horizontal([pl.col(c).is_not_null() & (pl.col(c) >= 0) for c in volumes])
    # Order is checked as non-decreasing against the previous usable open_time of the series;
    # strictness is unique_key's job, so an adjacent duplicate fails one check, not two.
    prev_ot = pl.when(ot_ok).then(ot).forward_fill().shift(1).over(keys)

    out = base.with_columns(
        pl.when(ot_ok).then(ot % step == 0).alias(f"{d}aligned"),
        pl.when(times_ok).then((ct > ot) & (ct <= ot + step - 1)).alias(f"{d}close_within_bar"),
        pl.when(times_ok).then(ct == ot + step - 1).alias(f"{d}close_exact"),
        pl.when(ot_ok & prev_ot.is_not_null()).then(ot >= prev_ot).alias(f"{d}increasing"),
        prev_ot.alias(f"{d}prev_open_time"),
        pl.when(prices_ok)
        .then(
            (pl.col("high") >= pl.max_horizontal("open", "close", "low"))
            & (pl.col("low") <= pl.min_horizontal("open", "close"))
        )
        .alias(f"{d}ohlc"),
        pl.when(volumes_ok)
        .then(
            (pl.col("taker_buy_base_volume") <= pl.col("volume"))
            & (pl.col("taker_buy_quote_volume") <= pl.col("quote_volume"))
        )
        .alias(f"{d}taker"),
    )
    return _add_calendar_columns(out, step, aligned, cfg)


def _add_calendar_columns(
    out: pl.DataFrame, step: int, aligned: pl.Expr, cfg: ValidateConfig
) -> pl.DataFrame:
    """Gaps and one-bar return outliers, computed in time order per series, then put back in row order."""
    d = _DERIVED
    keys = list(SERIES_KEY)
    ot = pl.col("open_time")
    close_ok = pl.col("close").is_not_null() & (pl.col("close") > 0)
    usable_ot = pl.when(aligned).then(ot)
    usable_close = pl.when(aligned & close_ok).then(pl.col("close"))
    prev_ot = usable_ot.forward_fill().shift(1).over(keys)
    prev_close = usable_close.forward_fill().shift(1).over(keys)
    ret = pl.col(f"{d}log_return")
    dev = (ret - ret.median().over(keys)).abs()
    mad = dev.median().over(keys)

    return (
        out.with_row_index(f"{d}row")
        .sort([*keys, "open_time", f"{d}row"], nulls_last=True)
        .with_columns(
            pl.when(aligned & prev_ot.is_not_null())
            .then(((ot - prev_ot) // step - 1).clip(lower_bound=0))
            .alias(f"{d}missing_before"),
            pl.when(aligned & close_ok)
            .then((pl.col("close") / prev_close).log())
            .alias(f"{d}log_return"),
        )
        .with_columns(
            pl.when(mad > 0).then(dev / (_MAD_TO_SIGMA * mad)).alias(f"{d}return_z"),
        )
        .with_columns(
            (pl.col(f"{d}return_z") <= cfg.max_return_sigmas).alias(f"{d}return_ok"),
        )
        .sort(f"{d}row")
        .drop(f"{d}row")
    )


def _build_checks(interval: str, cfg: ValidateConfig, columns: list[str]) -> list[_Check]:
    gxe = _gx().expectations
    lo, hi = _year_bounds_ms(cfg)
    d = _DERIVED
    at = ("symbol", "open_time")

    def is_true(col: str) -> Expectation:
        return gxe.ExpectColumnValuesToBeInSet(column=f"{d}{col}", value_set=[True])

    checks = [
        _columns_check([c for c in columns if c.startswith(d)]),
        *[
            _Check(f"not_null.{c}", "error", gxe.ExpectColumnValuesToNotBeNull(column=c), (c,))
            for c in KLINES_SCHEMA
        ],
        _Check(
            "unique_key",
            "error",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=list(KLINES_KEY)),
            KLINES_KEY,
        ),
        _Check(
            "interval_matches",
            "error",
            gxe.ExpectColumnValuesToBeInSet(column="interval", value_set=[interval]),
            ("interval",),
        ),
        *[
            _Check(
                f"price_positive.{c}",
                "error",
                gxe.ExpectColumnValuesToBeBetween(column=c, min_value=cfg.min_price),
                (c,),
            )
            for c in PRICES
        ],
        *[
            _Check(
                f"non_negative.{c}",
                "error",
                gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0),
                (c,),
            )
            for c in AMOUNTS
        ],
        *[
            _Check(
                f"{c}_in_range",
                "error",
                gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi),
                (c,),
            )
            for c in _TIMES
        ],
        _Check("open_time_aligned", "error", is_true("aligned")),
        _Check("open_time_increasing", "error", is_true("increasing"), (f"{d}prev_open_time",)),
        _Check("close_time_within_bar", "error", is_true("close_within_bar"), ("close_time",)),
        _Check("ohlc_consistent", "error", is_true("ohlc"), PRICES),
        _Check(
            "taker_volume_within_total",
            "error",
            is_true("taker"),
            ("volume", "taker_buy_base_volume", "quote_volume", "taker_buy_quote_volume"),
        ),
        _Check("close_time_exact", "warning", is_true("close_exact"), ("close_time",)),
        _Check(
            "zero_volume",
            "warning",
            gxe.ExpectColumnValuesToNotBeInSet(column="volume", value_set=[0.0]),
            ("volume", "trades"),
        ),
        _Check(
            "return_outlier",
            "warning",
            is_true("return_ok"),
            ("close", f"{d}log_return", f"{d}return_z"),
        ),
        _Check(
            "calendar_gaps",
            "warning",
            gxe.ExpectColumnSumToBeBetween(column=f"{d}missing_before", max_value=0),
        ),
    ]
    for c in checks:
        c.expectation.meta = {"check": c.name}
    return [
        _Check(c.name, c.severity, c.expectation, (*at, *[s for s in c.show if s not in at]))
        for c in checks
    ]


def _columns_check(helpers: list[str]) -> _Check:
    expectation = _gx().expectations.ExpectTableColumnsToMatchSet(
        column_set=[*KLINES_SCHEMA, *helpers], exact_match=True
    )
    expectation.meta = {"check": "columns_match"}
    return _Check("columns_match", "error", expectation)


def _gx() -> Any:
    """Import Great Expectations lazily (it is slow to import) with its analytics off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


@cache
def _batch_definition() -> BatchDefinition:
    """One ephemeral GX context per process, reused by every call; it holds no data between calls."""
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("quantlab_quality")
    asset = source.add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


_GX_LOCK = threading.Lock()


def _run_gx(frame: Any, checks: list[_Check]) -> dict[str, Any]:
    """Validate a pandas frame against the checks; return each GX result by check name."""
    fmt = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
    with _GX_LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        # Handed over whole, not via add_expectation, so the suite never looks for a store.
        suite = _gx().ExpectationSuite(
            name="quantlab.quality.klines", expectations=[c.expectation for c in checks]
        )
        outcome = batch.validate(suite, result_format=fmt)
    results = {r.expectation_config.meta["check"]: r for r in outcome.results}
    for name, r in results.items():
        info = r.exception_info or {}
        errors = [info] if "raised_exception" in info else list(info.values())
        raised = [e for e in errors if isinstance(e, dict) and e.get("raised_exception")]
        if raised:
            raise RuntimeError(
                f"Great Expectations could not evaluate check {name!r}: "
                f"{raised[0].get('exception_message')}; this is a bug in quantlab.quality"
            )
    return results


def _to_result(chk: _Check, r: Any, data: pl.DataFrame, step: int) -> CheckResult:
    res = r.result or {}
    if chk.name == "columns_match":
        mismatched = (res.get("details") or {}).get("mismatched") or {}
        examples = [{k: sorted(v)} for k, v in mismatched.items() if v]
        count = sum(len(v) for v in mismatched.values())
    elif chk.name == "calendar_gaps":
        count = int(res.get("observed_value") or 0)
        examples = _gap_examples(data, step) if count else []
    else:
        count = int(res.get("unexpected_count") or 0)
        rows = res.get("partial_unexpected_index_list") or []
        examples = _row_examples(data, rows, chk.show)
    return CheckResult(chk.name, chk.severity, bool(r.success), count, examples)


def _row_examples(data: pl.DataFrame, rows: list[int], show: tuple[str, ...]) -> list[dict]:
    """The offending rows, as JSON-ready dicts: row number, series, time and the checked values."""
    out = []
    for i in rows[:MAX_EXAMPLES]:
        i = int(i)
        ex: dict[str, Any] = {"row": i}
        for col in show:
            value = data[col][i]
            key = col.removeprefix(_DERIVED)
            ex[key] = _iso_ms(value) if col in _SHOWN_AS_TIME else _json_value(value)
        out.append(ex)
    return out


def _gap_examples(data: pl.DataFrame, step: int) -> list[dict]:
    """The first gaps per series in time order: where each starts and how many bars it lacks."""
    col = f"{_DERIVED}missing_before"
    gaps = data.filter(pl.col(col) > 0).sort([*SERIES_KEY, "open_time"]).head(MAX_EXAMPLES)
    return [
        {
            "symbol": g["symbol"],
            "first_missing": _iso_ms(g["open_time"] - g[col] * step),
            "missing": int(g[col]),
            "next_open_time": _iso_ms(g["open_time"]),
        }
        for g in gaps.iter_rows(named=True)
    ]


def _iso_ms(ms: int | None) -> str | int | None:
    """Epoch ms as ISO-8601 UTC text; a value outside datetime's range stays a number."""
    if ms is None:
        return None
    try:
        t = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return int(ms)
    return t.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value
