"""Where the catalog's tables live: a local folder or an object-store URI (`s3://bucket/prefix`).

The Catalog asks this module, never the file system, whether a table has a commit and which
tables exist, so the same code runs on a folder and on S3. A local root keeps the exact
`os.scandir` checks it always had; a URI is listed through deltalake's own object store
(the same client, options and credentials that read and write the tables).
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from deltalake.exceptions import CommitFailedError, DeltaError

T = TypeVar("T")
# Tries of one write against an object store before the conflict is raised: each lost race
# means another writer committed, so this bounds how many writers can overtake one.
COMMIT_ATTEMPTS = 20

_URI = re.compile(r"^[a-z][a-z0-9+.-]*://")
# A commit or checkpoint file of a Delta log; a writer killed before its first commit
# leaves `_delta_log/` without one (at most a temporary file), and no table.
_LOG_ENTRY = re.compile(r"^\d{20}\.(json|checkpoint\b.*\.parquet)$")


def is_uri(root: Path | str) -> bool:
    """Whether `root` names an object store (`s3://...`) rather than a local folder."""
    return isinstance(root, str) and bool(_URI.match(root))


def retry_conflicts(attempt: Callable[[], T], attempts: int) -> T:
    """Run `attempt` until it commits, at most `attempts` times, from a fresh read each time.

    A try loses when another writer's commit took the version it was based on (deltalake's
    CommitFailedError with no retries of its own) or created the table first. With one
    attempt (a local catalog, whose lock rules out a race) the error is raised as it is.
    """
    for n in range(1, attempts + 1):
        try:
            return attempt()
        except DeltaError as exc:
            lost = isinstance(exc, CommitFailedError) or "already exists" in str(exc)
            if not lost or n == attempts:
                raise
        time.sleep(random.uniform(0, min(1.0, 0.02 * 2**n)))  # spread the retries apart
    raise AssertionError("unreachable")  # pragma: no cover


def _has_commit_local(table_path: Path) -> bool:
    try:
        with os.scandir(table_path / "_delta_log") as entries:
            return any(_LOG_ENTRY.match(e.name) for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


@dataclass(frozen=True)
class Store:
    """A catalog root: a local folder, or a URI with deltalake storage options.

    `options` never hold credentials: deltalake reads AWS_ACCESS_KEY_ID and friends from
    the environment itself.
    """

    root: Path | str
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, root: Path | str, options: dict[str, str] | None = None) -> Store:
        if is_uri(root):
            return cls(str(root).rstrip("/"), dict(options or {}))
        if options:
            raise ValueError(
                f"storage options are for an object-store root such as s3://bucket/prefix, "
                f"not the local folder {root}; drop them or give a URI"
            )
        return cls(Path(root))

    @property
    def remote(self) -> bool:
        return isinstance(self.root, str)

    @property
    def commit_attempts(self) -> int:
        return COMMIT_ATTEMPTS if self.remote else 1

    def table_uri(self, name: str) -> str:
        """What deltalake opens for table `name`: a local path or `<root>/<name>`."""
        return f"{self.root}/{name}" if self.remote else str(Path(self.root) / name)

    def storage_options(self) -> dict[str, str] | None:
        """deltalake's `storage_options` argument: None for a local folder."""
        return dict(self.options) if self.remote else None

    def has_commit(self, name: str) -> bool:
        """Whether table `name` exists: its log has at least one commit or checkpoint."""
        if not self.remote:
            return _has_commit_local(Path(self.root) / name)
        entries = self._list(f"{name}/_delta_log")
        return any(_LOG_ENTRY.match(p.rsplit("/", 1)[-1]) for p, _ in entries)

    def names(self) -> list[str]:
        """The tables under the root (folders whose log has a commit), sorted."""
        if not self.remote:
            root = Path(self.root)
            if not root.exists():
                return []
            return sorted(p.name for p in root.iterdir() if _has_commit_local(p))
        folders = [p.rsplit("/", 1)[-1] for p, is_dir in self._list("") if is_dir]
        return sorted(n for n in folders if self.has_commit(n))

    def _list(self, under: str) -> list[tuple[str, bool]]:
        """(path, is a folder) of the entries directly under `under` (relative to the root);
        none when it does not exist. Object stores have no folders, only key prefixes."""
        from deltalake.fs import DeltaStorageHandler
        from pyarrow.fs import FileSelector, FileType

        handler = DeltaStorageHandler(str(self.root), self.options)
        selector = FileSelector(under, recursive=False, allow_not_found=True)
        return [
            (info.path, info.type == FileType.Directory)
            for info in handler.get_file_info_selector(selector)
        ]
