"""The data folder's file lock: exclusive across processes and threads, reentrant in a thread."""

from __future__ import annotations

import fcntl
import os
import threading
import time

from quantlab.locks import file_lock


def _free(path) -> bool:
    """Whether another descriptor (as another process would have) can take the lock now."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        return True
    finally:
        os.close(fd)


def test_the_lock_nests_within_a_thread_and_holds_until_the_outer_hold_ends(tmp_path):
    """A caller that holds a dataset's lock may call code that takes it again (ingest
    holds the write lock around `Catalog.upsert`, which locks too)."""
    lock = tmp_path / "locks" / "klines.lock"
    seen: list[bool] = []

    def nest():
        with file_lock(lock):
            with file_lock(tmp_path / "locks" / ".." / "locks" / "klines.lock"):
                seen.append(_free(lock))
            seen.append(_free(lock))  # the inner hold's end leaves the outer one's lock in place

    worker = threading.Thread(target=nest, daemon=True)
    worker.start()
    worker.join(timeout=60)  # a deadlock guard, not a timing: the nested hold never returns
    assert not worker.is_alive(), "a nested hold of the same lock waited for itself"
    assert seen == [False, False]
    assert _free(lock)


def test_threads_of_one_process_take_turns(tmp_path):
    lock = tmp_path / "locks" / "x.lock"
    inside, most = [0], [0]

    def work():
        for _ in range(5):
            with file_lock(lock):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                time.sleep(0.002)  # let another thread try to come in meanwhile
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == [1]
    assert _free(lock)
