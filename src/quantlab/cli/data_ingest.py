"""`quantlab data ingest`: backfill or update `klines` from Binance REST, data.binance.vision or freqtrade.

    quantlab data ingest --source rest --base-url https://api.binance.com --market spot \
        --symbols BTCUSDT,ETHUSDT --interval 1h --start 2024-01-01 --end 2025-01-01
    quantlab data ingest --source vision --root data/sample --market spot --symbols BTCUSDT ...
    quantlab data ingest --source freqtrade --root data/freqtrade --market um \
        --symbols BTCUSDT,ETHUSDT --interval 1h

`--source freqtrade` imports a freqtrade futures data folder (`<BASE>_<QUOTE>_<QUOTE>-<tf>-
futures.feather`, `-mark.feather`, `-funding_rate.feather`) into `klines`, `mark_klines` and
`funding_rates`, every file's whole span unless --start/--end narrow it, and runs the gate on
each; the columns freqtrade lacks stay null and the checks needing them are listed as skipped.

`--root` with `--source rest` serves that folder through a replay exchange for the run.
Known gaps (`quantlab data gaps list`) are not asked for again, except with `--refresh` or
`--recheck-gaps`; with `--source vision`, candles a bulk file lacks are asked of `--rest-url`.
The catalog written to is the config's (under $QUANTLAB_HOME). A progress bar per symbol
goes to stderr, the summary to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TextIO

from quantlab.cli._data import data_subparsers
from quantlab.context import RunContext
from quantlab.vocab import INTERVALS

MARKETS = {"spot": "spot", "um": "futures_um"}
BAR_WIDTH = 24


class ProgressBars:
    """One bar per symbol on stderr: redrawn in place (`\\r`) on a terminal, plain lines elsewhere.

    On a terminal the line of the symbol being fetched is redrawn; a finished symbol's
    bar is printed for good. Elsewhere (a log file, CI) a line at each quarter and at the end.
    """

    def __init__(self, stream: TextIO, interactive: bool | None = None):
        self.stream = stream
        self.interactive = stream.isatty() if interactive is None else interactive
        self._quarter: dict[str, int] = {}
        self._live = False

    def __call__(self, p) -> None:  # p: quantlab.ingest.Progress
        line = self.render(p)
        if self.interactive:
            end = "\n" if p.finished else ""
            self.stream.write("\r\x1b[2K" + line + end)
            self._live = not p.finished
        else:
            # A line at each quarter passed; the last one is the finished symbol's.
            part = min(3, 4 * p.bars_done // p.bars_total) if p.bars_total else 0
            quarter = 4 if p.finished else part
            key = f"{p.market} {p.symbol} {p.interval}"
            if quarter <= self._quarter.get(key, 0):
                return
            self._quarter[key] = quarter
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._live:
            self.stream.write("\n")
            self._live = False

    @staticmethod
    def render(p) -> str:
        frac = 1.0 if p.bars_total == 0 else p.bars_done / p.bars_total
        if p.finished and p.error is None:
            frac = 1.0
        filled = round(frac * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        state = "failed" if p.error else ("done" if p.finished else "")
        return (
            f"{p.symbol:<12} {p.interval:>4} [{bar}] {frac:>4.0%}  "
            f"{p.bars_done:>9,}/{p.bars_total:,} bars  +{p.rows_added:,} rows  {state}"
        ).rstrip()


def _summary(result, args: argparse.Namespace, where: str) -> str:
    gap_bars = sum(s.known_gap_bars for s in result.series)
    pending = sum(s.pending_bars for s in result.series)
    lines = [
        f"{args.market} {args.interval} {','.join(args.symbols)} from {args.source} ({where}), "
        f"{args.start} to {args.end} (end exclusive)",
        f"  rows added   {result.rows_added:,}",
        f"  known gaps   {result.known_gaps:,} ({gap_bars:,} candles; {result.gaps_recorded} new)",
        f"  requests     {result.requests:,}",
        f"  weight used  {result.weight_used:,}",
        f"  seconds      {result.seconds:.2f}",
        f"  dataset      {result.klines or 'klines (nothing written yet)'}",
    ]
    if pending:
        lines.append(
            f"  not yet available: {pending:,} candles (not closed, or newer than the bulk files "
            "without --rest-url); a later run fetches them"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def _source(args: argparse.Namespace, data: Path) -> Iterator[tuple[object, str]]:
    """The source `args` name; a REST ban is recorded under `data`, as the stages record it,
    so a later command, a DAG task or another process refuses to call until it ends."""
    from quantlab.exchange import ban_file
    from quantlab.exchange.replay import ReplayServer
    from quantlab.ingest import BulkSource, RestSource

    options = {"ban_file": ban_file(data)}

    with contextlib.ExitStack() as stack:
        if args.source == "rest":
            url = args.base_url
            if url is None:
                url = stack.enter_context(ReplayServer(args.root)).base_url
            where = args.base_url or f"replay of {args.root}"
            source = RestSource(url, options, exchange_limits=True)
        else:
            rest = (
                RestSource(args.rest_url, options, exchange_limits=True) if args.rest_url else None
            )
            source = BulkSource(args.base_url or args.root, rest=rest)
            where = str(args.base_url or args.root) + (f" + REST {args.rest_url}" if rest else "")
        try:
            yield source, where
        finally:
            source.close()


def _cmd_freqtrade(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.errors import DataError
    from quantlab.ingest import import_freqtrade, to_ms

    if args.root is None:
        print("error: --source freqtrade reads a local folder: give --root DIR", file=sys.stderr)
        return 2
    try:
        done = import_freqtrade(
            ctx,
            args.root,
            symbols=args.symbols,
            interval=args.interval,
            market=MARKETS[args.market],
            start_ms=to_ms(args.start) if args.start else None,
            end_ms=to_ms(args.end) if args.end else None,
        )
    except DataError as exc:  # a missing or malformed file, or the gate's refusal
        print(f"error: {exc}", file=sys.stderr)
        return 2
    span = f"{args.start or 'first'} to {args.end or 'last'} candle"
    lines = [
        f"{args.market} {args.interval} {','.join(done.symbols)} from freqtrade ({args.root}), {span}"
    ]
    for name, ref in done.refs.items():
        checks = done.checks.get(name)
        lines.append(
            f"  {name:<14} +{done.rows_written[name]:,} rows  {ref or 'nothing written'}"
            + (f"  gate passed ({checks})" if checks else "")
        )
        if checks is not None:
            verdict = ctx.catalog.lineage(checks).extra
            if warnings := verdict.get("warnings"):
                lines.append(f"  {'':<14} warnings: {', '.join(warnings)}")
            if skipped := verdict.get("skipped"):
                lines.append(
                    f"  {'':<14} skipped (no such column in the source): {len(skipped)} checks"
                )
    lines.append(f"  kept null (the source has none): {', '.join(done.absent)}")
    print("\n".join(lines))
    return 0


def _cmd_ingest(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.ingest import ingest_klines, to_ms

    if args.source == "freqtrade":
        return _cmd_freqtrade(ctx, args)
    if args.start is None or args.end is None:
        print(f"error: --source {args.source} needs --start and --end", file=sys.stderr)
        return 2
    if args.end <= args.start:
        print(f"error: --end {args.end} must be after --start {args.start}", file=sys.stderr)
        return 2
    if args.root is not None and not (args.root / "data").is_dir():
        print(
            f"error: {args.root} has no data/ folder in the data.binance.vision layout",
            file=sys.stderr,
        )
        return 2
    bars = None if args.no_progress else ProgressBars(sys.stderr)
    try:
        with _source(args, ctx.config.paths.data) as (source, where):
            result = ingest_klines(
                ctx.catalog,
                source,  # type: ignore[arg-type]
                market=MARKETS[args.market],
                interval=args.interval,
                symbols=args.symbols,
                start_ms=to_ms(args.start),
                end_ms=to_ms(args.end),
                refresh=args.refresh,
                recheck_gaps=args.refresh or args.recheck_gaps,
                workers=args.workers,
                progress=bars,
            )
    finally:
        if bars is not None:
            bars.close()
    print(_summary(result, args, where))
    for key, exc in result.errors.items():
        print(f"error: {key}: {exc}", file=sys.stderr)
    return 0 if result.ok else 2


def parse_symbols(text: str) -> list[str]:
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError("give at least one symbol, e.g. BTCUSDT,ETHUSDT")
    return symbols


def register(sub: argparse._SubParsersAction) -> None:
    p = data_subparsers(sub).add_parser(
        "ingest",
        help="backfill or update klines from Binance REST, data.binance.vision or freqtrade files",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--source", choices=("rest", "vision", "freqtrade"), required=True)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--base-url", help="REST API, or bulk-file server, e.g. https://api.binance.com"
    )
    where.add_argument(
        "--root",
        type=Path,
        help="a local folder in the data.binance.vision layout (data/...), or freqtrade's "
        "futures data folder with --source freqtrade",
    )
    p.add_argument(
        "--rest-url", help="with --source vision: REST API for candles newer than the bulk files"
    )
    p.add_argument("--market", choices=tuple(MARKETS), required=True, help="um: USD-M futures")
    p.add_argument(
        "--symbols", type=parse_symbols, required=True, help="comma-separated: BTCUSDT,ETHUSDT"
    )
    p.add_argument("--interval", choices=INTERVALS, default="1h")
    p.add_argument(
        "--start",
        type=date.fromisoformat,
        help="YYYY-MM-DD, inclusive (required but with --source freqtrade: its files' first)",
    )
    p.add_argument(
        "--end",
        type=date.fromisoformat,
        help="YYYY-MM-DD, exclusive (required but with --source freqtrade: after its last)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=4,
        help="requests in flight at once, on one client and weight budget",
    )
    p.add_argument(
        "--refresh",
        action="store_true",
        help="fetch the whole window again, known gaps included, and rewrite it",
    )
    p.add_argument(
        "--recheck-gaps",
        action="store_true",
        help="ask for the window's known gaps again (stored candles are not fetched again)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.set_defaults(func=_cmd_ingest)
