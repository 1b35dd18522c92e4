"""`quantlab data gaps list|clear`: the candles the exchange confirmed missing, and forgetting them.

    quantlab data gaps list [--market spot] [--symbols BTCUSDT] [--interval 1h] [--start D --end D]
    quantlab data gaps clear --symbols BTCUSDT [--start 2023-03-01 --end 2023-04-01]
    quantlab data gaps clear --all

An ingest does not ask for a known gap again; a cleared one is asked for by the next ingest
(`quantlab data ingest --recheck-gaps` asks again without clearing first). Times are UTC
open times; a gap's end is its last missing candle.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import polars as pl

from quantlab.cli._data import data_subparsers
from quantlab.cli.data_ingest import INTERVALS, MARKETS, parse_symbols
from quantlab.context import RunContext
from quantlab.errors import ConfigError

if TYPE_CHECKING:
    from quantlab.ingest import GapWindow


def _window(args: argparse.Namespace) -> GapWindow:
    from quantlab.ingest import GapWindow, to_ms

    if args.start is not None and args.end is not None and args.end <= args.start:
        raise ConfigError(f"--end {args.end} must be after --start {args.start}")
    return GapWindow(
        market=MARKETS[args.market] if args.market else None,
        symbols=tuple(args.symbols) if args.symbols else None,
        interval=args.interval,
        first=None if args.start is None else to_ms(args.start),
        last=None if args.end is None else to_ms(args.end) - 1,
    )


def _fmt(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def render(gaps: pl.DataFrame) -> str:
    """The gaps as a table, one line each, then their count."""
    lines = [
        f"{'market':<11} {'symbol':<12} {'interval':<8} {'start (UTC)':<16}  {'end (UTC)':<16}  "
        f"{'candles':>7}  {'source':<8} confirmed (UTC)"
    ]
    for r in gaps.iter_rows(named=True):
        lines.append(
            f"{r['market']:<11} {r['symbol']:<12} {r['interval']:<8} {_fmt(r['gap_start']):<16}  "
            f"{_fmt(r['gap_end']):<16}  {r['bars_missing']:>7,}  {r['source'] or '-':<8} "
            f"{_fmt(r['confirmed_at'])}"
        )
    lines.append(f"{gaps.height:,} gap(s), {gaps['bars_missing'].sum():,} candle(s)")
    return "\n".join(lines)


def _cmd_list(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.ingest import read_gaps

    w = _window(args)
    gaps = read_gaps(
        ctx.catalog,
        market=w.market,
        symbols=w.symbols,
        interval=w.interval,
        start_ms=w.first,
        end_ms=None if w.last is None else w.last + 1,
    )
    if gaps.is_empty():
        print(f"no known gaps{' matching' if w != type(w)() else ''} in {ctx.catalog.root}")
        return 0
    print(render(gaps))
    return 0


def _cmd_clear(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.ingest import clear_gaps

    w = _window(args)
    if w == type(w)() and not args.all:
        raise ConfigError(
            "name the gaps to clear (--market, --symbols, --interval, --start/--end), "
            "or give --all to clear every known gap"
        )
    cleared, ref = clear_gaps(ctx.catalog, w)
    if cleared.is_empty():
        print("no known gaps matched: nothing cleared")
        return 0
    print(render(cleared))
    print(f"cleared ({ref}): the next ingest of these candles asks the exchange again")
    return 0


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--market", choices=tuple(MARKETS), help="um: USD-M futures")
    p.add_argument("--symbols", type=parse_symbols, help="comma-separated: BTCUSDT,ETHUSDT")
    p.add_argument("--interval", choices=INTERVALS)
    p.add_argument(
        "--start", type=date.fromisoformat, help="YYYY-MM-DD: gaps with candles from then on"
    )
    p.add_argument(
        "--end", type=date.fromisoformat, help="YYYY-MM-DD, exclusive: gaps with candles before"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = data_subparsers(sub).add_parser(
        "gaps",
        help="list or clear the known gaps: candles the exchange confirmed missing",
        description=__doc__.splitlines()[0],
    )
    gaps_sub = p.add_subparsers(dest="gaps_command", required=True, metavar="COMMAND")
    ls = gaps_sub.add_parser("list", help="the known gaps, with their source and time")
    _filters(ls)
    ls.set_defaults(func=_cmd_list)
    clear = gaps_sub.add_parser(
        "clear",
        help="forget known gaps so the next ingest asks for them again",
        description="Only the candles inside the filters are forgotten; a gap that reaches "
        "outside --start/--end keeps its outer part.",
    )
    _filters(clear)
    clear.add_argument("--all", action="store_true", help="clear every known gap")
    clear.set_defaults(func=_cmd_clear)
