"""The Great Expectations Data Docs site: every validation's suite and result as static HTML.

A file-backed GX project under `store_dir` keeps the suites and the validation results;
the site is rendered to `site_dir` (`<data>/data_docs/index.html` from the stage), so
that it opens in a browser straight from disk. Each call adds one result and rebuilds
the index (the newest 50 results), as GX's `UpdateDataDocsAction` does after a Checkpoint run. The results are
stored as the gate computed them (with the full frame's counts, see `quality._gx`)
rather than re-validated by a Checkpoint, which would validate the data a second time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from quantlab.quality._gx import gx
from quantlab.quality.report import ValidationReport

SITE = "quantlab"
INDEX_LIMIT = 50  # validation results listed on the index page, newest first
_LOCK = threading.Lock()


@cache
def _context(store_dir: str, site_dir: str) -> Any:
    """A file-backed GX context whose only Data Docs site is `site_dir`."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx().get_context(mode="file", project_root_dir=store_dir)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    wanted = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": site_dir},
        # The index reads every result it lists: keep it (and the gate's time) bounded.
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": INDEX_LIMIT,
        },
    }
    sites = dict(context.variables.data_docs_sites or {})
    for name in [n for n in sites if n != SITE or sites[n] != wanted]:
        context.delete_data_docs_site(name)
    if SITE not in (context.variables.data_docs_sites or {}):
        context.add_data_docs_site(SITE, wanted)
    return context


def build_data_docs(
    report: ValidationReport, *, site_dir: Path, store_dir: Path, batch: str, run_name: str
) -> Path:
    """Add `report`'s GX result to the site at `site_dir` and return the site's index.html.

    `batch` names what was validated (e.g. `klines@v3` or a file name), `run_name` the run.
    """
    parts = report.parts or (("", report),)
    if any(r.gx_result is None or r.gx_suite is None for _, r in parts):
        raise ValueError("this report holds no Great Expectations result to publish")
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site_dir.mkdir(parents=True, exist_ok=True)
    store_dir.mkdir(parents=True, exist_ok=True)
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
    with _LOCK:
        context = _context(str(store_dir.resolve()), str(site_dir.resolve()))
        for label, part in parts:
            suite = gx().ExpectationSuite(
                name=part.gx_suite.name,
                expectations=[e.configuration.to_domain_obj() for e in part.gx_suite.expectations],
            )
            context.suites.add_or_update(suite)
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
    return site_dir / "index.html"
