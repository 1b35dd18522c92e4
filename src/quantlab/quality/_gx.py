"""Run checks through Great Expectations on a polars frame, converting to pandas at the edge.

GX has no polars data source and its pandas engine copies the frame for every
expectation, so validating every row of a year of 1m klines would cost several
times the ingest itself. Each check therefore also names, as a polars
expression, the rows it could possibly flag (`suspect`). GX then validates
the whole suite on the rows some check suspects, and the counts GX reports
(elements, missing, percentages) are restored to the full frame's. Row-level
verdicts and examples are GX's own; a check whose outcome depends on rows it
does not suspect must not be screened (`screen=False` validates every row,
and the tests compare both ways on every planted defect).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import polars as pl

from quantlab.config import ValidateConfig
from quantlab.quality.checks import CheckReport, CheckResult, Severity, SeverityChange

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.expectations import Expectation

MAX_EXAMPLES = 5
# SUMMARY: counts plus the first offending rows' indexes, which become the examples.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
_GX_SEVERITY = {"error": "critical", "warning": "warning", "info": "info"}
HELPER = "_check_"  # prefix of the columns a validator computes next to the data for GX
SCREEN = "_screen_"  # prefix of columns that only help pick the rows; GX does not see them
_ROW = "_quantlab_row"
# A validator may reorder rows while preparing them; this column then holds each row's
# position in the caller's frame, which GX's row indexes and the examples use.
ROW_ID = f"{SCREEN}row"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Check:
    """One expectation, its report name and severity, and how to find and show its rows.

    `suspect` is True on every row the expectation might count as unexpected (None: the
    check reads the table's columns, not its rows). `show` names the columns an example
    shows. `describe`, for aggregate checks, turns the screened rows (every row whose
    `suspect` holds, see `screen_rows`) and GX's result into (unexpected count, examples).
    """

    name: str
    severity: Severity
    expectation: Expectation
    suspect: pl.Expr | None = None
    show: tuple[str, ...] = ()
    describe: Callable[[pl.DataFrame, dict], tuple[int, list[dict]]] | None = None
    text: str = ""

    @property
    def description(self) -> str:
        """How Data Docs name the expectation: the check, its severity and what it asks.

        Data Docs put it into the HTML as it is, so `<` and `>` are written as ≤ ≥ ‹ ›.
        """
        text = f"{self.name} ({self.severity}): {self.text}" if self.text else self.name
        for plain, shown in (("<=", "≤"), (">=", "≥"), ("<", "‹"), (">", "›"), ("&", "and")):
            text = text.replace(plain, shown)
        return text


def configure_severity(
    checks: Sequence[Check], severity: Mapping[str, str]
) -> tuple[list[Check], tuple[SeverityChange, ...]]:
    """`checks` with the severities the config sets (`validate.severity`; "off" drops a check),
    and what changed from the defaults, in the checks' order."""
    out, changes = [], []
    for c in checks:
        wanted = severity.get(c.name, c.severity)
        if wanted != c.severity:
            changes.append(SeverityChange(c.name, c.severity, wanted))  # type: ignore[arg-type]
        if wanted != "off":
            out.append(replace(c, severity=wanted))
    return out, tuple(changes)


# GX's package has import cycles: two threads importing it at once (the gate opens its project
# in one while a validator builds expectations in another) can leave one with a partially
# initialised module. Every first import goes through `gx()`, under this lock.
_IMPORT = threading.Lock()


def gx() -> Any:
    """Great Expectations, imported lazily (it is slow to import) with its analytics off; call
    it before importing any GX submodule, so the package is whole before a thread uses it."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    with _IMPORT:
        import great_expectations

    return great_expectations


@cache
def _context() -> Any:
    """One ephemeral GX context per process; it holds no data between validations."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx().get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas("quantlab")
    return context


@cache
def _batch_definition(dataset: str) -> BatchDefinition:
    source = _context().data_sources.get("quantlab")
    return source.add_dataframe_asset(dataset).add_batch_definition_whole_dataframe("whole")


_LOCK = threading.Lock()

# Completes a GX result in place (the full frame's counts) before anyone stores or shows it.
Finish = Callable[["ExpectationSuiteValidationResult"], None]
# Validates `frame` against the suite once, calls `finish` on the result and returns it.
Runner = Callable[["ExpectationSuite", "pd.DataFrame", Finish], "ExpectationSuiteValidationResult"]


def validate_in_memory(
    suite: ExpectationSuite, frame: pd.DataFrame, finish: Finish
) -> ExpectationSuiteValidationResult:
    """The default runner: an ephemeral context, nothing written (see `_project` for the gate's)."""
    with _LOCK:
        batch = _batch_definition(suite.name).get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(suite, result_format=RESULT_FORMAT)
    finish(outcome)
    return outcome


@dataclass(frozen=True)
class Screened:
    """One prepared frame's share of a validation: the rows some check suspects (every row,
    unscreened) with their row ids in `_ROW`, and what GX's counts need of all its rows."""

    rows: pl.DataFrame
    height: int
    missing: dict[str, int]  # per check: the rows its expectation leaves out as missing


def screen_rows(
    data: pl.DataFrame, checks: Sequence[Check], *, screen: bool = True, first_id: int = 0
) -> Screened:
    """Keep the rows of `data` that GX must see. A row's id is its `ROW_ID` (its position in
    the frame the validator was given) or its position, plus `first_id`."""
    ids = pl.col(ROW_ID) if ROW_ID in data.columns else pl.int_range(pl.len(), dtype=pl.Int64)
    rows = data.with_columns((ids.cast(pl.Int64) + first_id).alias(_ROW))
    suspects = [c.suspect.fill_null(True) for c in checks if c.suspect is not None]
    if screen:
        rows = rows.filter(pl.any_horizontal(suspects) if suspects else pl.lit(False))
    missing_of = {
        c.name: _missing_rows(data, domain).sum()
        for c in checks
        if (domain := _domain(c.expectation))
    }
    missing = data.select(**missing_of).row(0, named=True) if missing_of and data.height else {}
    return Screened(rows, data.height, {k: int(v or 0) for k, v in missing.items()})


def run_checks(
    dataset: str,
    data: pl.DataFrame,
    checks: Sequence[Check],
    *,
    times: Collection[str] = (),
    screen: bool = True,
    runner: Runner | None = None,
    severity: Mapping[str, str] | None = None,
) -> CheckReport:
    """Validate `data` (rows in input order) against `checks` and report per check.

    `times` are epoch-ms columns that examples show as ISO-8601 UTC. `runner` validates
    (default `validate_in_memory`; the gate passes a Checkpoint's, see `quality._project`).
    `severity` overrides the checks' own (see `configure_severity`).
    """
    checks, changes = configure_severity(checks, severity or {})
    parts = [screen_rows(data, checks, screen=screen)]
    return run_screened(
        dataset, parts, checks, times=times, screen=screen, runner=runner, changes=changes
    )


def run_screened(
    dataset: str,
    parts: Sequence[Screened],
    checks: Sequence[Check],
    *,
    times: Collection[str] = (),
    screen: bool = True,
    runner: Runner | None = None,
    changes: tuple[SeverityChange, ...] = (),
) -> CheckReport:
    """Validate the screened rows of one or more frames at once (one GX validation, one
    result) and report per check, with counts over all their rows (see `run_checks`).
    `changes` are the config's severity changes behind `checks`, for the report."""
    rows = pl.concat([p.rows for p in parts], how="vertical_relaxed")
    n = sum(p.height for p in parts)
    missing = {c.name: sum(p.missing.get(c.name, 0) for p in parts) for c in checks}
    frame = rows.select(pl.exclude(_ROW, f"^{SCREEN}.*$")).to_pandas()
    frame.index = rows[_ROW].to_numpy()

    for c in checks:
        c.expectation.description = c.description
        c.expectation.severity = _GX_SEVERITY[c.severity]
    suite = gx().ExpectationSuite(name=dataset, expectations=[c.expectation for c in checks])

    severity = {c.name: c.severity for c in checks}

    def finish(outcome: ExpectationSuiteValidationResult) -> None:
        outcome.meta["quantlab"] = {"rows": n, "rows_given_to_gx": rows.height}
        if screen:
            _restore_counts(outcome.results, n, missing)
        # GX calls a validation failed when any expectation fails, warnings and infos too;
        # the gate's verdict (and so the Data Docs') counts only the errors.
        outcome.success = all(
            r.success
            for r in outcome.results
            if severity[r.expectation_config.meta["check"]] == "error"
        )

    outcome = (runner or validate_in_memory)(suite, frame, finish)
    by_name = {r.expectation_config.meta["check"]: r for r in outcome.results}
    position = _positions(rows, outcome.results)
    results = []
    for chk in checks:
        r = by_name[chk.name]
        _raise_if_gx_failed(chk.name, r)
        res = r.result if r.result is not None else {}
        if chk.describe is not None:
            count, examples = chk.describe(rows, res)
        else:
            count = int(res.get("unexpected_count") or 0)
            index = res.get("partial_unexpected_index_list") or []
            examples = _row_examples(rows, index, position, chk.show, times)
        results.append(CheckResult(chk.name, chk.severity, bool(r.success), count, examples))
    passed = all(r.success for r in results if r.severity == "error")
    return CheckReport(
        passed=passed,
        checks=results,
        row_count=n,
        dataset=dataset,
        changes=changes,
        gx_result=outcome,
        gx_suite=suite,
    )


def expectation(check: str, cls: str, **kwargs: Any) -> Expectation:
    """A GX expectation of class `cls`, tagged with the quantlab check name it implements."""
    exp = getattr(gx().expectations, cls)(**kwargs)
    exp.meta = {"check": check}
    return exp


def columns_check(expected: Sequence[str]) -> Check:
    """The frame has exactly the `expected` columns; examples list the missing and the extra."""

    def describe(data: pl.DataFrame, res: dict) -> tuple[int, list[dict]]:
        mismatched = (res.get("details") or {}).get("mismatched") or {}
        examples = [{k: sorted(v)} for k, v in mismatched.items() if v]
        return sum(len(v) for v in mismatched.values()), examples

    exp = expectation(
        "columns_match", "ExpectTableColumnsToMatchSet", column_set=list(expected), exact_match=True
    )
    text = "the columns are exactly " + ", ".join(c for c in expected if not c.startswith(HELPER))
    return Check("columns_match", "error", exp, describe=describe, text=text)


def check_dtypes(df: pl.DataFrame, schema: dict[str, pl.DataType], dataset: str, fix: str) -> None:
    """Raise SchemaError for a column whose type is not the schema's (any UTC Datetime unit passes)."""
    from quantlab.errors import SchemaError

    for name, want in schema.items():
        if name not in df.columns:
            continue
        got = df.schema[name]
        ok = (
            isinstance(got, pl.Datetime) and got.time_zone == "UTC"
            if isinstance(want, pl.Datetime)
            else got == want
        )
        if not ok:
            raise SchemaError(f"{dataset} column {name!r} is {got}, expected {want}; {fix}")


def unique_key_check(
    key: Sequence[str], text: str, show: Sequence[str], duplicated: pl.Expr | None = None
) -> Check:
    """One row per key; `duplicated` may be a precomputed flag column, else the key is hashed here."""
    dupes = duplicated if duplicated is not None else pl.struct(list(key)).is_duplicated()
    return Check(
        "unique_key",
        "error",
        expectation("unique_key", "ExpectCompoundColumnsToBeUnique", column_list=list(key)),
        suspect=dupes | pl.any_horizontal(pl.col(k).is_null() for k in key),
        show=tuple(show),
        text=text,
    )


def not_null_check(column: str, show: tuple[str, ...] = ()) -> Check:
    name = f"not_null.{column}"
    return Check(
        name,
        "error",
        expectation(name, "ExpectColumnValuesToNotBeNull", column=column),
        suspect=pl.col(column).is_null(),
        show=(*show, column),
        text=f"{column} is never missing",
    )


def between_check(
    name: str,
    severity: Severity,
    column: str,
    min_value: float | None = None,
    max_value: float | None = None,
    show: tuple[str, ...] = (),
) -> Check:
    """`column` lies in [min_value, max_value] wherever it is not null."""
    col = pl.col(column)
    too_low = col < min_value if min_value is not None else pl.lit(False)
    too_high = col > max_value if max_value is not None else pl.lit(False)
    return Check(
        name,
        severity,
        expectation(
            name,
            "ExpectColumnValuesToBeBetween",
            column=column,
            min_value=min_value,
            max_value=max_value,
        ),
        suspect=too_low | too_high,
        show=(*show, column),
        text=f"{column} is {_bounds(min_value, max_value)} where present",
    )


def _bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {lo:g} and {hi:g}"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


def true_check(
    name: str, severity: Severity, helper: str, show: tuple[str, ...] = (), text: str = ""
) -> Check:
    """The helper column `_check_<helper>` is True wherever it is not null (null: not applicable)."""
    col = f"{HELPER}{helper}"
    return Check(
        name,
        severity,
        expectation(name, "ExpectColumnValuesToBeInSet", column=col, value_set=[True]),
        suspect=pl.col(col).not_().fill_null(False),
        show=show,
        text=f"{text} (column {col})" if text else f"{col} is true",
    )


def _raise_if_gx_failed(name: str, r: Any) -> None:
    info = r.exception_info or {}
    errors = [info] if "raised_exception" in info else list(info.values())
    raised = [e for e in errors if isinstance(e, dict) and e.get("raised_exception")]
    if raised:
        raise RuntimeError(
            f"Great Expectations could not evaluate check {name!r}: "
            f"{raised[0].get('exception_message')}; this is a bug in quantlab.quality"
        )


def _missing(data: pl.DataFrame, column: str) -> pl.Expr:
    """What pandas (and so GX) counts as missing: null, and NaN in a float column."""
    expr = pl.col(column).is_null()
    if data.schema[column].is_float():
        expr = expr | pl.col(column).is_nan()
    return expr


def _domain(exp: Expectation) -> dict[str, Any]:
    """The columns an expectation reads row by row and how it skips missing values (empty
    for a table-level one)."""
    names = ("column", "column_list", "column_A", "column_B", "ignore_row_if")
    domain = {k: getattr(exp, k) for k in names if getattr(exp, k, None) is not None}
    return domain if set(domain) - {"ignore_row_if"} else {}


def _missing_rows(data: pl.DataFrame, domain: dict) -> pl.Expr:
    """The rows GX leaves out of an expectation's domain as missing (see its `ignore_row_if`)."""
    if "column" in domain:
        return _missing(data, domain["column"])
    if "column_list" in domain:
        cols, rule = domain["column_list"], domain.get("ignore_row_if", "all_values_are_missing")
    else:
        cols = [domain["column_A"], domain["column_B"]]
        rule = domain.get("ignore_row_if", "both_values_are_missing")
    missing = [_missing(data, c) for c in cols]
    if rule in ("all_values_are_missing", "both_values_are_missing"):
        return pl.all_horizontal(missing)
    if rule in ("any_value_is_missing", "either_value_is_missing"):
        return pl.any_horizontal(missing)
    return pl.lit(False)


def _restore_counts(results: list[Any], n: int, missing: dict[str, int]) -> None:
    """Turn GX's counts over the screened rows into the counts over all `n` rows, of which
    `missing[check]` are missing in that check's domain.

    Unexpected rows are all among the screened ones, so only the totals change: the
    element count, the missing count, and the percentages derived from them.
    """
    for r in results:
        res = r.result or {}
        if "element_count" not in res:
            continue
        res["element_count"] = n
        unexpected = res.get("unexpected_count")
        if "missing_count" in res:
            m = missing[r.expectation_config.meta["check"]]
            res["missing_count"] = m
            res["missing_percent"] = m / n * 100 if n else None
            if unexpected is not None:
                pct = unexpected / (n - m) * 100 if n - m else None
                res["unexpected_percent"] = res["unexpected_percent_nonmissing"] = pct
                res["unexpected_percent_total"] = unexpected / n * 100 if n else None
        elif unexpected is not None:
            res["unexpected_percent"] = unexpected / n * 100 if n else None


def _positions(rows: pl.DataFrame, results: list[Any]) -> dict[int, int]:
    """Where in `rows` each row GX names as unexpected (by its id) is."""
    ids = {
        int(i)
        for r in results
        for i in ((r.result or {}).get("partial_unexpected_index_list") or [])[:MAX_EXAMPLES]
    }
    found = rows.with_row_index("_at").filter(pl.col(_ROW).is_in(list(ids)))
    return dict(found.select(_ROW, "_at").iter_rows())


def _row_examples(
    rows: pl.DataFrame,
    index: list,
    position: dict[int, int],
    show: tuple[str, ...],
    times: Collection[str],
) -> list[dict]:
    """The offending rows, as JSON-ready dicts: row number and the columns in `show`.

    `index` holds GX's row indexes (row ids, see `screen_rows`); `position` says where in
    `rows` each one is.
    """
    out = []
    for i in index[:MAX_EXAMPLES]:
        i = int(i)
        at = position[i]
        ex: dict[str, Any] = {"row": i}
        for col in show:
            value = rows[col][at]
            ex[col.removeprefix(HELPER)] = iso_ms(value) if col in times else json_value(value)
        out.append(ex)
    return out


def year_bounds_ms(cfg: ValidateConfig) -> tuple[int, int]:
    """Epoch ms of the first and the last millisecond of the plausible years."""
    epoch = date(1970, 1, 1)
    lo = (date(cfg.min_year, 1, 1) - epoch).days * DAY_MS
    hi = ((date(cfg.max_year, 12, 31) - epoch).days + 1) * DAY_MS - 1
    return lo, hi


def iso_ms(ms: int | None) -> str | int | None:
    """Epoch ms as ISO-8601 UTC text; a value outside datetime's range stays a number."""
    if ms is None:
        return None
    try:
        t = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return int(ms)
    return t.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")


def json_value(value: Any) -> Any:
    """A value JSON can hold: NaN and infinities become None."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value
