"""A child process for the kill tests: one ingest that SIGKILLs itself at a chosen point.

    python _ingest_child.py CATALOG BASE_URL KILL[@SYMBOL,...]

The run ingests BTCUSDT and ETHUSDT 1h for 2023-2024 (or only the symbols named). KILL is
- `none`;
- `request:N`: before the Nth klines request goes out (mid-download);
- `commit:N`: while the Nth Delta commit writes; a watcher thread kills the process at the
  first new file or folder in the table (everything fetched goes into that one commit);
- `after-commit:N`: once the Nth klines commit returned, before anything else is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path

import httpx

from quantlab import catalog as catalog_module
from quantlab.catalog import Catalog
from quantlab.ingest import RestSource, ingest_klines
from quantlab.ingest import _store as store

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
JAN_2023, JAN_2025 = 1672531200000, 1735689600000


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillingTransport(httpx.HTTPTransport):
    def __init__(self, at: int):
        super().__init__()
        self.at, self.count, self.lock = at, 0, threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/klines"):
            with self.lock:
                self.count += 1
                if self.count == self.at:
                    die()
        return super().handle_request(request)


def kill_during_commit(at: int, root: Path) -> None:
    original = catalog_module.Catalog.upsert
    calls = [0]

    def upsert(self, name, df, key, **kw):
        calls[0] += 1
        if calls[0] != at:
            return original(self, name, df, key, **kw)
        table = root / name

        def entries() -> set[str]:
            # Every file and folder outside _delta_log: a new partition folder, or a data
            # file under its temporary name, is the first sign of the commit's write.
            out, stack = set(), [str(table)]
            while stack:
                try:
                    found = list(os.scandir(stack.pop()))
                except FileNotFoundError:
                    continue
                for e in found:
                    if e.name != "_delta_log":
                        out.add(e.path)
                        if e.is_dir():
                            stack.append(e.path)
            return out

        before = entries()

        def watch() -> None:
            with contextlib.suppress(OSError):  # run first whenever runnable (root only)
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            while not (entries() - before):
                pass
            die()

        threading.Thread(target=watch, daemon=True).start()
        original(self, name, df, key, **kw)
        die()  # the commit beat the watcher: die right after it

    catalog_module.Catalog.upsert = upsert


def kill_after_commit(at: int) -> None:
    original = store.write_klines
    calls = [0]

    def write_klines(*args, **kw):
        ref = original(*args, **kw)
        calls[0] += 1
        if calls[0] == at:
            die()
        return ref

    store.write_klines = write_klines


def main() -> None:
    root, base_url, spec = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    kill, _, only = spec.partition("@")
    mode, _, n = kill.partition(":")
    transport = KillingTransport(int(n)) if mode == "request" else None
    if mode == "commit":
        kill_during_commit(int(n), root)
    elif mode == "after-commit":
        kill_after_commit(int(n))
    source = RestSource(base_url, transport=transport)
    result = ingest_klines(
        Catalog(root),
        source,
        market="spot",
        interval="1h",
        symbols=only.split(",") if only else SYMBOLS,
        start_ms=JAN_2023,
        end_ms=JAN_2025,
        workers=2,
        chunk_bars=2000,
        # Small commits, except where a commit is killed: one big write keeps it busy longer.
        batch_rows=10**6 if mode == "commit" else 2500,
    )
    source.close()
    result.raise_for_errors()
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    main()
