"""Files that belong to one version (reports, plots), published with the version.

A writer's artifacts are written into `artifacts/<name>/.staging-<uuid>/` before its commit
and renamed to `artifacts/<name>/v<N>/` after it, under the dataset's lock: a process killed
in between leaves a `.staging-*` folder (the next write of that dataset removes it), never a
half-written `v<N>` or a `v<N>` for a version that was not committed.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from quantlab.catalog.refs import DatasetRef

# Writes a version's files into the folder it is given; told the version it will become.
ArtifactWriter = Callable[[DatasetRef, Path], None]

_STAGING = ".staging-"


def version_dir(root: Path, ref: DatasetRef) -> Path:
    """The published folder of `ref`'s artifacts under the artifacts `root`."""
    return root / ref.name / f"v{ref.version}"


def stage(root: Path, ref: DatasetRef, write: ArtifactWriter) -> Path:
    """Run `write` into a fresh staging folder of `ref.name`; the caller holds its lock.

    Staging folders left by killed writers are removed first: under the lock, none is live.
    """
    parent = root / ref.name
    if parent.exists():
        for stale in parent.glob(f"{_STAGING}*"):
            shutil.rmtree(stale)
    staging = parent / f"{_STAGING}{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        write(ref, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def publish(staging: Path, final: Path) -> None:
    """Move a staged folder to its version's place (replacing a stray one of that name)."""
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)


def discard(staging: Path | None) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
