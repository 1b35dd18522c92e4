"""`quantlab regime current SYMBOL [--json]`: the regime champion's answer for the newest closed
bar; `quantlab regime history SYMBOL --hours 24 [--json]`: one row per bar of the last hours."""

from __future__ import annotations

import argparse
import json
from typing import Any

from quantlab.context import RunContext


def _probs(row: dict[str, Any]) -> str:
    return "  ".join(f"{name} {p:.3f}" for name, p in row["probabilities"].items())


def _cmd_current(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.serving.answers import regime_current
    from quantlab.serving.scorer import Scorer

    answer = regime_current(Scorer(ctx), args.symbol.upper())
    if args.json:
        print(json.dumps(answer))
        return 0
    print(
        f"{answer['symbol']} bar {answer['open_time']}: {answer['regime']} "
        f"(confidence {answer['confidence']:.3f})"
    )
    print(f"  {_probs(answer)}")
    print(
        f"  model {answer['model']} v{answer['version']} ({answer['uri']}) on "
        f"{answer['klines']}; {answer['latency_ms']:.1f} ms"
    )
    return 0


def _cmd_history(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.serving.answers import regime_history
    from quantlab.serving.scorer import Scorer

    answer = regime_history(Scorer(ctx), args.symbol.upper(), args.hours)
    if args.json:
        print(json.dumps(answer))
        return 0
    print(
        f"{answer['symbol']}: {len(answer['rows'])} bars of the last {args.hours:g} h, "
        f"model {answer['model']} v{answer['version']} on {answer['klines']}"
    )
    print(f"{'open_time':<26} {'regime':<17} {'conf':>5}")
    for row in answer["rows"]:
        print(f"{row['open_time']:<26} {row['regime']:<17} {row['confidence']:>5.3f}")
    print(f"{answer['latency_ms']:.1f} ms")
    return 0


def _hours(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--hours must be positive, got {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    regime = sub.add_parser("regime", help="the per-symbol regime model's answers")
    regime_sub = regime.add_subparsers(dest="regime_command", required=True)
    current = regime_sub.add_parser(
        "current", help="regime, confidence and all six probabilities for the newest closed bar"
    )
    current.add_argument("symbol", help="e.g. BTCUSDT (one of universe.symbols)")
    current.add_argument("--json", action="store_true", help="print one JSON object")
    current.set_defaults(func=_cmd_current)
    history = regime_sub.add_parser("history", help="one row per closed bar of the last hours")
    history.add_argument("symbol", help="e.g. BTCUSDT (one of universe.symbols)")
    history.add_argument("--hours", type=_hours, default=24.0, help="default: 24")
    history.add_argument("--json", action="store_true", help="print one JSON object")
    history.set_defaults(func=_cmd_history)
