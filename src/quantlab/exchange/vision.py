"""Bulk klines in the data.binance.vision layout: a local mirror, the site itself, or the replay.

    data/{spot|futures/um}/{monthly|daily}/klines/{SYMBOL}/{interval}/{SYMBOL}-{interval}-{YYYY-MM[-DD]}.zip

Each zip holds one CSV and has a `.zip.CHECKSUM` beside it (`sha256sum` format). A zip is read
only once its SHA-256 matches: a corrupt or half-downloaded file is refused, never ingested.
Backfill reads monthly files where they exist, daily files for the rest, and leaves the newest
bars to REST.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx
import polars as pl

from quantlab.config import check_symbol
from quantlab.errors import ChecksumMismatch, ConfigError, DataError, SchemaError
from quantlab.exchange._http import BadBody, Requester, read_file
from quantlab.exchange._klines_csv import read_kline_csv, unzip_csv
from quantlab.exchange._vision_layout import Layout, Market, VisionFile, check_market, interval_ms
from quantlab.schema import KLINES_SCHEMA, normalize_klines

__all__ = ["VisionFile", "VisionSource"]

T = TypeVar("T")
R = TypeVar("R")


class VisionSource:
    """data.binance.vision bulk files from a local folder or an http(s) base URL.

    `location` is the folder (or URL) that holds `data/`: `data/sample`, or
    `https://data.binance.vision`. Over HTTP a file exists when its `.CHECKSUM` does, and
    downloads go through the transport and retry loop of API calls (`_http.Requester`): a
    429 pauses every thread, a 418 is a ban recorded in `ban_file`, and a download whose
    digest is wrong is fetched again before the mismatch is reported.
    """

    TAIL_MONTHS = 2

    def __init__(
        self,
        location: str | Path,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        max_workers: int = 4,
        clock: Callable[[], float] = time.time,
        ban_file: Path | None = None,
    ):
        text = str(location)
        self._remote = text.startswith(("http://", "https://"))
        self._layout = Layout(
            root=None if self._remote else Path(location),
            base=text.rstrip("/") if self._remote else None,
        )
        # Bulk files cost no request weight: retried like the API, without a weight budget.
        self._requester = (
            Requester.open(
                "",
                timeout_s=timeout_s,
                max_retries=max_retries,
                transport=transport,
                tracker=None,
                sleep=sleep,
                clock=clock,
                ban_file=ban_file,
            )
            if self._remote
            else None
        )
        self._max_workers = max(1, max_workers)
        self._checksums: dict[str, str | None] = {}  # rel -> checksum file text (HTTP only)
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._requester is not None:
            self._requester.close()

    def __enter__(self) -> VisionSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def plan(
        self, market: Market, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> list[VisionFile]:
        """The files that hold the bars opening in [start_ms, end_ms], oldest first.

        A month wholly inside the window comes from its monthly file if that exists. The days
        of the other months come from daily files; where some of those are missing but the
        monthly file exists, the monthly file is used instead. Periods with no file are left
        out. Over HTTP, where each look-up is a request, the days of a whole month without a
        monthly file are looked up only for the newest `TAIL_MONTHS` months after the last
        monthly file (data.binance.vision publishes a month's file a few days after it ends;
        older months without one predate the listing).
        """
        step = interval_ms(interval)
        check_market(market)
        check_symbol(symbol)  # it names a folder
        if end_ms < start_ms:
            raise ConfigError(f"end_ms {end_ms} is before start_ms {start_ms}; swap them")
        months = self._layout.months(market, symbol, interval, start_ms, end_ms)
        full = [f for f in months if start_ms <= f.start_ms and f.end_ms + 1 - step <= end_ms]
        chosen = [f for f, ok in zip(full, self._exist(full), strict=True) if ok]
        rest = [f for f in months if f not in chosen]
        if self._remote:
            newer = [f for f in full if not chosen or f.start_ms > chosen[-1].start_ms]
            tail = newer[-self.TAIL_MONTHS :] if self.TAIL_MONTHS else []
            rest = [f for f in rest if f not in full or f in tail]
        days = {
            f: [
                d
                for d in self._layout.days(f)
                if d.start_ms <= end_ms and d.end_ms + 1 - step >= start_ms
            ]
            for f in rest
        }
        all_days = [d for ds in days.values() for d in ds]
        found = {d for d, ok in zip(all_days, self._exist(all_days), strict=True) if ok}
        incomplete = [f for f in rest if f not in full and not set(days[f]) <= found]
        fallback = {f for f, ok in zip(incomplete, self._exist(incomplete), strict=True) if ok}
        for f in rest:
            chosen += [f] if f in fallback else [d for d in days[f] if d in found]
        return sorted(chosen, key=lambda f: f.start_ms)

    def read(self, file: VisionFile, *, verify: bool = True) -> pl.DataFrame:
        """Every bar of `file` in the klines schema, after checking its SHA-256.

        `verify=False` reads a file that has no `.CHECKSUM`, on purpose; a digest that does
        not match is refused either way when a checksum is there to compare.
        """
        blob = self._verified_bytes(file, verify)
        raw = read_kline_csv(unzip_csv(blob, file.location), file.location)
        if raw.height:
            first, last = int(raw["open_time"].min()), int(raw["open_time"].max())
            if first < file.start_ms or last > file.end_ms:
                raise SchemaError(
                    f"{file.location} holds bars opening from {first} to {last} ms, outside its "
                    f"period {file.date}: the file is misnamed or not Binance's; delete it and "
                    "download it again"
                )
        return normalize_klines(raw, file.market, file.symbol, file.interval)

    def fetch_klines(
        self, market: Market, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> tuple[pl.DataFrame, int | None]:
        """Bars opening in [start_ms, end_ms] from bulk files, and the last open time they cover.

        The bulk part is the run of consecutive files from the period holding `start_ms`;
        it stops at the first period without a file, so REST fetches everything after the
        returned open time and no hole is skipped. It is None when the first period has no
        file (then REST fetches the whole window: slower, never lossy). A bar missing inside a
        covered period (a trading halt) stays missing.
        """
        step = interval_ms(interval)
        files = self.plan(market, symbol, interval, start_ms, end_ms)
        first_open = -(-start_ms // step) * step
        if not files or files[0].start_ms > first_open:
            return _empty_klines(), None
        run = files[:1]
        for f in files[1:]:
            if f.start_ms != run[-1].end_ms + 1:
                break
            run.append(f)
        frames = self._map(self.read, run)
        bars = (
            pl.concat(frames)
            .filter(pl.col("open_time").dt.epoch("ms").is_between(start_ms, end_ms))
            .unique("open_time", keep="last")
            .sort("open_time")
        )
        covered = min(run[-1].end_ms + 1 - step, end_ms - end_ms % step)
        return bars, covered

    # -- files ---------------------------------------------------------------------------

    def _exist(self, files: list[VisionFile]) -> list[bool]:
        if self._remote:
            return [text is not None for text in self._map(self._checksum_text, files)]
        listings: dict[Path, set[str]] = {}  # one directory listing per folder, not a stat a file
        out = []
        for f in files:
            assert f.path is not None
            folder = f.path.parent
            if folder not in listings:
                listings[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
            out.append(f.path.name in listings[folder])
        return out

    def _checksum_text(self, file: VisionFile, refresh: bool = False) -> str | None:
        """The `.CHECKSUM` beside `file` (None if there is none); cached over HTTP."""
        if not self._remote:
            assert file.path is not None
            target = file.path.with_name(file.path.name + ".CHECKSUM")
            return target.read_text(errors="replace") if target.is_file() else None
        with self._lock:
            if not refresh and file.rel in self._checksums:
                return self._checksums[file.rel]
        blob = self._get(f"{file.url}.CHECKSUM", read_file)
        text = None if blob is None else blob.decode(errors="replace")
        with self._lock:
            self._checksums[file.rel] = text
        return text

    def _get(self, url: str, read: Callable[[httpx.Response], T]) -> T:
        assert self._requester is not None
        return self._requester.get(url, read)

    def _verified_bytes(self, file: VisionFile, verify: bool) -> bytes:
        if not self._remote:
            assert file.path is not None
            blob = _exists(file, file.path.read_bytes() if file.path.is_file() else None)
            mismatch = self._mismatch(file, blob, refresh=False) if verify else None
            if mismatch:
                raise mismatch
            return blob
        downloads = 0

        def read(resp: httpx.Response) -> bytes:
            nonlocal downloads
            blob = _exists(file, read_file(resp))
            # A digest that does not match may be a download cut short, or a checksum
            # fetched before the file was replaced: after the first, fetch both again.
            mismatch = self._mismatch(file, blob, refresh=downloads > 0) if verify else None
            downloads += 1
            if mismatch:
                raise BadBody(str(mismatch), final=mismatch)
            return blob

        return self._get(str(file.url), read)

    def _mismatch(self, file: VisionFile, blob: bytes, refresh: bool) -> ChecksumMismatch | None:
        """Why `blob` is not the file its `.CHECKSUM` names; None when it is."""
        text = self._checksum_text(file, refresh=refresh)
        if text is None:
            raise ChecksumMismatch(
                f"{file.location} has no {file.name}.CHECKSUM beside it, so it cannot be "
                "verified and was not read. Put the .CHECKSUM from data.binance.vision next "
                "to it, or pass verify=False to read it unverified on purpose.",
                path=file.location,
            )
        expected = (text.split(maxsplit=1) or [""])[0].lower()[:80]
        actual = hashlib.sha256(blob).hexdigest()
        if actual == expected:
            return None
        return ChecksumMismatch(
            f"{file.location} has SHA-256 {actual}, but {file.name}.CHECKSUM says {expected}: "
            "the file is corrupt or incomplete and was not read. Delete it (and its .CHECKSUM) "
            "and download both again from data.binance.vision.",
            path=file.location,
            expected=expected,
            actual=actual,
        )

    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        items = list(items)
        if len(items) < 2 or self._max_workers == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(min(self._max_workers, len(items))) as pool:
            return list(pool.map(fn, items))


def _exists(file: VisionFile, blob: bytes | None) -> bytes:
    if blob is None:
        raise DataError(
            f"{file.location} does not exist; plan() lists only files that do, so it was "
            "removed since: plan again"
        )
    return blob


def _empty_klines() -> pl.DataFrame:
    return pl.DataFrame(schema=KLINES_SCHEMA)
