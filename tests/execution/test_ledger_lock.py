# ruff: noqa: F811  (pytest fixtures imported from test_ledger_support are parameters here)
"""The session lock on SQLite (flock) and PostgreSQL (advisory lock): a second holder waits,
then gets LedgerBusy; it gets the lock once the first lets go; a holder killed with -9
releases it. Threads stand in for a second run in-process, a subprocess for a killed one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from execution.test_ledger_support import ACCOUNT, ledger, ledger_url  # noqa: F401  (fixtures)
from quantlab.execution.ledger import Ledger, LedgerBusy

_HOLDER = """
import sys, time
from quantlab.execution.ledger import Ledger
led = Ledger.connect(sys.argv[1])
with led.session_lock(sys.argv[2], wait_s=0):
    print("held", flush=True)
    time.sleep(600)
"""


def _hold_in_thread(
    url: str, account: str
) -> tuple[threading.Thread, threading.Event, threading.Event]:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with Ledger.connect(url) as led, led.session_lock(account, wait_s=0):
            held.set()
            release.wait(timeout=120)  # a guard against a hung test, not a timing

    worker = threading.Thread(target=hold, daemon=True)
    worker.start()
    assert held.wait(timeout=60), "the first holder never got the lock"
    return worker, held, release


def test_a_second_run_waits_then_gets_ledger_busy(ledger_url: str, ledger: Ledger):
    worker, _, release = _hold_in_thread(ledger_url, ACCOUNT)
    try:
        with pytest.raises(LedgerBusy) as err, ledger.session_lock(ACCOUNT, wait_s=0.3):
            pass
        assert "another paper run" in str(err.value) and repr(ACCOUNT) in str(err.value)
        assert "lock_wait_s" in str(err.value)
        with ledger.session_lock("other-account", wait_s=0):  # accounts do not block each other
            pass
    finally:
        release.set()
        worker.join(timeout=60)


def test_a_waiting_run_gets_the_lock_when_the_holder_lets_go(ledger_url: str, ledger: Ledger):
    worker, _, release = _hold_in_thread(ledger_url, ACCOUNT)
    threading.Timer(0.2, release.set).start()
    with ledger.session_lock(ACCOUNT, wait_s=60):
        assert release.is_set()  # it could only get in after the holder let go
    worker.join(timeout=60)
    assert not worker.is_alive()


def test_a_holder_killed_with_sigkill_releases_the_lock(ledger_url: str, ledger: Ledger):
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, ledger_url, ACCOUNT],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LedgerBusy), ledger.session_lock(ACCOUNT, wait_s=0.2):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    with ledger.session_lock(ACCOUNT, wait_s=30):  # the server or the kernel dropped it
        pass


def test_an_in_memory_ledger_locks_within_its_process():
    with Ledger.connect("sqlite:///:memory:") as led:
        first = led.session_lock(ACCOUNT, wait_s=0)
        first.__enter__()
        try:
            with pytest.raises(LedgerBusy), led.session_lock(ACCOUNT, wait_s=0):
                pass
        finally:
            first.__exit__(None, None, None)
        with led.session_lock(ACCOUNT, wait_s=0):  # free again once released
            pass
