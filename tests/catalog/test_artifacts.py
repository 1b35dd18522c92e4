"""Artifacts are staged before the commit and published with the version, never after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from quantlab.catalog import DATASETS, Catalog, Dataset, DatasetRef
from quantlab.errors import DatasetNotFound

REGISTRY = DATASETS.with_datasets(Dataset("reports", {"x": pl.Int64()}, "test"))


@pytest.fixture
def catalog(tmp_path):
    return Catalog(tmp_path / "data" / "catalog", registry=REGISTRY)


def _report(ref: DatasetRef, folder: Path) -> None:
    (folder / "report.html").write_text(f"<h1>{ref}</h1>")


def _folders(catalog: Catalog) -> list[str]:
    parent = catalog.root.parent / "artifacts" / "reports"
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


def test_artifacts_are_published_as_the_version_they_were_staged_for(catalog):
    first = catalog.write("reports", pl.DataFrame({"x": [1]}), stage="s", artifacts=_report)
    second = catalog.write(
        "reports", pl.DataFrame({"x": [2]}), stage="s", config_hash="c", artifacts=_report
    )
    assert (catalog.artifacts(second) / "report.html").read_text() == "<h1>reports@v1</h1>"
    assert (catalog.artifacts(first) / "report.html").read_text() == "<h1>reports@v0</h1>"
    assert _folders(catalog) == ["v0", "v1"]


def test_a_repeated_fingerprint_keeps_the_existing_artifacts(catalog):
    ref = catalog.write("reports", pl.DataFrame({"x": [1]}), stage="s", artifacts=_report)

    def must_not_run(ref: DatasetRef, folder: Path) -> None:
        raise AssertionError("a repeated fingerprint wrote artifacts again")

    again = catalog.write("reports", pl.DataFrame({"x": [1]}), stage="s", artifacts=must_not_run)
    assert again == ref
    assert (catalog.artifacts(ref) / "report.html").read_text() == "<h1>reports@v0</h1>"


def test_a_commit_that_fails_after_staging_leaves_no_version_folder(catalog, monkeypatch):
    from quantlab.catalog import _commits

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(_commits, "write_deltalake", crash)
    with pytest.raises(OSError, match="disk full"):
        catalog.write("reports", pl.DataFrame({"x": [1]}), stage="s", artifacts=_report)
    assert not catalog.exists("reports")
    assert _folders(catalog) == []  # neither v0 nor the staging folder
    with pytest.raises(DatasetNotFound, match="has no artifacts"):
        catalog.artifacts(DatasetRef("reports", 0))


def test_a_writer_killed_between_staging_and_commit_leaves_only_a_staging_folder(catalog):
    """kill -9 while the report is staged: no v0 appears, no version is committed, and the
    next write clears the leftover and publishes its own."""
    script = textwrap.dedent(
        f"""
        import sys, time
        import polars as pl
        from quantlab.catalog import DATASETS, Catalog, Dataset
        registry = DATASETS.with_datasets(Dataset("reports", {{"x": pl.Int64()}}, "test"))
        def stall(ref, folder):
            (folder / "report.html").write_text("half")
            print("staged", flush=True)
            time.sleep(60)
        c = Catalog({str(catalog.root)!r}, registry=registry)
        c.write("reports", pl.DataFrame({{"x": [1]}}), stage="s", artifacts=stall)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"staged"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    leftover = _folders(catalog)
    assert len(leftover) == 1 and leftover[0].startswith(".staging-")
    assert not catalog.exists("reports")
    ref = catalog.write("reports", pl.DataFrame({"x": [2]}), stage="s", artifacts=_report)
    assert _folders(catalog) == ["v0"]
    assert (catalog.artifacts(ref) / "report.html").read_text() == "<h1>reports@v0</h1>"
