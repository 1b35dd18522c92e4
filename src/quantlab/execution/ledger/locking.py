"""The session lock: one paper run per account and ledger at a time.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its
own, held for the with-block; the server drops it with the session, so a process killed with
-9 releases it as soon as its socket closes. SQLite: an OS file lock (flock) on
`<db file>.<account>.lock`, released with the descriptor, hence also by a killed process.
Both poll without blocking until `wait_s` has passed, then raise LedgerBusy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from quantlab.execution.ledger.db import connect_postgres, redact
from quantlab.execution.ledger.errors import LedgerBusy

try:  # POSIX; the stack's containers and Airflow's workers never run on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

_POLL_S = 0.05


def advisory_key(account: str) -> int:
    """A signed 64-bit key for `account`, stable across processes and versions."""
    digest = hashlib.sha256(f"quantlab.ledger.session|{account}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_path(db_path: Path, account: str) -> Path:
    """`<db file>.<account>.lock`; an account name unsafe in a file name gets a hash suffix."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", account)
    if safe != account or not safe:
        safe = f"{safe}-{hashlib.sha256(account.encode()).hexdigest()[:8]}"
    return db_path.with_name(f"{db_path.name}.{safe}.lock")


def busy(account: str, where: str, wait_s: float) -> LedgerBusy:
    return LedgerBusy(
        f"another paper run for account {account!r} holds the ledger ({where}); waited "
        f"{wait_s:g} s. Wait for that run to finish (or stop it), or raise paper.lock_wait_s"
    )


def _poll(
    try_once: Callable[[], bool], wait_s: float, on_timeout: Callable[[], LedgerBusy]
) -> None:
    deadline = time.monotonic() + max(wait_s, 0.0)
    while not try_once():
        left = deadline - time.monotonic()
        if left <= 0:
            raise on_timeout()
        time.sleep(min(_POLL_S, left))


@contextlib.contextmanager
def postgres_lock(target: str, url: str, account: str, wait_s: float) -> Iterator[None]:
    conn = connect_postgres(target, url)
    conn.autocommit = True
    key = advisory_key(account)
    try:
        cur = conn.cursor()

        def try_once() -> bool:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            return bool(cur.fetchone()[0])

        _poll(try_once, wait_s, lambda: busy(account, f"advisory lock on {redact(url)}", wait_s))
        yield
    finally:
        conn.close()  # ends the session, which releases its advisory locks


@contextlib.contextmanager
def file_lock(db_path: Path, account: str, wait_s: float) -> Iterator[None]:
    path = lock_path(db_path, account)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:

        def try_once() -> bool:
            if fcntl is None:  # pragma: no cover
                return True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        _poll(try_once, wait_s, lambda: busy(account, f"lock file {path}", wait_s))
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextlib.contextmanager
def memory_lock(lock: threading.Lock, account: str, wait_s: float) -> Iterator[None]:
    """An in-memory ledger is private to its connection: a thread lock is all it needs."""
    if not lock.acquire(timeout=max(wait_s, 0.0)):
        raise busy(account, "in-memory ledger", wait_s)
    try:
        yield
    finally:
        lock.release()
