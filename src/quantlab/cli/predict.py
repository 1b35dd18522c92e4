"""`quantlab predict SYMBOL [--json]`: the champion's signal for the newest closed bar."""

from __future__ import annotations

import argparse
import json

from quantlab.context import RunContext


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _cmd_predict(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.serving.answers import predict
    from quantlab.serving.scorer import Scorer

    answer = predict(Scorer(ctx), args.symbol.upper())
    if args.json:
        print(json.dumps(answer))
        return 0
    probs = "  ".join(f"P({c})={_fmt(p)}" for c, p in answer["probabilities"].items())
    print(
        f"{answer['symbol']} bar {answer['open_time']}: {answer['signal'].upper()} "
        f"(score {_fmt(answer['score'], '+.4f')}, mean of the last {answer['smoothing']} "
        f"{_fmt(answer['smoothed_score'], '+.4f')} against ±{answer['threshold']})"
    )
    if probs:
        print(f"  {probs}")
    if answer["pred_ret"] is not None:
        print(f"  predicted return {_fmt(answer['pred_ret'], '+.5f')}")
    print(
        f"  model {answer['model']} v{answer['version']} ({answer['uri']}) on "
        f"{answer['klines']}; {answer['latency_ms']:.1f} ms"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="the champion's signal for a symbol's newest closed bar")
    p.add_argument("symbol", help="e.g. BTCUSDT (one of universe.symbols)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_predict)
