"""The validation gate's record: which dataset versions passed, and the refusal of those that did not."""

from __future__ import annotations

from quantlab.catalog import Catalog, DatasetRef, GateVerdict
from quantlab.errors import QualityError


def require_passed(catalog: Catalog, data: DatasetRef, checks: DatasetRef) -> None:
    """Raise QualityError unless `checks` is a passed validation of exactly `data`."""
    lineage = catalog.lineage(checks)
    validated = lineage.inputs.get(data.name)
    if lineage.stage != "validate" or validated != data.version:
        what = f"{data.name}@v{validated}" if validated is not None else "another dataset"
        raise QualityError(
            f"{checks} is not a validation of {data} (it validated {what}); "
            f"run the validate stage on {data} before using it"
        )
    verdict = GateVerdict.of(lineage)
    if not verdict.passed:
        failed, counts, docs = list(verdict.failed_checks), verdict.counts, verdict.data_docs
        named = ", ".join(f"{c} ({counts[c]:,} rows)" if c in counts else c for c in failed)
        raise QualityError(
            f"{data} failed validation ({checks}): {named or 'see the report'}; "
            "fix the data at its source and ingest again, then validate the new version. "
            f"Details: `quantlab datasets show {checks.name} --version {checks.version}`"
            + (f" or the Data Docs at {docs}" if docs else ""),
            failed_checks=failed,
        )
