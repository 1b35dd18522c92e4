"""Publish a report that was validated in memory (a file a user brought) to the Data Docs site.

The gate itself validates through a Checkpoint whose action publishes the result (see
`quality._project`); this is for `quantlab data validate --input FILE --data-docs`, where
the file was already validated by the pure core. The result is stored under `batch` in the
same GX project (`<store_dir>/gx`) and the site (`site_dir`, e.g. `<data>/data_docs`)
renders its page and index, as GX's `UpdateDataDocsAction` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from quantlab.quality._project import SITE, open_project
from quantlab.quality.checks import CheckReport


def build_data_docs(
    report: CheckReport, *, site_dir: Path, store_dir: Path, batch: str, run_name: str
) -> Path:
    """Add `report`'s GX result to the site at `site_dir` and return the site's index.html.

    `batch` names what was validated (e.g. a file name), `run_name` the run.
    """
    parts = report.parts or (("", report),)
    if any(r.gx_result is None or r.gx_suite is None for _, r in parts):
        raise ValueError("this report holds no Great Expectations result to publish")
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    project = open_project(store_dir, site_dir)
    context = project.context
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
    with project.exclusive():
        for label, part in parts:
            suite = project.store_suite(part.gx_suite)
            suite_id = ExpectationSuiteIdentifier(name=suite.name)
            result_id = ValidationResultIdentifier(
                expectation_suite_identifier=suite_id,
                run_id=run_id,
                batch_identifier=f"{batch}-{label}" if label else batch,
            )
            result = part.gx_result
            result.meta["run_id"] = run_id
            result.meta["validation_time"] = run_id.run_time
            result.meta.setdefault("batch_spec", {})["data_asset_name"] = result_id.batch_identifier
            context.validation_results_store.set(result_id, result)
            context.build_data_docs(site_names=[SITE], resource_identifiers=[result_id, suite_id])
    return project.index
