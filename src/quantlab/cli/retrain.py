"""`quantlab retrain incremental|full [--json]`: the retrain DAGs' graphs without Airflow,
then what they registered and what the gate decided on each version."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from quantlab.context import RunContext


def _newest(reg: Any, names: list[str]) -> dict[str, int]:
    """Each name's newest version now (0: none)."""
    return {name: max((r.version for r in _safe_versions(reg, name)), default=0) for name in names}


def registered_since(reg: Any, before: dict[str, int]) -> list[dict[str, Any]]:
    """Each version registered after `before` (name: newest version then), with its verdict."""
    rows = []
    for name, last in before.items():
        for ref in _safe_versions(reg, name):
            if ref.version <= last:
                continue
            rows.append(
                {
                    "model": name,
                    "version": ref.version,
                    "mode": ref.meta("mode"),
                    "parent_version": ref.meta("parent_version"),
                    "aliases": list(ref.aliases),
                    "decision": ref.tags.get("gate.decision"),
                    "reason": ref.tags.get("gate.reason"),
                    "metric": ref.tags.get("gate.metric"),
                    "challenger_value": ref.tags.get("gate.challenger_value"),
                    "champion_value": ref.tags.get("gate.champion_value"),
                }
            )
    return rows


def _safe_versions(reg: Any, name: str) -> list[Any]:
    from quantlab.tracking.registry import ModelNotFound

    try:
        return reg.versions(name)
    except ModelNotFound:
        return []


def _cmd_retrain(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.lifecycle.promote import registry
    from quantlab.lifecycle.retrain import families, run_retrain

    reg = registry(ctx)
    names = [name for name, _ in families(ctx)]
    before = _newest(reg, names)
    # --json: stdout holds the one JSON object; the stages' progress goes to stderr.
    sink = sys.stderr if args.json else sys.stdout
    with contextlib.redirect_stdout(sink):
        produced = run_retrain(ctx, args.mode)
    rows = registered_since(reg, before)
    if args.json:
        out = {
            "mode": args.mode,
            "datasets": {k: str(v) for k, v in produced.items() if v is not None},
            "registered": rows,
        }
        print(json.dumps(out, default=str))
        return 0
    if not rows:
        print(f"retrain {args.mode}: nothing registered (no new data, or nothing to learn)")
    for r in rows:
        parent = f" from v{r['parent_version']}" if r["parent_version"] else ""
        print(
            f"{r['model']} v{r['version']} ({r['mode']}{parent}): {r['decision'] or 'not judged'}"
            f"{'' if not r['reason'] else ' - ' + r['reason']}"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from quantlab.pipeline import RETRAIN_MODES

    retrain = sub.add_parser(
        "retrain",
        help="run a retrain graph without Airflow (incremental: continue each champion on "
        "the newest bars; full: the research graph from scratch); every version goes "
        "through the promotion gate",
    )
    retrain.add_argument("mode", choices=RETRAIN_MODES)
    retrain.add_argument("--json", action="store_true", help="one JSON object on stdout")
    retrain.set_defaults(func=_cmd_retrain)
