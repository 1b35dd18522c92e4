"""IP bans (HTTP 418) remembered until they end, by every thread and every process.

A ban is recorded per host (`https://api.binance.com`) with its end as seconds since the
epoch. Kept in memory, it stops every thread of the client at once; written to a file under
the data folder (`ban_file(data)`), it stops every process and every Airflow retry that uses
that folder: a request to a banned host is refused here, before it is sent, because each
request sent during a ban makes the ban longer.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from quantlab.errors import ExchangeBanned, ExchangeError
from quantlab.locks import file_lock


def ban_file(data: Path) -> Path:
    """Where the bans of every process using the data folder `data` are recorded."""
    return data / "exchange" / "bans.json"


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def format_utc(seconds: float) -> str:
    return f"{utc(seconds):%Y-%m-%d %H:%M:%S} UTC"


class BanBook:
    """The bans in force, by host; with `path`, shared through that file with other processes."""

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time):
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._mine: dict[str, dict] = {}  # host -> {"until": s, "reason": str}
        self._read: tuple[tuple[int, int], dict[str, dict]] | None = None  # file stamp, bans

    def check(self, host: str, what: str) -> None:
        """Raise `ExchangeBanned` if `host` is banned now; `what` names the refused request."""
        ban = self.ban(host)
        if ban is None:
            return
        where = f"; recorded in {self.path}" if self.path is not None else ""
        raise ExchangeBanned(
            f"{host} banned this IP until {format_utc(ban['until'])} ({ban['reason']}){where}. "
            f"{what} was not sent: every request during a ban makes it longer. Run again after "
            "the ban ends, and lower the request rate (fewer parallel tasks or symbols).",
            until=utc(ban["until"]),
            host=host,
            status=None,
        )

    def ban(self, host: str) -> dict | None:
        """The ban on `host` that lasts longest, if one is in force now."""
        now = self._clock()
        with self._lock:
            bans = [self._mine.get(host), self._from_file().get(host)]
        live = [b for b in bans if b is not None and b["until"] > now]
        return max(live, key=lambda b: b["until"]) if live else None

    def record(self, host: str, until: float, reason: str) -> None:
        """Remember that `host` banned this IP until `until` (seconds since the epoch)."""
        ban = {"until": until, "reason": reason}
        with self._lock:
            if self._mine.get(host, {}).get("until", 0) < until:
                self._mine[host] = ban
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            now = self._clock()
            bans = {h: b for h, b in _load(self.path).items() if b["until"] > now}
            if bans.get(host, {}).get("until", 0) < until:
                bans[host] = ban
            _write_atomically(self.path, bans)

    def _from_file(self) -> dict[str, dict]:
        """The file's bans, read again only when the file changed."""
        if self.path is None:
            return {}
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if self._read is None or self._read[0] != stamp:
            self._read = (stamp, _load(self.path))
        return self._read[1]


def _load(path: Path) -> dict[str, dict]:
    """The bans in `path`; a file that is not ours raises, since ignoring it could earn a longer ban."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ExchangeError(
            f"the ban record {path} is not valid JSON ({exc}), so whether this IP is banned is "
            "unknown and nothing was sent. Check it, then delete it if no ban is in force."
        ) from None
    return {
        str(host): {"until": float(b["until"]), "reason": str(b.get("reason", ""))}
        for host, b in raw.items()
        if isinstance(b, dict) and isinstance(b.get("until"), int | float)
    }


def _write_atomically(path: Path, bans: dict[str, dict]) -> None:
    """Write `bans` to `path` so a reader sees the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            readable = {h: {**b, "until_utc": format_utc(b["until"])} for h, b in bans.items()}
            json.dump(readable, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
