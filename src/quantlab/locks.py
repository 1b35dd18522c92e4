"""An exclusive lock shared by every process and thread that uses the same data folder.

The lock is an OS file lock (flock) on a file next to what it guards: a holder killed
with -9 releases it with its process, so it is never left stale. It is reentrant within a
thread: a second flock on a new descriptor would wait for the first forever, so only the
outermost hold takes it, and the catalog can lock inside a write whose caller holds the
same lock already. Other threads of the process wait on a per-path thread lock first.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

try:  # POSIX; Airflow's workers and the stack's containers never run on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


@dataclass
class _Hold:
    """This process's hold of one lock file: the thread in it, how deep, its descriptor."""

    thread_lock: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    fd: int | None = None


_guard = threading.Lock()
_holds: dict[Path, _Hold] = {}


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive lock `path` (created if missing); blocks while another holder has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = path.resolve()
    with _guard:
        hold = _holds.setdefault(key, _Hold())
    with hold.thread_lock:
        if hold.depth == 0:
            fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            hold.fd = fd
        hold.depth += 1
        try:
            yield
        finally:
            hold.depth -= 1
            if hold.depth == 0 and hold.fd is not None:
                fd, hold.fd = hold.fd, None
                os.close(fd)  # closing the descriptor releases the lock


def _forget_holds_in_child() -> None:
    """A forked child holds none of its parent's locks: drop its copies of the descriptors
    (the parent keeps its flock; closing a copy without LOCK_UN leaves it in place) and start
    from fresh thread locks, which the fork may have copied while another thread held them."""
    global _guard, _holds
    for hold in _holds.values():
        if hold.fd is not None:
            os.close(hold.fd)
            hold.fd = None
    _guard, _holds = threading.Lock(), {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_holds_in_child)
