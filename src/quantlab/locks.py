"""An exclusive lock shared by every process that uses the same data folder.

The lock is an OS file lock (flock) on a file next to what it guards: a holder killed
with -9 releases it with its process, so it is never left stale. It is not reentrant
across descriptors: a process must not take the same lock twice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX; Airflow's workers and the stack's containers never run on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive lock `path` (created if missing); blocks while another holder has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
