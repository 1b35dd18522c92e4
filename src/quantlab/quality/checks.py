"""What a validation found: one `CheckResult` per check, gathered in a `CheckReport`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import polars as pl

from quantlab.errors import QualityError

# error: fails the gate. warning: reported and recorded, passes. info: expected and explained
# (a gap inside a known exchange outage), reported for the record only.
Severity = Literal["error", "warning", "info"]
_RANK = {"error": 0, "warning": 1, "info": 2}
# How much a severity counts: a change to a smaller weight lowers a check.
_WEIGHT = {"error": 3, "warning": 2, "info": 1, "off": 0}

CHECKS_SCHEMA: dict[str, pl.DataType] = {
    "check": pl.String(),
    "severity": pl.String(),
    "success": pl.Boolean(),
    "unexpected_count": pl.Int64(),
    "examples": pl.String(),
}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check; `examples` holds up to five offending rows or values."""

    check: str
    severity: Severity
    success: bool
    unexpected_count: int
    examples: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class SeverityChange:
    """A check whose severity the config (`validate.severity`) set away from its default."""

    check: str
    default: Severity
    configured: Literal["error", "warning", "off"]

    @property
    def lowered(self) -> bool:
        return _WEIGHT[self.configured] < _WEIGHT[self.default]

    def __str__(self) -> str:
        return f"{self.check} ({self.default} -> {self.configured})"


@dataclass(frozen=True)
class CheckReport:
    """All checks run on one frame; `passed` is False if any error-severity check failed.

    `changes` lists the checks the config lowered or raised (one turned off is not in
    `checks`). `skipped` names the checks not run because the data's source lacks the
    columns they read (check -> why), e.g. quote volume on freqtrade's OHLCV-only klines. `gx_result` and `gx_suite` are the Great Expectations objects behind the
    report, kept for the Data Docs site; they are not part of the report's value.
    """

    passed: bool
    checks: list[CheckResult]
    row_count: int
    dataset: str = "klines"
    changes: tuple[SeverityChange, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    gx_result: Any = field(default=None, repr=False, compare=False)
    gx_suite: Any = field(default=None, repr=False, compare=False)
    parts: tuple[tuple[str, CheckReport], ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def merge(cls, parts: list[tuple[str, CheckReport]], key: str) -> CheckReport:
        """One report over several validated slices (e.g. one per interval), labelled in `key`.

        A check fails if it failed in any slice; counts add up; examples name their slice.
        """
        if len(parts) == 1:
            return replace(parts[0][1], parts=tuple(parts))
        merged: dict[str, CheckResult] = {}
        for label, report in parts:
            for c in report.checks:
                examples = [{key: label} | e for e in c.examples]
                prev = merged.get(c.check)
                if prev is None:
                    merged[c.check] = CheckResult(
                        c.check, c.severity, c.success, c.unexpected_count, examples
                    )
                else:
                    merged[c.check] = CheckResult(
                        c.check,
                        c.severity,
                        prev.success and c.success,
                        prev.unexpected_count + c.unexpected_count,
                        (prev.examples + examples)[:5],
                    )
        changes = {c.check: c for _, r in parts for c in r.changes}
        skipped: dict[str, list[str]] = {}
        for label, report in parts:
            for check, why in report.skipped.items():
                skipped.setdefault(check, []).append(f"{key} {label}: {why}")
        return cls(
            passed=all(r.passed for _, r in parts),
            checks=list(merged.values()),
            row_count=sum(r.row_count for _, r in parts),
            dataset=parts[0][1].dataset,
            changes=tuple(changes.values()),
            skipped={check: "; ".join(whys) for check, whys in skipped.items()},
            parts=tuple(parts),
        )

    @property
    def lowered(self) -> list[SeverityChange]:
        """The checks the config made less severe than their default (or turned off)."""
        return [c for c in self.changes if c.lowered]

    @property
    def raised(self) -> list[SeverityChange]:
        return [c for c in self.changes if not c.lowered]

    def failed(self) -> list[CheckResult]:
        """Every check that did not succeed: errors first, then warnings, then known (info)."""
        bad = [c for c in self.checks if not c.success]
        return sorted(bad, key=lambda c: _RANK[c.severity])

    def by_severity(self, severity: Severity) -> list[CheckResult]:
        """The checks of one severity that did not succeed."""
        return [c for c in self.failed() if c.severity == severity]

    def summary(self, row_label: Callable[[int], str] | None = None) -> str:
        """Readable text for logs and the CLI: the verdict, then each failed check with examples.

        `row_label` turns an example's row number into a label (the CLI shows file lines).
        """
        failed = self.failed()
        n = {s: len(self.by_severity(s)) for s in ("error", "warning", "info")}
        verdict = "passed" if self.passed else "FAILED"
        head = (
            f"{self.dataset} validation {verdict}: {len(self.checks)} checks on "
            f"{self.row_count:,} rows, {n['error']} error(s), {n['warning']} warning(s)"
        )
        lines = [head + (f", {n['info']} known" if n["info"] else "")]
        for how, changed in (("lowered", self.lowered), ("raised", self.raised)):
            if changed:
                lines.append(f"  {how} by config: " + ", ".join(str(c) for c in changed))
        if self.skipped:
            lines.append(
                "  skipped (the source lacks their columns): " + ", ".join(sorted(self.skipped))
            )
        for c in failed:
            label = "KNOWN" if c.severity == "info" else c.severity.upper()
            what = "explained" if c.severity == "info" else "unexpected"
            lines.append(f"  {label:<7} {c.check}: {c.unexpected_count:,} {what}")
            for e in c.examples:
                if row_label is not None and "row" in e:
                    rest = {k: v for k, v in e.items() if k != "row"}
                    lines.append(f"            {row_label(int(e['row']))}: {json.dumps(rest)}")
                else:
                    lines.append(f"            e.g. {json.dumps(e)}")
        return "\n".join(lines)

    def to_frame(self) -> pl.DataFrame:
        """One row per check, with the examples as a JSON string (for storing in the catalog)."""
        return pl.DataFrame(
            {
                "check": [c.check for c in self.checks],
                "severity": [c.severity for c in self.checks],
                "success": [c.success for c in self.checks],
                "unexpected_count": [c.unexpected_count for c in self.checks],
                "examples": [json.dumps(c.examples, default=str) for c in self.checks],
            },
            schema=CHECKS_SCHEMA,
        )

    def record(self) -> dict[str, Any]:
        """The verdict in a few JSON-ready keys, for a checks version's lineage."""
        errors = self.by_severity("error")
        return {
            "passed": self.passed,
            "rows": self.row_count,
            "failed_checks": [c.check for c in errors],
            "warnings": [c.check for c in self.by_severity("warning")],
            "known": [c.check for c in self.by_severity("info")],
            "counts": {c.check: c.unexpected_count for c in self.failed()},
            "first_failing_rows": {c.check: c.examples[:3] for c in errors},
            "skipped": dict(self.skipped),
            **{
                how: {c.check: {"default": c.default, "configured": c.configured} for c in changed}
                for how, changed in (("lowered", self.lowered), ("raised", self.raised))
            },
        }

    def raise_for_errors(self, what: str | None = None) -> None:
        """Raise QualityError, with the summary as its message, if an error check failed."""
        if not self.passed:
            errors = self.by_severity("error")
            raise QualityError(
                f"{what or self.dataset} failed validation "
                f"({', '.join(f'{c.check}: {c.unexpected_count:,}' for c in errors)}); "
                "fix the data or its source and ingest again; a retry will not help.\n"
                + self.summary(),
                failed_checks=[c.check for c in errors],
            )
