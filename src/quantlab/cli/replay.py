"""`quantlab replay-server`: serve a data.binance.vision folder through Binance's REST API.

The folder needs no recorded API responses: exchangeInfo is built from its symbols when
`api/exchangeInfo/` holds none, so a REST backfill can run against any bulk tree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_replay_server(ctx: object, args: argparse.Namespace) -> int:
    from quantlab.exchange.replay import run_replay_server

    if not (args.root / "data").is_dir():
        print(
            f"error: {args.root} has no data/ folder in the data.binance.vision layout "
            "(data/{spot|futures/um}/{monthly|daily}/klines/SYMBOL/INTERVAL/*.zip)",
            file=sys.stderr,
        )
        return 2
    run_replay_server(args.root, args.host, args.port, args.fail_rate, args.latency)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    replay = sub.add_parser("replay-server", help="serve a data.binance.vision folder as Binance")
    replay.add_argument("--root", type=Path, required=True)
    replay.add_argument("--host", default="127.0.0.1")
    replay.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    replay.add_argument("--fail-rate", type=float, default=0.0)
    replay.add_argument("--latency", type=float, default=0.0)
    replay.set_defaults(func=_cmd_replay_server, needs_ctx=False)
