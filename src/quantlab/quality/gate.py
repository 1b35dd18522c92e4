"""The validation gate's record: which dataset versions passed, and the refusal of those that did not."""

from __future__ import annotations

from quantlab.catalog import Catalog, DatasetRef
from quantlab.errors import QualityError


def require_passed(catalog: Catalog, data: DatasetRef, checks: DatasetRef) -> None:
    """Raise QualityError unless `checks` is a passed validation of exactly `data`."""
    lineage = catalog.lineage(checks)
    validated = lineage.inputs.get(data.name)
    if validated != data.version:
        raise QualityError(
            f"{checks} validated {data.name}@v{validated}, not {data}; "
            f"run the validate stage on {data} before using it"
        )
    if not lineage.extra.get("passed", False):
        failed = lineage.extra.get("failed_checks", [])
        raise QualityError(
            f"{data} failed validation ({checks}): {', '.join(failed) or 'see the report'}; "
            f"fix the data and ingest again, or inspect it with "
            f"`quantlab datasets show {checks.name} --version {checks.version}`",
            failed_checks=failed,
        )
