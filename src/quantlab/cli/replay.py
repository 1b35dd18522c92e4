"""`quantlab replay-server`: serve a data.binance.vision folder through Binance's REST API.

The folder needs no recorded API responses: exchangeInfo is built from its symbols when
`api/exchangeInfo/` holds none, so a REST backfill can run against any bulk tree. With
accounts (--account, --accounts-file) it also takes signed spot orders, filled against the
recorded klines at the replay clock (--now), with scripted order faults (--order-fault).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_FAULT_HELP = (
    "script an order fault, repeatable: KIND[:COUNT[:ARG]] with KIND accept_then_503, "
    "accept_then_timeout (ARG seconds, or SECONDS+drop to close the connection instead), "
    "missing_for (ARG: how many GET /api/v3/order answer -2013), reset (ARG placed|unplaced: "
    "whether the order reached the book before the connection was reset)"
)


def _now(text: str) -> int | str:
    if text == "wall":
        return text
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--now takes ms since the epoch or 'wall', not {text!r}")
    return int(text)


def _cmd_replay_server(ctx: object, args: argparse.Namespace) -> int:
    from quantlab.errors import ConfigError
    from quantlab.exchange.replay import (
        OrderFaults,
        load_accounts,
        parse_account,
        parse_fault,
        run_replay_server,
    )

    if not (args.root / "data").is_dir():
        print(
            f"error: {args.root} has no data/ folder in the data.binance.vision layout "
            "(data/{spot|futures/um}/{monthly|daily}/klines/SYMBOL/INTERVAL/*.zip)",
            file=sys.stderr,
        )
        return 2
    faults = OrderFaults()
    try:
        accounts = [parse_account(spec) for spec in args.account]
        for path in args.accounts_file:
            accounts += load_accounts(path)
        for spec in args.order_fault:
            kind, count, options = parse_fault(spec)
            faults.add(kind, count, **options)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.order_fail_rate:
        faults.storm(args.order_fail_rate, seed=args.order_fault_seed)
    run_replay_server(
        args.root, args.host, args.port, args.fail_rate, args.latency,
        accounts=accounts, order_faults=faults, now_ms=args.now,
    )  # fmt: skip
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    replay = sub.add_parser("replay-server", help="serve a data.binance.vision folder as Binance")
    replay.add_argument("--root", type=Path, required=True)
    replay.add_argument("--host", default="127.0.0.1")
    replay.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    replay.add_argument("--fail-rate", type=float, default=0.0)
    replay.add_argument("--latency", type=float, default=0.0)
    replay.add_argument(
        "--now",
        type=_now,
        default=None,
        help="the replay clock: ms since the epoch (orders fill at the candle it falls in), or "
        "'wall'; default just after the last stored candle (orders fill at the last close). "
        "Signed request timestamps are judged against the wall clock either way.",
    )
    replay.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="KEY:SECRET:USDT=100000,BTC=0.5",
        help="a trading account with an HMAC secret and balances (repeatable)",
    )
    replay.add_argument(
        "--accounts-file",
        action="append",
        default=[],
        type=Path,
        help="accounts as a list in JSON (a .json file) or YAML (any other name): "
        "[{api_key, secret | public_key (Ed25519 PEM) | public_key_file, balances: {USDT: 100000}}]",
    )
    replay.add_argument(
        "--order-fault", action="append", default=[], metavar="KIND[:COUNT[:ARG]]", help=_FAULT_HELP
    )
    replay.add_argument(
        "--order-fail-rate",
        type=float,
        default=0.0,
        help="a seeded random mix of order faults at this rate",
    )
    replay.add_argument("--order-fault-seed", type=int, default=0)
    replay.set_defaults(func=_cmd_replay_server, needs_ctx=False)
