"""Incremental, resumable klines ingest of many symbols: fetch concurrently, write from one thread.

For each symbol the window `[start, end)` is compared with the interval calendar: candles
already stored, and known gaps (`klines_gaps`), are not fetched again, so a rerun continues
where the last one stopped and a finished window costs no request. Worker threads only
fetch, through one source (one client, one weight budget); the calling thread alone writes,
one Delta merge per batch, because concurrent merges into one table conflict.

After a symbol's fetch, candles still missing are asked for once more (of REST, when bulk
files lacked them and a REST source is configured); that second ask keeps only what was
missing. What the exchange again does not return (the 2023-03-24 spot halt) is recorded in
`klines_gaps` with the source that confirmed it, and not asked for again unless a run is
told to (`recheck_gaps`) or the gap is cleared (`quantlab data gaps clear`). Killed at any
point, a run loses only what it had not committed: every write is one atomic Delta commit,
klines before the gaps that depend on them.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

from quantlab.catalog import Catalog, DatasetRef
from quantlab.errors import ConfigError, IPBannedError, TemporaryExchangeError
from quantlab.ingest import _calendar as cal
from quantlab.ingest import _gaps as gapstore
from quantlab.ingest import _store as store
from quantlab.ingest._series import Job, SeriesState
from quantlab.ingest._writer import BatchWriter
from quantlab.ingest.sources import Fetched, KlineSource
from quantlab.vocab import INTERVAL_MS

# A missing candle is only recorded as a known gap once it closed this long ago: the
# exchange may publish the newest candle a moment after it closes.
SETTLE_MS = 5 * 60_000
# Holes closer than this many candles are fetched as one range (one request, not two).
COALESCE_BARS = 1000


@dataclass(frozen=True)
class Progress:
    """One symbol's progress, reported on the calling thread after each fetched piece."""

    market: str
    symbol: str
    interval: str
    bars_done: int
    bars_total: int
    rows_added: int
    finished: bool
    error: str | None = None


@dataclass(frozen=True)
class SeriesReport:
    """What one run did for one symbol."""

    market: str
    symbol: str
    interval: str
    bars_requested: int
    rows_added: int
    gaps_recorded: int
    known_gaps: int
    known_gap_bars: int
    pending_bars: int  # candles the source did not vouch for yet: asked for again next run
    error: str | None = None


@dataclass(frozen=True)
class IngestResult:
    """The plain outcome of an ingest; the CLI prints it, the DAG returns its reference."""

    rows_added: int
    known_gaps: int
    gaps_recorded: int
    requests: int
    weight_used: int
    seconds: float
    series: tuple[SeriesReport, ...]
    klines: DatasetRef | None
    errors: dict[str, BaseException] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise the first failure (after everything fetched was committed), naming the others."""
        if not self.errors:
            return
        (first_key, first), *others = self.errors.items()
        if others:
            first.add_note(f"{first_key} failed; so did: {', '.join(k for k, _ in others)}")
        raise first

    def to_dict(self) -> dict:
        return {
            "rows_added": self.rows_added,
            "known_gaps": self.known_gaps,
            "gaps_recorded": self.gaps_recorded,
            "requests": self.requests,
            "weight_used": self.weight_used,
            "seconds": round(self.seconds, 3),
            "klines": self.klines.to_dict() if self.klines else None,
            "errors": {k: str(v) for k, v in self.errors.items()},
        }


class _Skipped(Exception):
    """A job not sent because the run stopped (an IP ban)."""


def ingest_klines(
    catalog: Catalog,
    source: KlineSource,
    *,
    market: str,
    interval: str,
    symbols: Sequence[str],
    start_ms: int,
    end_ms: int,
    refresh: bool = False,
    recheck_gaps: bool = False,
    strict: bool = False,
    workers: int = 4,
    batch_rows: int = 1_000_000,
    flush_s: float = 30.0,
    chunk_bars: int = 50_000,
    config_hash: str = "",
    progress: Callable[[Progress], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> IngestResult:
    """Bring `klines` up to date for `symbols` over open times in `[start_ms, end_ms)`.

    `refresh` fetches the whole window again (minus known gaps) and rewrites it, as a
    cleared Airflow run does; otherwise only missing candles are fetched. `recheck_gaps`
    asks for the window's known gaps again too: they are replaced by what this run
    confirms (a candle the exchange now returns is stored, its gap dropped). With `strict`,
    a window the exchange has not fully closed yet is a `TemporaryExchangeError` (after
    writing what it had), so a scheduler retries it. Commits happen every `batch_rows`
    fetched rows or `flush_s` seconds, and at the end. A REST window is fetched in pieces
    of `chunk_bars` candles (bulk files a month at a time), spread over `workers` threads.
    Failures are collected per symbol in the result: `result.raise_for_errors()`.
    """
    t0 = time.perf_counter()
    if interval not in INTERVAL_MS:
        raise ConfigError(f"interval {interval!r} is not supported; use one of {list(INTERVAL_MS)}")
    if end_ms <= start_ms:
        raise ConfigError("the ingest window is empty: end must be after start")
    run = _Run(catalog, source, market, interval, list(dict.fromkeys(symbols)), progress)
    writer = BatchWriter(
        catalog,
        market=market,
        interval=interval,
        config_hash=config_hash,
        batch_rows=batch_rows,
        flush_s=flush_s,
    )
    run.plan(start_ms, end_ms, refresh, recheck_gaps, chunk_bars)
    run.execute(writer, max(1, workers), flush_s, int(clock() * 1000))
    writer.flush()
    return run.result(writer, strict, start_ms, end_ms, time.perf_counter() - t0)


class _Run:
    """One ingest: plans the pieces, fetches them on a thread pool, feeds the one writer."""

    def __init__(
        self,
        catalog: Catalog,
        source: KlineSource,
        market: str,
        interval: str,
        symbols: list[str],
        progress: Callable[[Progress], None] | None,
    ):
        self.catalog, self.source = catalog, source
        self.market, self.interval, self.symbols = market, interval, symbols
        self.step = INTERVAL_MS[interval]
        self.progress = progress
        self.now = source.now_ms(market)
        self.series: dict[str, SeriesState] = {}
        self.queue: collections.deque[Job] = collections.deque()
        self.bans: list[IPBannedError] = []  # set by the worker that met a ban, seen by all

    def plan(
        self, start_ms: int, end_ms: int, refresh: bool, recheck_gaps: bool, chunk_bars: int
    ) -> None:
        """Per symbol, the missing candles (all of them with `refresh`) as pieces to fetch;
        known gaps too with `recheck_gaps`."""
        step, now = self.step, self.now
        # Candles closed by the exchange's clock; a source without one is all history.
        stop = end_ms if now is None else min(end_ms, max((now // step) * step, start_ms))
        args = (self.catalog, self.market, self.interval, self.symbols, start_ms, end_ms)
        stored = store.stored_opens(*args)
        known = {s: [] for s in self.symbols} if recheck_gaps else gapstore.known_gaps(*args)
        first = cal.align_up(start_ms, step)
        for symbol in self.symbols:
            s = SeriesState(symbol, step, stored[symbol], known[symbol])
            if recheck_gaps and stop > first:
                s.regaps = (first, stop - step)
            have = [] if refresh else [s.stored]
            ranges = cal.coalesce(
                cal.missing_ranges(start_ms, stop, step, have, s.known), step, COALESCE_BARS
            )
            for rng in ranges:
                for first, last in source_split(self.source, rng, step, chunk_bars):
                    self.queue.append(Job(symbol, first, last))
                    s.outstanding += 1
            s.bars_total = cal.bars_in(ranges, step)
            # Candles after the exchange's "now" are not closed: not asked for, not a gap.
            s.pending_bars = int(cal.calendar(stop, end_ms, step).size)
            self.series[symbol] = s

    def execute(self, writer: BatchWriter, workers: int, flush_s: float, confirmed_at: int) -> None:
        """Fetch every planned piece, ask for holes once more, hand rows and gaps to `writer`."""
        settled = None if self.now is None else self.now - SETTLE_MS
        for s in self.series.values():
            if s.outstanding == 0:
                self._finish(s, writer, confirmed_at)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
            running: dict[Future[Fetched], Job] = {}
            self._submit(pool, running, workers, writer, confirmed_at)
            while running:
                done, _ = wait(list(running), timeout=flush_s, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = running.pop(fut)
                    s = self.series[job.symbol]
                    s.outstanding -= 1
                    try:
                        fetched = fut.result()
                    except _Skipped:
                        s.error = s.error or self.bans[0]
                    except Exception as exc:  # kept per symbol; raised after the commit
                        s.error = s.error or exc
                    else:
                        writer.add(
                            s.take(job, fetched.klines, fetched.covered_until, fetched.source)
                        )
                    if s.outstanding == 0 and s.error is None and not s.rechecking:
                        s.rechecking = True
                        # Asked once more; what is still missing then is the exchange's word.
                        for first, last in cal.coalesce(s.find_holes(), self.step, COALESCE_BARS):
                            self.queue.appendleft(Job(s.symbol, first, last, recheck=True))
                            s.outstanding += 1
                    if s.outstanding == 0:
                        if s.error is None:
                            s.confirm(settled)
                        self._finish(s, writer, confirmed_at)
                    else:
                        self._report(s)
                if self.bans:
                    self._stop(running, writer, confirmed_at)
                writer.maybe_flush()
                self._submit(pool, running, workers, writer, confirmed_at)

    def _fetch(self, job: Job) -> Fetched:
        if self.bans:  # a ban arrived while this job waited for a thread: send nothing
            raise _Skipped
        try:
            ask = self.source.recheck if job.recheck else self.source.fetch
            return ask(self.market, job.symbol, self.interval, job.first, job.last)
        except IPBannedError as exc:
            self.bans.append(exc)  # at once, before this thread takes its next job
            raise

    def _submit(self, pool, running, workers, writer, confirmed_at) -> None:
        # A bounded number in flight, so fetched rows never pile up ahead of the writer.
        while self.queue and len(running) < 2 * workers and not self.bans:
            job = self.queue.popleft()
            s = self.series[job.symbol]
            if s.error is not None:  # the symbol failed: fetch no more of it
                s.outstanding -= 1
                if s.outstanding == 0:
                    self._finish(s, writer, confirmed_at)
                continue
            running[pool.submit(self._fetch, job)] = job

    def _stop(self, running, writer, confirmed_at) -> None:
        """A ban stops the run: nothing more is sent from this IP."""
        self.queue.clear()
        for fut in [f for f in running if f.cancel()]:
            self.series[running.pop(fut).symbol].outstanding -= 1
        for s in self.series.values():
            if not s.finished:
                s.error = s.error or self.bans[0]
                if s.outstanding == 0:
                    self._finish(s, writer, confirmed_at)

    def _finish(self, s: SeriesState, writer: BatchWriter, confirmed_at: int) -> None:
        if s.finished:
            return
        s.finished = True
        if s.error is None:
            if s.regaps is not None:
                window = gapstore.GapWindow(self.market, (s.symbol,), self.interval, *s.regaps)
                writer.replace_gaps(window)
            for lo, hi, source in s.gaps:
                bars = (hi - lo) // self.step + 1
                row = (self.market, s.symbol, self.interval, lo, hi, bars, source, confirmed_at)
                writer.add_gap(row)
        self._report(s)

    def _report(self, s: SeriesState) -> None:
        if self.progress is not None:
            self.progress(
                Progress(
                    self.market,
                    s.symbol,
                    self.interval,
                    s.bars_done,
                    s.bars_total,
                    s.rows_added,
                    s.finished,
                    None if s.error is None else str(s.error),
                )
            )

    def result(
        self,
        writer: BatchWriter,
        strict: bool,
        start_ms: int,
        end_ms: int,
        seconds: float,
    ) -> IngestResult:
        args = (self.catalog, self.market, self.interval, self.symbols, start_ms, end_ms)
        known = gapstore.known_gaps(*args)
        requests, weight = self.source.usage()
        reports, errors = [], {}
        for s in self.series.values():
            recorded = len(s.gaps) if s.error is None else 0
            if s.error is None and strict and s.pending_bars:
                s.error = TemporaryExchangeError(
                    f"{self.market} {s.symbol} {self.interval}: {s.pending_bars} candle(s) of the "
                    f"window are not closed or not published yet on the exchange (its clock: "
                    f"{_fmt(self.now)}); run again later, it is safe to retry."
                )
            if s.error is not None:
                errors[f"{self.market} {s.symbol} {self.interval}"] = s.error
            gaps = known[s.symbol]
            reports.append(
                SeriesReport(
                    market=self.market,
                    symbol=s.symbol,
                    interval=self.interval,
                    bars_requested=s.bars_total,
                    rows_added=s.rows_added,
                    gaps_recorded=recorded,
                    known_gaps=len(gaps),
                    known_gap_bars=sum((hi - lo) // self.step + 1 for lo, hi in gaps),
                    pending_bars=s.pending_bars,
                    error=None if s.error is None else str(s.error),
                )
            )
        klines = writer.klines_ref
        if klines is None and self.catalog.exists(store.KLINES):
            klines = self.catalog.latest(store.KLINES)
        return IngestResult(
            rows_added=sum(r.rows_added for r in reports),
            known_gaps=sum(r.known_gaps for r in reports),
            gaps_recorded=sum(r.gaps_recorded for r in reports),
            requests=requests,
            weight_used=weight,
            seconds=seconds,
            series=tuple(reports),
            klines=klines,
            errors=errors,
        )


def source_split(source: KlineSource, rng: cal.Range, step: int, bars: int) -> list[cal.Range]:
    """The pieces a range is fetched in: the source's own (files by month), else `bars` each."""
    split = getattr(source, "split", None)
    if split is not None:
        return split(rng, step)
    return cal.split(rng, step, bars)


def _fmt(ms: int | None) -> str:
    if ms is None:
        return "none"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
